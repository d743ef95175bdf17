"""Speaker diarization of a recording, before its segments leave the decoder.

Clustering needs every turn of a recording, but the decoder streams segments out as
they become final, with bounded memory. So a recording that is diarized is read twice:

1. ``diarize_recording``: a first pass over its audio only (no frames decoded), cut by the
   same voice activity the segmenter uses, each turn embedded window by window as it
   comes (only the embeddings are kept: 1 KB per 0.75 s of speech), then clustered into
   a ``Timeline`` per track (``models/speaker/diarize.py``).
2. The decoder's usual pass (``RecordingSegments``), which cuts each final span where the
   timeline's speaker changes and labels the pieces ``spk_0``, ``spk_1``, ... with the
   role ``speaker_roles`` maps them to, so the policy step decides on the role before
   any face or voice model runs.

Which recordings are diarized (``applies``): ``DiarizeConfig.mode`` ``mono``, those with
one audio track; ``all``, every track. Live calls are not (their turns leave before the
call is over), nor sources whose consent or ``modalities`` hint rules out voice analysis.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from apache_beam.io.filesystems import FileSystems

from sentistream.models.speaker.diarize import (
    VERSION,
    Turn,
    Window,
    embed_turn,
    hop_for,
    timeline_of,
)
from sentistream.models.speaker.encoder import load_speaker_encoder
from sentistream.transforms.config import DecodeConfig, DiarizeConfig, PolicyConfig, SegmentConfig
from sentistream.transforms.media.decoding import MediaChunk, MediaInfo, iter_chunks
from sentistream.transforms.media.segmenting import KIND_VAD
from sentistream.transforms.policy import voice_consented
from sentistream.transforms.recording import RecordingSegments
from sentistream.transforms.records import VideoRef
from sentistream.transforms.speakers import Speakers, parse_speaker_roles

STAGE_DIARIZE = "diarize"


def applies(
    cfg: DiarizeConfig, policy: PolicyConfig, info: MediaInfo, tracks: int, ref: VideoRef
) -> bool:
    """Whether a recording with ``tracks`` audio tracks is diarized: never a live one,
    nor one whose consent or modality hint rules out voice analysis (diarization embeds
    voices)."""
    if ref.live or not info.has_audio or cfg.mode == "off":
        return False
    if not voice_consented(policy, ref.metadata):
        return False
    return tracks == 1 or cfg.mode == "all"


@dataclass
class TrackEmbeddings:
    """One track's windows and their embeddings, gathered turn by turn."""

    windows: list[Window] = dataclasses.field(default_factory=list)
    parts: list[np.ndarray] = dataclasses.field(default_factory=list)
    turns: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    @property
    def embeddings(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros((0, 0), np.float32)


def embed_recording(
    ref: VideoRef,
    decode_cfg: DecodeConfig,
    segment_cfg: SegmentConfig,
    policy_cfg: PolicyConfig,
    cfg: DiarizeConfig,
    tracks: int,
) -> list[TrackEmbeddings]:
    """Pass 1: the windows and embeddings of every speech turn of each of ``tracks``
    tracks (audio only; cut by voice activity as the segmenter cuts)."""
    encoder = load_speaker_encoder(cfg.bundle, cfg.device)
    audio_only = dataclasses.replace(decode_cfg, fps=0.0)
    vad_only = dataclasses.replace(segment_cfg, prefer_captions=False)
    out = [TrackEmbeddings() for _ in range(tracks)]
    with FileSystems.open(ref.uri) as f:
        chunks = iter_chunks(f, audio_only)
        info = next(chunks)
        assert isinstance(info, MediaInfo)
        if tracks == 1:  # the downmix (a mono or captioned recording), as pass 2 has it
            info = dataclasses.replace(info, channels=min(info.channels, 1))
        hop = hop_for(info.duration_s or 0.0)
        recording = RecordingSegments(ref, info, vad_only, policy_cfg, carry=("audio",))
        for chunk in chunks:
            assert isinstance(chunk, MediaChunk)
            for record in recording.feed(chunk):
                if record.segmenter != KIND_VAD or record.audio is None:
                    continue
                track = out[record.channel]
                turn = Turn(record.start_s, record.end_s, record.audio)
                windows, emb = embed_turn(turn, len(track.turns), encoder.embed, hop)
                track.turns.append((record.start_s, record.end_s))
                if windows:
                    track.windows += windows
                    track.parts.append(emb)
    return out


def diarize_recording(
    ref: VideoRef,
    decode_cfg: DecodeConfig,
    segment_cfg: SegmentConfig,
    policy_cfg: PolicyConfig,
    cfg: DiarizeConfig,
    tracks: int,
) -> Speakers:
    """Pass 1 and the clustering: the recording's ``Speakers``. The recording's own
    ``speakers`` / ``speaker_roles`` (manifest, event) override the config's."""
    embedded = embed_recording(ref, decode_cfg, segment_cfg, policy_cfg, cfg, tracks)
    speakers = ref.speakers if ref.speakers is not None else cfg.speakers
    timelines = tuple(
        timeline_of(
            t.windows,
            t.embeddings,
            speakers=speakers,
            threshold=cfg.threshold,
            max_speakers=cfg.max_speakers,
        )
        for t in embedded
    )
    roles = parse_speaker_roles(ref.speaker_roles) if ref.speaker_roles else cfg.roles
    return Speakers(timelines, roles, cfg.min_piece_s, VERSION)

"""The segmenting state of one recording or live call: decoded chunks in, segment records
out (``RecordingSegments``), shared by the file decoder (``transforms/decode.py``) and the
live calls (``transforms/live.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from sentistream.models.audio import SAMPLE_RATE, level_dbfs
from sentistream.transforms.config import PolicyConfig, SegmentConfig
from sentistream.transforms.media.captions import Cue
from sentistream.transforms.media.decoding import MediaChunk, MediaInfo
from sentistream.transforms.media.segmenting import (
    KIND_CAPTIONS,
    KIND_VAD,
    Span,
    StreamingSegmenter,
)
from sentistream.transforms.records import (
    INPUTS,
    Frame,
    RecordingEnd,
    SegmentRecord,
    VideoRef,
    make_segment_id,
)
from sentistream.transforms.speakers import Speakers, speaker_label

#: A final span starting this close to an open turn's partial rows is that turn.
PARTIAL_MATCH_S = 0.5


@dataclass
class _ChannelBuffer:
    """Audio of one channel from ``start_s`` on (16 kHz float32), as a list of chunks."""

    start_s: float = 0.0
    parts: list[np.ndarray] = field(default_factory=list)

    def append(self, audio: np.ndarray) -> None:
        self.parts.append(audio)

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        data = np.concatenate(self.parts) if len(self.parts) != 1 else self.parts[0]
        self.parts = [data]
        lo = max(0, round((start_s - self.start_s) * SAMPLE_RATE))
        hi = max(lo, round((end_s - self.start_s) * SAMPLE_RATE))
        return data[lo:hi].copy()

    def trim(self, keep_from_s: float) -> None:
        data = np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)
        cut = max(0, round((keep_from_s - self.start_s) * SAMPLE_RATE))
        cut = min(cut, data.size)
        self.parts = [data[cut:]]
        self.start_s += cut / SAMPLE_RATE


class RecordingSegments:
    """The segmenting state of one recording (or live call): decoded chunks in, segment
    records out, with memory bounded by a chunk and the longest open turn.

    ``feed`` takes the chunks in time order; ``gap`` records that media from a time on
    never came (open turns close there, nothing is invented over it); ``end`` gives the
    ``RecordingEnd``. With ``partial_every_s`` > 0 (live calls) a turn still open gets a
    ``partial`` record at most that often, under the id its final record will have. With
    ``speakers`` (a diarized recording, ``transforms/diarization.py``) each speech span is
    cut where its track's speaker changes, and each piece carries its speaker (``spk_N``)
    and that speaker's role (``_speaker_role``); a caption cue is not cut (its text is
    one), it gets the speaker who talks most of it; stretches without speech keep the
    channel's role.
    """

    def __init__(
        self,
        ref: VideoRef,
        info: MediaInfo,
        segment_cfg: SegmentConfig,
        policy_cfg: PolicyConfig,
        *,
        carry: Iterable[str] = tuple(INPUTS),
        cues: list[Cue] | None = None,
        partial_every_s: float = 0.0,
        speakers: Speakers | None = None,
    ) -> None:
        self.ref, self.info = ref, info
        self._segment_cfg, self._cues = segment_cfg, cues or None
        self._carry = frozenset(carry)
        # With captions the recording is one downmixed track cut at the cues: cues do not
        # say which channel spoke.
        self.tracks = self.track_count(info, cues)
        self._default_role = default = policy_cfg.default_role
        self._roles = [_role(ref, ch, self.tracks, default) for ch in range(self.tracks)]
        self._speakers = speakers
        self._version = segment_cfg.version + (f"+{speakers.version}" if speakers else "")
        self._partial_every_s = partial_every_s
        self._segmenters = self._new_segmenters()
        self._buffers = [_ChannelBuffer() for _ in range(self.tracks)]
        self._frames: list[Frame] = []
        self._seen: dict[tuple[int, int], int] = {}  # (channel, start ms) -> count
        # channel -> (start, end) of the open turn's last partial row
        self._partials: dict[int, tuple[float, float]] = {}
        self.emitted, self.end_s = 0, 0.0
        self._started = self._done = self._gapped = False

    @staticmethod
    def track_count(info: MediaInfo, cues: list[Cue] | None) -> int:
        """Audio tracks segmented apart: one per channel; one (a downmix) with captions,
        whose cues do not say which channel spoke, or without audio."""
        return 1 if (cues or not info.has_audio) else max(1, info.channels)

    def _new_segmenters(self) -> list[StreamingSegmenter]:
        return [StreamingSegmenter(self._segment_cfg, cues=self._cues) for _ in range(self.tracks)]

    def feed(self, chunk: MediaChunk) -> list[SegmentRecord]:
        """The records that one chunk (the next in time) makes final, then any partials."""
        if not self._started:  # the buffers start where the media does (live: mid-stream)
            self._started = True
            for buf in self._buffers:
                buf.start_s = chunk.start_s
        self._done = chunk.final
        tracks = _tracks(chunk, self.tracks)
        self.end_s = max(self.end_s, chunk.end_s)
        if "frames" in self._carry:
            self._frames.extend(chunk.frames)
        out: list[SegmentRecord] = []
        for ch, segmenter in enumerate(self._segmenters):
            if tracks is not None:  # kept for the segment's level even when not carried
                self._buffers[ch].append(tracks[ch])
            audio = None if tracks is None else tracks[ch]
            for span in segmenter.feed(audio, chunk.start_s, chunk.end_s, chunk.final):
                out.extend(self._final(ch, span))
            if self._partial_every_s and not chunk.final:
                out.extend(self._partial(ch, segmenter))
        keep = min(s.retain_from_s for s in self._segmenters)
        for buf in self._buffers:
            buf.trim(keep)
        self._frames = [fr for fr in self._frames if fr.t >= keep]
        return out

    def _final(self, ch: int, span: Span) -> list[SegmentRecord]:
        """The records of a final span (several when a diarized speaker changes in it);
        the first one of a turn that had partial rows keeps their id (the VAD, re-run over
        the trimmed buffer, may move its start by a few ms)."""
        partial = self._partials.pop(ch, None)
        id_start = span.start_s
        if partial is not None and abs(span.start_s - partial[0]) < PARTIAL_MATCH_S:
            id_start = partial[0]
        if self._speakers is None or span.kind not in (KIND_VAD, KIND_CAPTIONS):
            return [
                self._record(ch, span.start_s, span.end_s, span.kind, span.text, id_start=id_start)
            ]
        timeline = self._speakers.timelines[ch]
        if timeline.speakers == 0:  # no window to embed on this track: no evidence
            return [
                self._record(ch, span.start_s, span.end_s, span.kind, span.text, id_start=id_start)
            ]
        pieces = timeline.split(span.start_s, span.end_s, self._speakers.min_piece_s)
        if span.kind == KIND_CAPTIONS:
            talker = max(pieces, key=lambda p: p.end_s - p.start_s).speaker
            return [
                self._record(ch, span.start_s, span.end_s, span.kind, span.text, speaker=talker)
            ]
        return [
            self._record(ch, p.start_s, p.end_s, span.kind, span.text, speaker=p.speaker)
            for p in pieces
        ]

    def _partial(self, ch: int, segmenter: StreamingSegmenter) -> list[SegmentRecord]:
        turn = segmenter.open_turn
        if turn is None:
            return []
        start, end = turn
        last = self._partials.get(ch)
        if last is not None and abs(last[0] - start) < PARTIAL_MATCH_S:
            start, since = last[0], last[1]
        else:
            since = start
        if end - since < self._partial_every_s or end - start < self._segment_cfg.min_s:
            return []
        self._partials[ch] = (start, end)
        return [self._record(ch, start, end, KIND_VAD, None, partial=True)]

    def gap(self, start_s: float, end_s: float) -> list[SegmentRecord]:
        """Media from ``start_s`` to ``end_s`` never came: close the open turns at
        ``start_s`` and go on after the gap with fresh segmenters."""
        out: list[SegmentRecord] = []
        for ch, segmenter in enumerate(self._segmenters):
            for span in segmenter.feed(None, start_s, start_s, True):
                out.extend(self._final(ch, span))
        self._gapped = True
        self._segmenters = self._new_segmenters()
        self._partials.clear()
        for buf in self._buffers:
            buf.parts, buf.start_s = [np.zeros(0, np.float32)], end_s
        self._frames = []
        self.end_s = max(self.end_s, end_s)
        return out

    def _record(
        self,
        ch: int,
        start_s: float,
        end_s: float,
        kind: str,
        text: str | None,
        *,
        partial: bool = False,
        id_start: float | None = None,
        speaker: int | None = None,
    ) -> SegmentRecord:
        id_start = start_s if id_start is None else id_start
        key = (ch, round(id_start * 1000))
        ordinal = self._seen.get(key, -1) + 1
        if not partial:
            self._seen[key] = ordinal
            self.emitted += 1
        has_audio = self.info.has_audio
        audio = self._buffers[ch].slice(start_s, end_s) if has_audio else None
        return SegmentRecord(
            ref=self.ref,
            segment_id=make_segment_id(self.ref.resolved_id, ch, id_start, self._version, ordinal),
            channel=ch,
            speaker=self._roles[ch] if speaker is None else self._speaker_role(ch, speaker),
            speaker_id=None if speaker is None else self._speaker_label(ch, speaker),
            start_s=start_s,
            end_s=end_s,
            segmenter=kind,
            has_video=self.info.has_video,
            has_audio=has_audio,
            audio=audio if "audio" in self._carry else None,
            frames=tuple(fr for fr in self._frames if start_s <= fr.t < end_s)
            if "frames" in self._carry
            else (),
            caption=text if "caption" in self._carry else None,
            level_dbfs=None if audio is None else level_dbfs(audio),
            partial=partial,
        )

    def _speaker_role(self, ch: int, index: int) -> str:
        """A diarized speaker's role: in a multi-channel recording with channel roles,
        its channel's (the channel says who it is); else its ``--speaker-roles`` rule,
        else its channel's."""
        assert self._speakers is not None
        if self.tracks > 1 and self.ref.channel_roles:
            return self._roles[ch]
        return self._speakers.role(index, self._roles[ch])

    def _speaker_label(self, ch: int, index: int) -> str:
        """``spk_N``; ``chC_spk_N`` when each channel is diarized on its own."""
        label = speaker_label(index)
        return label if self.tracks == 1 else f"ch{ch}_{label}"

    def flush(self) -> list[SegmentRecord]:
        """End the recording where its media ended (a live call that stopped): the turns
        still open become final records. Nothing once a final chunk was fed."""
        if self._done:
            return []
        return self.feed(MediaChunk(self.end_s, self.end_s, None, (), final=True))

    def end(self, *, complete: bool = True) -> RecordingEnd:
        """The recording's end; incomplete after a ``gap`` or when ``complete`` says so."""
        return RecordingEnd(
            ref=self.ref,
            duration_s=round(self.end_s, 3),
            segments=self.emitted,
            tracks=self.tracks,
            complete=complete and not self._gapped,
        )


def _tracks(chunk: MediaChunk, n_tracks: int) -> list[np.ndarray] | None:
    if chunk.audio is None:
        return None
    if n_tracks == 1:
        return [chunk.audio.mean(axis=0).astype(np.float32)]
    return [chunk.audio[ch] for ch in range(n_tracks)]


def _role(ref: VideoRef, channel: int, n_tracks: int, default_role: str) -> str:
    """The channel's role from ``ref.channel_roles`` (one role covers a downmix)."""
    roles = ref.channel_roles
    role = roles[channel] if roles and channel < len(roles) and n_tracks > 1 else None
    if role is None and roles and len(roles) == 1:
        role = roles[0]
    return role or default_role

"""DecodeVideo + Segment in one streaming step: a ``VideoRef`` in, ``SegmentRecord`` s out.

The file is read once, in chunks (``DecodeConfig.chunk_s``); each channel's segmenter
returns the segments that are final so far, which leave at once with their audio and
frames, and the buffers are trimmed to what a future segment may still need. Memory is
bounded by the chunk and the longest segment, whatever the recording's length.

Any failure becomes a ``DeadLetter`` in the main flow (stage ``decode``); an input that
decodes but yields no segment at all (zero duration) is a dead letter too, so every
input ends as scores or as a dead letter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from sentistream.transforms.media.captions import Cue, find_sidecar, parse_captions
from sentistream.transforms.config import DecodeConfig, PolicyConfig, SegmentConfig
from sentistream.transforms.media.decoding import MediaChunk, MediaInfo, iter_chunks
from sentistream.transforms.policy import decide
from sentistream.transforms.records import (
    DeadLetter,
    Frame,
    SegmentRecord,
    Transcript,
    VideoRef,
    make_segment_id,
)
from sentistream.transforms.media.segmenting import Span, StreamingSegmenter

SAMPLE_RATE = 16_000
_LOG = logging.getLogger(__name__)


def load_cues(ref: VideoRef) -> list[Cue]:
    """Caption cues from the ref's ``caption_uri`` or a same-stem sidecar; [] if none."""
    uri = ref.caption_uri
    if uri is None and "://" not in ref.uri:
        uri = find_sidecar(ref.uri)
    if uri is None:
        return []
    with FileSystems.open(uri) as f:
        return parse_captions(f.read().decode("utf-8-sig"))


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


def iter_segments(
    ref: VideoRef,
    decode_cfg: DecodeConfig,
    segment_cfg: SegmentConfig,
    policy_cfg: PolicyConfig,
) -> Iterator[SegmentRecord]:
    """Stream one recording into segment records (pure apart from reading the file)."""
    cues = load_cues(ref) if segment_cfg.prefer_captions else []
    video_id = ref.resolved_id
    with FileSystems.open(ref.uri) as f:
        chunks = iter_chunks(f, decode_cfg)
        info = next(chunks)
        assert isinstance(info, MediaInfo)
        # With captions the recording is one downmixed track cut at the cues: cues do not
        # say which channel spoke.
        n_tracks = 1 if (cues or not info.has_audio) else max(1, info.channels)
        segmenters = [StreamingSegmenter(segment_cfg, cues=cues or None) for _ in range(n_tracks)]
        buffers = [_ChannelBuffer() for _ in range(n_tracks)]
        frames: list[Frame] = []
        for chunk in chunks:
            assert isinstance(chunk, MediaChunk)
            tracks = _tracks(chunk, n_tracks)
            frames.extend(chunk.frames)
            for ch, segmenter in enumerate(segmenters):
                if tracks is not None:
                    buffers[ch].append(tracks[ch])
                spans = segmenter.feed(
                    None if tracks is None else tracks[ch], chunk.start_s, chunk.end_s, chunk.final
                )
                for span in spans:
                    yield _record(
                        ref,
                        video_id,
                        info,
                        ch,
                        span,
                        buffers[ch],
                        frames,
                        segment_cfg,
                        policy_cfg,
                        n_tracks,
                    )
            keep = min(s.retain_from_s for s in segmenters)
            for buf in buffers:
                buf.trim(keep)
            frames = [fr for fr in frames if fr.t >= keep]


def _tracks(chunk: MediaChunk, n_tracks: int) -> list[np.ndarray] | None:
    if chunk.audio is None:
        return None
    if n_tracks == 1:
        return [chunk.audio.mean(axis=0).astype(np.float32)]
    return [chunk.audio[ch] for ch in range(n_tracks)]


def _record(
    ref: VideoRef,
    video_id: str,
    info: MediaInfo,
    channel: int,
    span: Span,
    buffer: _ChannelBuffer,
    frames: Sequence[Frame],
    segment_cfg: SegmentConfig,
    policy_cfg: PolicyConfig,
    n_tracks: int,
) -> SegmentRecord:
    roles = ref.channel_roles
    role = roles[channel] if roles and channel < len(roles) and n_tracks > 1 else None
    if role is None and roles and len(roles) == 1:
        role = roles[0]
    role = role or policy_cfg.default_role
    transcript = None
    if span.text is not None:
        transcript = Transcript(text=span.text, source="captions", confidence=1.0)
    return SegmentRecord(
        ref=ref,
        segment_id=make_segment_id(video_id, channel, span.start_s, segment_cfg.version),
        channel=channel,
        speaker=role,
        start_s=span.start_s,
        end_s=span.end_s,
        segmenter=span.kind,
        has_video=info.has_video,
        has_audio=info.has_audio,
        policy=decide(policy_cfg, role, ref.metadata),
        audio=buffer.slice(span.start_s, span.end_s) if info.has_audio else None,
        frames=tuple(fr for fr in frames if span.start_s <= fr.t < span.end_s),
        transcript=transcript,
    )


class DecodeAndSegmentFn(beam.DoFn):
    """``VideoRef`` -> ``SegmentRecord`` s, or a ``DeadLetter`` with the reason."""

    def __init__(
        self, decode_cfg: DecodeConfig, segment_cfg: SegmentConfig, policy_cfg: PolicyConfig
    ) -> None:
        self._decode_cfg = decode_cfg
        self._segment_cfg = segment_cfg
        self._policy_cfg = policy_cfg
        self._videos = Metrics.counter("sentistream.decode", "videos")
        self._segments = Metrics.counter("sentistream.decode", "segments")
        self._failures = Metrics.counter("sentistream.decode", "dead_letters")

    def process(self, ref: VideoRef) -> Iterator[SegmentRecord | DeadLetter]:
        self._videos.inc()
        emitted = 0
        stage = "decode"
        try:
            for record in iter_segments(ref, self._decode_cfg, self._segment_cfg, self._policy_cfg):
                emitted += 1
                yield record
            if emitted == 0:
                stage = "segment"
                raise ValueError("the media decoded but has no duration: no segment to score")
        except Exception as exc:  # noqa: BLE001 - any failure of one input is a dead letter
            _LOG.warning("dead letter for %s at %s: %s", ref.uri, stage, exc)
            self._failures.inc()
            detail = f" after {emitted} segments" if emitted else ""
            yield DeadLetter(
                uri=ref.uri,
                video_id=ref.resolved_id,
                stage=stage,
                error_type=type(exc).__name__,
                error=f"{exc}{detail}",
            )
        finally:
            self._segments.inc(emitted)

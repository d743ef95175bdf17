"""DecodeVideo + Segment in one streaming step: a ``VideoRef`` in, ``SegmentRecord`` s out.

The file is read once, in chunks (``DecodeConfig.chunk_s``); each channel's segmenter
returns the segments that are final so far, which leave at once with the inputs the
configured steps read (``carry``, from ``transforms/plan.py``: audio, frames, caption
text), and the buffers are trimmed to what a future segment may still need. Memory is
bounded by the chunk and the longest segment, whatever the recording's length. The policy
is not decided here: records leave with ``policy=None`` for the ``DecidePolicy`` step.
After the last segment of a recording that was read to its end comes one
``RecordingEnd`` (its length and segment count), from which the Fuse step makes the
call-level rows: the decoder is what knows that a recording is over.

Any failure becomes a ``DeadLetter`` in the main flow (stage ``decode``); an input that
decodes but yields no segment at all (zero duration) is a dead letter too, so every
input ends as scores or as a dead letter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from sentistream.models.audio import SAMPLE_RATE, level_dbfs
from sentistream.transforms.config import DecodeConfig, PolicyConfig, SegmentConfig
from sentistream.transforms.media.captions import Cue, find_sidecar, parse_captions
from sentistream.transforms.media.decoding import MediaChunk, MediaInfo, iter_chunks
from sentistream.transforms.media.limits import MediaLimitError, check_allowed, check_local_input
from sentistream.transforms.media.segmenting import StreamingSegmenter
from sentistream.transforms.records import (
    INPUTS,
    DeadLetter,
    Frame,
    RecordingEnd,
    SegmentRecord,
    VideoRef,
    make_segment_id,
)

_LOG = logging.getLogger(__name__)


#: Caption files larger than this, or with more cues, are refused (the media is still
#: scored, cut by voice activity): a few hours of dense captions fit well below both.
MAX_CAPTION_BYTES = 16 << 20
MAX_CUES = 20_000
STAGE_CAPTIONS = "captions"
STAGE_DECODE = "decode"
STAGE_SEGMENT = "segment"  # decoded, but no segment at all


class CaptionError(ValueError):
    """A caption file that cannot be used; the message names the file, never its text."""


def load_cues(ref: VideoRef, decode_cfg: DecodeConfig) -> list[Cue]:
    """Caption cues from the ref's ``caption_uri`` or a same-stem sidecar; [] if none.

    Raises:
        CaptionError: naming the caption file and what is wrong with it (outside the
            allowed roots or schemes, unreadable, too large, not UTF-8, not WebVTT / SRT,
            too many cues).
    """
    uri = ref.caption_uri
    if uri is None and "://" not in ref.uri:
        uri = find_sidecar(ref.uri)
    if uri is None:
        return []
    try:
        check_allowed(uri, decode_cfg, "caption file")
    except MediaLimitError as exc:
        raise CaptionError(str(exc)) from None
    try:
        with FileSystems.open(uri) as f:
            data = f.read(MAX_CAPTION_BYTES + 1)
    except Exception as exc:  # noqa: BLE001 - missing, unreadable, a directory, ...
        raise CaptionError(f"caption file {uri!r} cannot be read ({type(exc).__name__})") from None
    if len(data) > MAX_CAPTION_BYTES:
        raise CaptionError(f"caption file {uri!r} is over the {MAX_CAPTION_BYTES} byte limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaptionError(f"caption file {uri!r} is not UTF-8 text (byte {exc.start})") from None
    try:
        cues = parse_captions(text)
    except ValueError as exc:
        raise CaptionError(f"caption file {uri!r}: {exc}") from None
    if len(cues) > MAX_CUES:
        raise CaptionError(f"caption file {uri!r} has {len(cues)} cues, over the {MAX_CUES} limit")
    return cues


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
    *,
    carry: Iterable[str] = tuple(INPUTS),
    cues: list[Cue] | None = None,
) -> Iterator[SegmentRecord | RecordingEnd]:
    """Stream one recording into segment records, then its ``RecordingEnd`` (pure apart
    from reading the file).

    ``policy_cfg`` gives the role of a channel without one (``default_role``); ``carry``
    names the inputs the records get (``records.INPUTS``; the others stay empty);
    ``cues``: the caption cues already loaded (None: ``load_cues`` when captions are on).
    """
    carry = frozenset(carry)
    if cues is None:
        cues = load_cues(ref, decode_cfg) if segment_cfg.prefer_captions else []
    video_id = ref.resolved_id
    check_allowed(ref.uri, decode_cfg)
    if "://" not in ref.uri:
        check_local_input(ref.uri, decode_cfg)  # before opening: a FIFO would block it
    with FileSystems.open(ref.uri) as f:
        chunks = iter_chunks(f, decode_cfg)
        info = next(chunks)
        assert isinstance(info, MediaInfo)
        # With captions the recording is one downmixed track cut at the cues: cues do not
        # say which channel spoke.
        n_tracks = 1 if (cues or not info.has_audio) else max(1, info.channels)
        segmenters = [StreamingSegmenter(segment_cfg, cues=cues or None) for _ in range(n_tracks)]
        buffers = [_ChannelBuffer() for _ in range(n_tracks)]
        carry_audio = "audio" in carry
        frames: list[Frame] = []
        emitted, end_s = 0, 0.0
        seen: dict[tuple[int, int, int], int] = {}  # (channel, start ms, end ms) -> count
        for chunk in chunks:
            assert isinstance(chunk, MediaChunk)
            tracks = _tracks(chunk, n_tracks)
            end_s = max(end_s, chunk.end_s)
            if "frames" in carry:
                frames.extend(chunk.frames)
            for ch, segmenter in enumerate(segmenters):
                if tracks is not None:  # kept for the segment's level even when not carried
                    buffers[ch].append(tracks[ch])
                spans = segmenter.feed(
                    None if tracks is None else tracks[ch], chunk.start_s, chunk.end_s, chunk.final
                )
                for span in spans:
                    key = (ch, round(span.start_s * 1000), round(span.end_s * 1000))
                    ordinal = seen[key] = seen.get(key, -1) + 1
                    audio = buffers[ch].slice(span.start_s, span.end_s) if info.has_audio else None
                    emitted += 1
                    yield SegmentRecord(
                        ref=ref,
                        segment_id=make_segment_id(
                            video_id, ch, span.start_s, span.end_s, segment_cfg.version, ordinal
                        ),
                        channel=ch,
                        speaker=_role(ref, ch, n_tracks, policy_cfg.default_role),
                        start_s=span.start_s,
                        end_s=span.end_s,
                        segmenter=span.kind,
                        has_video=info.has_video,
                        has_audio=info.has_audio,
                        audio=audio if carry_audio else None,
                        frames=tuple(fr for fr in frames if span.start_s <= fr.t < span.end_s),
                        caption=span.text if "caption" in carry else None,
                        level_dbfs=None if audio is None else level_dbfs(audio),
                    )
            keep = min(s.retain_from_s for s in segmenters)
            for buf in buffers:
                buf.trim(keep)
            frames = [fr for fr in frames if fr.t >= keep]
    yield RecordingEnd(ref=ref, duration_s=round(end_s, 3), segments=emitted, tracks=n_tracks)


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


class DecodeAndSegmentFn(beam.DoFn):
    """``VideoRef`` -> ``SegmentRecord`` s and its ``RecordingEnd``, or a ``DeadLetter``
    with the reason (no ``RecordingEnd`` then: a recording not read to its end gets no
    call-level row).

    Counters (namespace ``sentistream.decode``): ``videos``, ``segments``,
    ``dead_letters``, and ``frames``: sampled frames carried by the records (0 when no
    step reads frames).
    """

    def __init__(
        self,
        decode_cfg: DecodeConfig,
        segment_cfg: SegmentConfig,
        policy_cfg: PolicyConfig,
        carry: Iterable[str] = tuple(INPUTS),
    ) -> None:
        self._decode_cfg = decode_cfg
        self._segment_cfg = segment_cfg
        self._policy_cfg = policy_cfg
        self._carry = tuple(carry)
        self._videos = Metrics.counter("sentistream.decode", "videos")
        self._segments = Metrics.counter("sentistream.decode", "segments")
        self._frames = Metrics.counter("sentistream.decode", "frames")
        self._failures = Metrics.counter("sentistream.decode", "dead_letters")

    def process(self, ref: VideoRef) -> Iterator[SegmentRecord | RecordingEnd | DeadLetter]:
        self._videos.inc()
        emitted = 0
        stage = STAGE_DECODE
        cues: list[Cue] = []
        if self._segment_cfg.prefer_captions:
            try:
                cues = load_cues(ref, self._decode_cfg)
            except CaptionError as exc:  # the media is still scored, cut by voice activity
                _LOG.warning("captions of %s not used: %s", ref.uri, exc)
                self._failures.inc()
                detail = "; the media was scored without captions (voice activity segments)"
                yield DeadLetter.from_error(ref, STAGE_CAPTIONS, exc, detail=detail)
        try:
            for record in iter_segments(
                ref,
                self._decode_cfg,
                self._segment_cfg,
                self._policy_cfg,
                carry=self._carry,
                cues=cues,
            ):
                if isinstance(record, RecordingEnd):
                    if emitted == 0:
                        stage = STAGE_SEGMENT
                        raise ValueError(
                            "the media decoded but has no duration: no segment to score"
                        )
                    yield record
                    continue
                emitted += 1
                self._frames.inc(len(record.frames))
                yield record
        except Exception as exc:  # noqa: BLE001 - any failure of one input is a dead letter
            _LOG.warning("dead letter for %s at %s: %s", ref.uri, stage, exc)
            self._failures.inc()
            detail = f" after {emitted} segments" if emitted else ""
            yield DeadLetter.from_error(ref, stage, exc, detail=detail)
        finally:
            self._segments.inc(emitted)

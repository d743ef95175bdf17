"""Streaming media decoding with PyAV (FFmpeg bundled in the wheel; no system packages).

``iter_chunks`` makes one pass over the file, demuxing audio and video packets together,
and yields a ``MediaInfo``, then ``MediaChunk`` s of ``DecodeConfig.chunk_s`` seconds.
Memory is bounded by a chunk whatever the file's length. t = 0 is the container's start.
Audio: 16 kHz float32, every channel kept (a stereo call keeps agent and customer apart),
timestamp gaps filled with silence. Frames: for each sample time k / fps the decoded
frame nearest to it (each at most once), converted to RGB and scaled in FFmpeg only when
taken; ``fps == 0`` skips video decoding (packets still give the timeline). A live
stream goes through the same ``decode_container`` (``live.py`` opens it). No Beam.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import av
import numpy as np

from sentistream.models.audio import (
    SAMPLE_RATE,
    DamagedFrame,
    MediaRefused,
    open_container,
)
from sentistream.transforms.config import DecodeConfig
from sentistream.transforms.media.limits import (
    MediaDecodeError,
    MediaLimitError,
    check_limits,
)
from sentistream.transforms.media.tracks import AudioTrack, FrameSampler
from sentistream.transforms.records import Frame

# Chunks are not held back for a stream lagging this far (ended, sparse, badly interleaved).
MAX_STREAM_LAG_S = 10.0
# The last chunk may run this far past its nominal end rather than leave a sliver after it.
TAIL_S = 0.5
# Streams ending this much and 5 % (25 % if guessed from bitrate) short of the header's
# duration mean a damaged file.
TRUNCATION_TOLERANCE_S = 0.5
_ESTIMATED_DURATION_FORMATS = ("mp3", "aac", "ac3", "eac3")
# A live stream ending this share of the stall timeout after its last packet stalled.
STALL_MARGIN = 0.9
# Decoding errors tolerated (damaged packets are skipped) before the file is rejected.
MAX_DECODE_ERRORS = 10


@dataclass(frozen=True)
class MediaInfo:
    """What a container holds, from its headers. ``has_video`` ignores cover art;
    ``channels`` is 0 without audio; other fields are None when unknown or absent;
    ``container`` is FFmpeg's format name (e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``)."""

    has_video: bool
    has_audio: bool
    channels: int
    duration_s: float | None
    width: int | None
    height: int | None
    video_fps: float | None
    container: str


@dataclass(frozen=True)
class MediaChunk:
    """A stretch [start_s, end_s) of the media.

    audio: (channels, samples) float32 at 16 kHz, sample 0 at ``start_s``; None when the
        media has no audio stream. Shorter than the chunk when the audio stream ends early.
    frames: sampled frames with ``start_s <= t < end_s`` (RGB uint8, longer side at most
        ``max_side``); empty without video or with ``fps == 0``.
    final: True on the last chunk (whose ``end_s`` is where the media ends).
    """

    start_s: float
    end_s: float
    audio: np.ndarray | None
    frames: tuple[Frame, ...]
    final: bool


def _source_name(source: str | BinaryIO) -> str:
    return source if isinstance(source, str) else getattr(source, "name", type(source).__name__)


def _check_not_empty(source: str | BinaryIO) -> None:
    if isinstance(source, str):
        if os.path.isfile(source) and os.path.getsize(source) == 0:
            raise MediaDecodeError(f"source {source!r} is an empty file")
        return
    if source.seekable():
        pos, empty = source.tell(), not source.read(1)
        source.seek(pos)
        if empty:
            raise MediaDecodeError(f"source {_source_name(source)!r} is empty")


@contextlib.contextmanager
def open_media(source: str | BinaryIO) -> Iterator[av.container.InputContainer]:
    """Open ``source`` (path or binary file object) for reading; closes it on exit.

    Raises ``MediaDecodeError`` for an empty or non-media source; ``FileNotFoundError``
    for a path that does not exist.
    """
    _check_not_empty(source)
    name = _source_name(source)
    try:
        container = open_container(source)
    except MediaRefused as e:
        raise MediaDecodeError(f"source {name!r}: {e}") from e
    except av.error.FileNotFoundError as e:
        raise FileNotFoundError(f"source {name!r} not found") from e
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise MediaDecodeError(
            f"source {name!r} is not a media file FFmpeg can read (or its header is "
            f"truncated or damaged): {e}"
        ) from e
    try:
        yield container
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream | None:
    """The first audio stream, or None; one whose header gives no channel layout (damaged)
    is not usable as audio."""
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    ctx = stream.codec_context  # None when FFmpeg has no decoder for the codec
    layout = ctx.layout if ctx is not None else None
    return stream if layout is not None and layout.nb_channels > 0 else None


def probe(container: av.container.InputContainer) -> MediaInfo:
    """The ``MediaInfo`` of an open container; ``MediaDecodeError`` if it has neither audio
    nor video."""
    video, audio = _video_stream(container), _audio_stream(container)
    if video is None and audio is None:
        raise MediaDecodeError(
            f"source {container.name!r} has no audio and no video stream "
            f"(format {container.format.name!r})"
        )
    duration = container.duration / av.time_base if container.duration else None
    spans = [float(s.duration * (s.time_base or 0)) for s in (video, audio) if s and s.duration]
    duration = duration if duration or not spans else max(spans)
    rate = (video.average_rate or video.guessed_rate) if video is not None else None
    ctx = video.codec_context if video is not None else None
    return MediaInfo(
        has_video=video is not None,
        has_audio=audio is not None,
        channels=audio.codec_context.layout.nb_channels if audio is not None else 0,
        duration_s=duration,
        width=ctx.width or None if ctx is not None else None,
        height=ctx.height or None if ctx is not None else None,
        video_fps=float(rate) if rate else None,
        container=container.format.name,
    )


def iter_chunks(source: str | BinaryIO, cfg: DecodeConfig) -> Iterator[MediaInfo | MediaChunk]:
    """Decode ``source`` in one streaming pass: the ``MediaInfo``, then ``MediaChunk`` s.

    Chunks are [k * chunk_s, (k + 1) * chunk_s) and contiguous; the last one has
    ``final=True`` and ends where the media ends (up to ``TAIL_S`` past its nominal end).
    Raises ``MediaDecodeError`` for an empty, non-media or stream-less source, and, possibly
    after some chunks were yielded, for more than ``MAX_DECODE_ERRORS`` damaged packets or
    streams ending well before the duration the header announces (truncation).
    """
    with open_media(source) as container:
        try:
            info = probe(container)
        except av.FFmpegError as e:  # a codec FFmpeg has no decoder for, a damaged header
            raise MediaDecodeError(
                f"source {_source_name(source)!r}: its streams cannot be decoded: {e}"
            ) from e
        check_limits(
            _source_name(source),
            cfg,
            channels=info.channels,
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
        )
        yield info
        yield from decode_container(container, info, cfg)


class LiveStalled(MediaDecodeError):
    """A live source gave no media for ``LiveConfig.stall_timeout_s``."""


def decode_container(
    container: av.container.InputContainer,
    info: MediaInfo,
    cfg: DecodeConfig,
    *,
    stall_s: float | None = None,
) -> Iterator[MediaChunk]:
    """The chunks of an open container. Live (``stall_s`` given): each chunk leaves as
    soon as its media has arrived (no lag tail), the end is not compared with a header
    duration, and an end that came ``stall_s`` after the last packet is a stall (FFmpeg's
    HLS demuxer reports an interrupted wait as the end of the stream)."""
    live = stall_s is not None
    dec = _Decoder(container, info, cfg)
    k = 0
    tail = 0.0 if live else TAIL_S
    deadline = time.monotonic() + cfg.max_decode_s
    last_packet = time.monotonic()
    for packet in _packets(container, dec.streams):
        if packet.size:  # not the empty flush packets demux yields at the end
            last_packet = time.monotonic()
        dec.add(packet)
        if dec.end > cfg.max_duration_s:
            raise MediaLimitError(
                f"source {container.name!r} decodes past the max_duration_s limit of "
                f"{cfg.max_duration_s:.0f} s"
            )
        _check_deadline(container.name, deadline, cfg)
        while dec.passed((k + 1) * cfg.chunk_s + tail):
            yield dec.chunk(k, final=False)
            k += 1
            _check_deadline(container.name, deadline, cfg)
    if stall_s is not None and time.monotonic() - last_packet >= STALL_MARGIN * stall_s:
        raise LiveStalled(
            f"live source {container.name!r} stalled: no media for {stall_s:.0f} s after "
            f"{dec.end:.1f} s (stall_timeout_s)"
        )
    dec.drain()
    if not live:
        _check_complete(container.name, dec.end, info)
    while dec.end > (k + 1) * cfg.chunk_s + tail:  # a stream that lagged to the end
        yield dec.chunk(k, final=False)
        k += 1
    yield dec.chunk(k, final=True)


def _check_deadline(name: str, deadline: float, cfg: DecodeConfig) -> None:
    if time.monotonic() > deadline:
        raise MediaLimitError(
            f"source {name!r}: decoding took over the max_decode_s limit of "
            f"{cfg.max_decode_s:.0f} s"
        )


class _Decoder:
    """Decoding state for one pass: which streams, how far each got, what is pending."""

    def __init__(
        self, container: av.container.InputContainer, info: MediaInfo, cfg: DecodeConfig
    ) -> None:
        self.name, self.chunk_s, self.errors = container.name, cfg.chunk_s, 0
        self.video, self.audio = _video_stream(container), _audio_stream(container)
        self.streams = [s for s in (self.audio, self.video) if s is not None]
        self.t0 = container.start_time / av.time_base if container.start_time else 0.0
        self.track = AudioTrack(info.channels) if self.audio is not None else None
        self.sampler: FrameSampler | None = None
        if self.video is not None and cfg.fps > 0:
            self.video.thread_type = "AUTO"  # frame + slice threads
            if cfg.threads:
                self.video.thread_count = cfg.threads
            self.sampler = FrameSampler(cfg.fps, cfg.max_side, 1 / (info.video_fps or cfg.fps))
        self.v_seen = self.v_end = -1.0  # latest video time (frames, or packets if fps == 0)

    def _time(self, obj: av.frame.Frame | av.Packet) -> float | None:
        pts, base = obj.pts, obj.time_base
        return float(pts * base) - self.t0 if pts is not None and base is not None else None

    def add(self, packet: av.Packet) -> None:
        """Decode one packet (video packets are only timed when no frames are wanted)."""
        try:
            if packet.stream is self.video and self.sampler is None:
                t = self._time(packet)
                if t is not None:
                    dur = float((packet.duration or 0) * (packet.time_base or 0))
                    self.v_seen, self.v_end = max(self.v_seen, t), max(self.v_end, t + dur)
                return
            for frame in packet.decode():
                self._frame(frame)
        except av.error.DecoderNotFoundError as e:
            raise MediaDecodeError(
                f"source {self.name!r}: no decoder for its {packet.stream.type} stream: {e}"
            ) from e
        except (av.FFmpegError, DamagedFrame) as e:  # damaged data (invalid, EPERM, ...)
            self.errors += 1
            if self.errors > MAX_DECODE_ERRORS:
                raise MediaDecodeError(
                    f"source {self.name!r} has a corrupt {packet.stream.type} stream: {e}"
                ) from e

    def _frame(self, frame: av.frame.Frame) -> None:
        t = self._time(frame)
        if isinstance(frame, av.VideoFrame) and self.sampler is not None:
            t = self.v_seen + self.sampler.frame_dur if t is None else t
            self.sampler.add(frame, t)
            self.v_seen, self.v_end = (
                max(self.v_seen, t),
                max(self.v_end, t + self.sampler.frame_dur),
            )
        elif isinstance(frame, av.AudioFrame) and self.track is not None:
            self.track.add(frame, t)

    def drain(self) -> None:
        """Flush the decoders' delayed frames at the end of the file."""
        for stream in self.streams:
            if stream is self.audio or self.sampler is not None:
                for frame in _flush(stream):
                    self._frame(frame)
        if self.track is not None:
            self.track.add(None, None)
        if self.sampler is not None:
            self.sampler.flush()

    def passed(self, t: float) -> bool:
        """Whether every stream got past ``t`` (or one is past it by the lag limit)."""
        progress = [self.v_seen] if self.video is not None else []
        if self.track is not None:
            progress.append(self.track.total / SAMPLE_RATE)
        return min(progress) > t or max(progress) > t + MAX_STREAM_LAG_S

    @property
    def end(self) -> float:
        """Where the decoded media ends."""
        return max(self.v_end, self.track.total / SAMPLE_RATE if self.track else 0.0)

    def chunk(self, k: int, *, final: bool) -> MediaChunk:
        """Chunk ``k``: [k * chunk_s, (k + 1) * chunk_s), or to the end when ``final``."""
        start = float(k * self.chunk_s)
        end = float(max(self.end, start)) if final else float((k + 1) * self.chunk_s)
        audio = None
        if self.track is not None:
            stop = None if final else round(end * SAMPLE_RATE)
            audio = self.track.take(round(start * SAMPLE_RATE), stop)
        frames = self.sampler.pop(start, None if final else end) if self.sampler else ()
        return MediaChunk(start_s=start, end_s=end, audio=audio, frames=frames, final=final)


def _packets(
    container: av.container.InputContainer, streams: Sequence[av.stream.Stream]
) -> Iterator[av.Packet]:
    """Demuxed packets; a demuxer failure becomes ``MediaDecodeError``."""
    try:
        yield from container.demux(*streams)
    except av.FFmpegError as e:
        raise MediaDecodeError(f"source {container.name!r} is corrupt: demuxing failed: {e}") from e


def _check_complete(name: str, end: float, info: MediaInfo) -> None:
    """Reject media that stops well short of the duration its header announces."""
    duration = info.duration_s or 0.0
    share = 0.25 if info.container in _ESTIMATED_DURATION_FORMATS else 0.05
    if end < duration - max(TRUNCATION_TOLERANCE_S, share * duration):
        raise MediaDecodeError(
            f"source {name!r} is truncated or corrupt: its streams end at {end:.2f} s "
            f"but its header says {duration:.2f} s"
        )


def _flush(stream: av.VideoStream | av.AudioStream) -> list[av.frame.Frame]:
    with contextlib.suppress(av.FFmpegError):  # damaged tail data: what decoded stays
        return list(stream.decode(None))
    return []

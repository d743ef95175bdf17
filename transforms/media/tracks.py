"""What the decoder keeps per stream (pure; no Beam): ``AudioTrack`` resamples a stream's
audio to 16 kHz planar float on one timeline (gaps filled with silence, damaged timing
refused) and ``FrameSampler`` picks the frames nearest to each sample time.
``transforms/media/decoding.py`` feeds them decoded frames and cuts chunks from them.
"""

from __future__ import annotations

import av
import numpy as np

from sentistream.models.audio import SAMPLE_RATE, PlanarResampler
from sentistream.transforms.media.limits import MediaDecodeError
from sentistream.transforms.records import Frame

# Timestamp jumps in the audio larger than this are filled with silence.
AUDIO_GAP_S = 0.05
# A jump ahead longer than this inside an audio stream is damaged timing, not a pause: filling
# it with silence would allocate without bound (16,000 samples per second of the jump).
MAX_AUDIO_JUMP_S = 600.0


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most ``max_side`` (aspect kept)."""
    scale = min(1.0, max_side / max(width, height))
    return (
        (width, height) if scale == 1 else (round(width * scale) or 1, round(height * scale) or 1)
    )


class AudioTrack:
    """Resamples decoded audio to 16 kHz fltp and keeps the not-yet-emitted samples."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.total = 0  # samples placed on the timeline so far (global index)
        self.base = 0  # global index of the first kept sample
        self._parts: list[np.ndarray] = []
        self._resampler: PlanarResampler | None = None
        self._next_in_t: float | None = None
        self._skip = 0  # output samples still to drop (audio starting before t = 0)

    def _append(self, arr: np.ndarray) -> None:
        if self._skip:
            cut = min(self._skip, arr.shape[1])
            arr, self._skip = arr[:, cut:], self._skip - cut
        if arr.shape[1]:
            self._parts.append(arr)
            self.total += arr.shape[1]

    def add(self, frame: av.AudioFrame | None, t: float | None) -> None:
        """Add a decoded frame at time ``t`` (or flush the resampler with ``None``)."""
        if frame is not None:
            self._resampler = self._resampler or PlanarResampler()  # every channel, 16 kHz
            if t is not None:
                expected = 0.0 if self._next_in_t is None else self._next_in_t
                if self._next_in_t is None and t < 0:
                    self._skip = round(-t * SAMPLE_RATE)
                elif t - expected > MAX_AUDIO_JUMP_S:
                    raise MediaDecodeError(
                        f"audio timestamps jump ahead by {t - expected:.0f} s at {expected:.1f} s"
                        f" (over {MAX_AUDIO_JUMP_S:.0f} s): the stream's timing is damaged"
                    )
                elif t - expected > AUDIO_GAP_S:
                    gap = round((t - expected) * SAMPLE_RATE)
                    self._append(np.zeros((self.channels, gap), np.float32))
                self._next_in_t = t + frame.samples / frame.sample_rate
        elif self._resampler is None:
            return
        arr = self._resampler.resample(frame)  # type: ignore[union-attr]
        if arr is not None:
            self._append(arr)  # planar: (channels, samples)

    def take(self, start: int, stop: int | None) -> np.ndarray:
        """Samples [start, stop) (global indices, clipped to what exists); drops all before
        ``stop``."""
        data = np.concatenate([np.zeros((self.channels, 0), np.float32), *self._parts], axis=1)
        stop = self.total if stop is None else min(stop, self.total)
        lo, hi = max(start - self.base, 0), max(stop - self.base, 0)
        out = np.ascontiguousarray(data[:, lo:hi])
        rest = data[:, hi:]
        self._parts = [rest] if rest.shape[1] else []
        self.base = max(self.base, stop)
        return out


class FrameSampler:
    """Picks, for each sample time k / fps, the decoded frame nearest to it."""

    def __init__(self, fps: float, max_side: int, frame_dur: float) -> None:
        self.fps, self.max_side, self.frame_dur = fps, max_side, frame_dur
        self.k = 0  # index of the next sample time
        self.prev: tuple[av.VideoFrame, float] | None = None  # last decoded frame and time
        self.last_taken: float | None = None  # time of the last frame taken (no repeats)
        self.pending: list[Frame] = []  # taken, not yet emitted

    def _take(self, frame: av.VideoFrame, t: float) -> None:
        if self.last_taken == t:
            return
        w, h = scaled_size(frame.width, frame.height, self.max_side)
        rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
        self.pending.append(Frame(t=max(t, 0.0), rgb=rgb))
        self.last_taken = t

    def add(self, frame: av.VideoFrame, t: float) -> None:
        while self.k / self.fps <= t:
            target = self.k / self.fps
            if self.prev is not None and target - self.prev[1] <= t - target:
                self._take(*self.prev)
            else:
                self._take(frame, t)
            self.k += 1
        self.prev = (frame, t)

    def flush(self) -> None:
        if self.prev is not None and self.k / self.fps < self.prev[1] + self.frame_dur:
            self._take(*self.prev)
        self.prev = None

    def pop(self, start: float, end: float | None) -> tuple[Frame, ...]:
        """Frames in [start, end) (to the end if None); earlier ones came too late: dropped."""
        taken = [f for f in self.pending if end is None or f.t < end]
        self.pending = self.pending[len(taken) :]
        return tuple(f for f in taken if f.t >= start)

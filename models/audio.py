"""Audio as every model reads it: 16 kHz mono float32, decoded with PyAV.

``read_audio(path)`` decodes any container and codec FFmpeg knows (wav, flac, mp3, ogg,
m4a, the audio track of a video), resamples with libswresample to 16 kHz planar float (the
pipeline's decoder, ``transforms/media/decoding.py``, does the same per chunk) and
averages the channels. Training and evaluation read their clips with it, so every format
``sentistream run`` accepts also trains and evaluates. The only audio reader in ``models``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

SAMPLE_RATE = 16_000  # Hz: Whisper's rate, the pipeline's and every audio model's

#: FFmpeg demuxers that media is read with: containers that carry their own streams.
#: Playlists (hls, dash), concat lists, image sequences, ``tee`` and network demuxers, which
#: make FFmpeg open other files or URLs named inside the input (a crafted ``.m3u8`` reads
#: files outside the input's folder or fetches URLs), are left out; FFmpeg refuses them.
MEDIA_FORMATS: tuple[str, ...] = (
    "mov", "matroska", "avi", "wav", "w64", "flac", "mp3", "ogg", "aac", "flv", "mpegts",
    "asf", "mpeg", "aiff", "caf", "amr", "ivf", "m4v", "h264", "hevc", "mjpeg", "mxf",
    "nut", "dv", "wv", "au",
)  # fmt: skip


def open_options(formats: tuple[str, ...] = MEDIA_FORMATS) -> dict[str, str]:
    """``av.open`` options for untrusted media: local files only (``protocol_whitelist``)
    and only the demuxers in ``formats`` (``format_whitelist``)."""
    return {"protocol_whitelist": "file", "format_whitelist": ",".join(formats)}


class MediaRefused(ValueError):
    """FFmpeg refused the input's container: not one of the allowed demuxers."""


def open_container(source: str | BinaryIO, formats: tuple[str, ...] = MEDIA_FORMATS) -> Any:
    """``av.open(source)`` with :func:`open_options`; :class:`MediaRefused` (a clear
    reason) when FFmpeg rejects the container as not allowed. Other FFmpeg errors pass."""
    try:
        return av.open(source, mode="r", options=open_options(formats))
    except av.error.ArgumentError as err:  # EINVAL: the demuxer is not whitelisted
        raise MediaRefused(
            "its container format is not an allowed media container (playlists such as "
            ".m3u8, concat lists and image sequences, which point FFmpeg at other files or "
            f"URLs, are refused; allowed demuxers: {', '.join(formats)})"
        ) from err


_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9.223372036854775808e18}


def _planar_float(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame as (channels, samples) float32 in [-1, 1], whatever its format."""
    arr = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:  # packed: (1, samples * channels), interleaved
        arr = arr.reshape(-1, channels).T
    name = frame.format.name.rstrip("p")
    if name in _INT_SCALE:
        offset = 128.0 if name == "u8" else 0.0
        return ((arr.astype(np.float32) - offset) / _INT_SCALE[name]).astype(np.float32)
    return arr.astype(np.float32, copy=False)


class DamagedFrame(ValueError):
    """A decoded audio frame whose header and data disagree (damaged input)."""


def check_frame(frame: av.AudioFrame, channels: int | None = None) -> None:
    """:class:`DamagedFrame` unless ``frame`` is internally consistent: its planes match its
    layout (planar: one per channel; packed: one), it has samples and a rate, and its channel
    count is ``channels`` when given (a count that changes mid-stream). Checked before its
    data is read: PyAV reads past the planes of an inconsistent frame and crashes the
    process (SIGSEGV) on damaged input that FFmpeg decoded anyway."""
    n = frame.layout.nb_channels
    want = n if frame.format.is_planar else 1
    if n < 1 or len(frame.planes) != want or frame.samples < 1 or frame.sample_rate < 1:
        raise DamagedFrame(
            f"damaged audio frame: {n} channels in {len(frame.planes)} planes, "
            f"{frame.samples} samples at {frame.sample_rate} Hz"
        )
    if channels is not None and n != channels:
        raise DamagedFrame(f"damaged audio: the channel count changes from {channels} to {n}")


class PlanarResampler:
    """Decoded audio frames -> (channels, samples) float32 planar at :data:`SAMPLE_RATE`.

    Mono and stereo go through one libswresample context. Any other channel count or an
    unnamed channel order ("8 channels") is resampled one channel at a time as mono:
    libswresample crashes the process (SIGSEGV, PyAV 14) converting 8 or more channels in
    an unnamed order, and a per-channel mono path keeps every channel without that risk.
    ``resample(None)`` flushes.
    """

    def __init__(self) -> None:
        self._joint: av.AudioResampler | None = None
        self._mono: list[av.AudioResampler] | None = None
        self._rate = 0
        self._channels: int | None = None

    def resample(self, frame: av.AudioFrame | None) -> np.ndarray | None:
        """The 16 kHz samples this frame completes, or None when none yet.

        Raises :class:`DamagedFrame` for a frame that is not consistent with itself or with
        the first frame's channel count and rate (nothing of it is read then)."""
        if frame is not None:
            check_frame(frame, self._channels)
            if self._rate and frame.sample_rate != self._rate:
                raise DamagedFrame(
                    f"damaged audio: the sample rate changes from {self._rate} to "
                    f"{frame.sample_rate} Hz"
                )
        if frame is not None and self._joint is None and self._mono is None:
            self._channels = frame.layout.nb_channels
            self._rate = frame.sample_rate
            if frame.layout.name in ("mono", "stereo"):
                self._joint = av.AudioResampler("fltp", frame.layout, SAMPLE_RATE)
            else:
                n = frame.layout.nb_channels
                self._mono = [av.AudioResampler("fltp", "mono", SAMPLE_RATE) for _ in range(n)]
        if self._joint is not None:
            outs = [o.to_ndarray() for o in self._joint.resample(frame)]
        elif self._mono is not None:
            outs = self._per_channel(frame)
        else:
            return None
        outs = [o for o in outs if o.shape[1]]
        return np.concatenate(outs, axis=1).astype(np.float32, copy=False) if outs else None

    def _per_channel(self, frame: av.AudioFrame | None) -> list[np.ndarray]:
        assert self._mono is not None
        planes = _planar_float(frame) if frame is not None else None
        per: list[np.ndarray] = []
        for i, resampler in enumerate(self._mono):
            mono = None
            if planes is not None:
                mono = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(planes[i : i + 1]), format="fltp", layout="mono"
                )
                mono.sample_rate = self._rate
            got = [o.to_ndarray()[0] for o in resampler.resample(mono)]
            per.append(np.concatenate(got) if got else np.zeros(0, np.float32))
        n = min(len(c) for c in per)
        return [np.stack([c[:n] for c in per])]


#: The level of digital silence (and the floor of every level): far below any recording's
#: noise floor, and a finite number, unlike log(0).
SILENCE_DBFS = -120.0


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` (float, full scale 1.0) in dB relative to full scale:
    ``20 log10(rms)``, so a full-scale square wave is 0 dBFS and a full-scale sine -3.01;
    floored at ``SILENCE_DBFS`` (empty or all-zero input included)."""
    if samples.size == 0:
        return SILENCE_DBFS
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    if not power > 0:  # zero, or NaN from damaged samples
        return SILENCE_DBFS
    return max(SILENCE_DBFS, round(10.0 * math.log10(power), 2))


def read_audio(path: str | Path) -> np.ndarray:
    """(samples,) float32 mono at :data:`SAMPLE_RATE` from the first audio stream of ``path``.

    Raises ValueError naming the file when it is missing, cannot be decoded or has no
    audio samples.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"audio file {path} does not exist")
    parts: list[np.ndarray] = []
    try:
        with open_container(str(path)) as container:
            if not container.streams.audio:
                raise ValueError(f"audio file {path} has no audio stream")
            stream = container.streams.audio[0]
            resampler = PlanarResampler()
            for frame in itertools.chain(container.decode(stream), [None]):
                out = resampler.resample(frame)
                if out is not None:
                    parts.append(out)
    except MediaRefused as err:
        raise ValueError(f"audio file {path}: {err}") from err
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise ValueError(f"audio file {path} cannot be decoded: {err}") from err
    if not parts or sum(p.shape[1] for p in parts) == 0:
        raise ValueError(f"audio file {path} holds no audio samples")
    planar = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
    return np.ascontiguousarray(planar.mean(axis=0), dtype=np.float32)


def speech_timestamps(
    audio: np.ndarray,
    *,
    threshold: float = 0.5,
    min_silence_ms: int = 400,
    speech_pad_ms: int = 100,
    max_speech_s: float = float("inf"),
) -> list[tuple[float, float]]:
    """Speech turns in 16 kHz mono ``audio`` as (start_s, end_s), by Silero VAD as shipped
    in faster-whisper (offline, ONNX). The one voice-activity call: segmentation
    (``transforms/media/segmenting.py``) and the voice model's voiced frames use it."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"audio must be 1-D 16 kHz mono, got shape {arr.shape}")
    if arr.size == 0:
        return []
    opts = VadOptions(
        threshold=threshold,
        min_silence_duration_ms=min_silence_ms,
        speech_pad_ms=speech_pad_ms,
        max_speech_duration_s=max_speech_s,
    )
    found = get_speech_timestamps(arr, vad_options=opts, sampling_rate=SAMPLE_RATE)
    return [(d["start"] / SAMPLE_RATE, d["end"] / SAMPLE_RATE) for d in found]


#: Voiced frames shorter than this in all are not trusted: the whole clip is kept.
MIN_VOICED_S = 0.25


def voiced_audio(audio: np.ndarray, *, speech_pad_ms: int = 100) -> np.ndarray:
    """Only the voiced stretches of a clip (Silero VAD, each padded by ``speech_pad_ms``),
    concatenated, so a clip's leading, trailing and inner pauses do not shape a voice
    score. When VAD finds under :data:`MIN_VOICED_S` of speech the clip is returned whole
    (the caller has already ruled out silence by level)."""
    arr = np.asarray(audio, dtype=np.float32)
    spans = speech_timestamps(arr, min_silence_ms=200, speech_pad_ms=speech_pad_ms)
    pieces = [arr[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for a, b in spans]
    total = sum(p.size for p in pieces)
    if total < MIN_VOICED_S * SAMPLE_RATE:
        return arr
    return np.concatenate(pieces)

"""Media generated at run time for tests and the demo (no encoded media is committed).

``tts`` (espeak-ng through ctypes, no binary needed), ``write_media`` (PyAV: mp4, mov,
mkv, flv, webm, wav, mp3), ``write_vtt``, frame generators, and ``make_sample`` (the
built-in demo video). Nothing happens on import.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from ctypes import c_char_p, c_int, c_size_t, c_uint, c_void_p
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from sentistream.transforms.media.captions import Cue, format_vtt

# ext -> (container format, video encoder candidates, audio encoder candidates)
_CONTAINERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "mp4": ("mp4", ("libx264", "mpeg4"), ("aac",)),
    "mov": ("mov", ("libx264", "mpeg4"), ("aac",)),
    "mkv": ("matroska", ("libx264", "mpeg4"), ("aac", "libopus")),
    "flv": ("flv", ("libx264", "flv"), ("aac", "libmp3lame")),
    "webm": ("webm", ("libvpx", "libvpx-vp9"), ("libopus", "vorbis")),
    "wav": ("wav", (), ("pcm_s16le",)),
    "mp3": ("mp3", (), ("libmp3lame", "mp3")),
}
CONTAINER_EXTENSIONS: tuple[str, ...] = tuple(_CONTAINERS)
# One encoder thread: the output is then byte-for-byte deterministic.
_DEFAULT_VIDEO_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "threads": "1"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8", "threads": "1"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "threads": "1"},
}

_ESPEAK_LOCK = threading.Lock()
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
# espeak-ng's speak_lib.h: AUDIO_OUTPUT_SYNCHRONOUS, espeakRATE, espeakCHARS_UTF8,
# POS_CHARACTER, espeakINITIALIZE_DONT_EXIT
_SYNCHRONOUS, _RATE, _UTF8, _POS_CHARACTER, _DONT_EXIT = 2, 1, 1, 1, 0x8000


def available_encoder(candidates: Sequence[str]) -> str | None:
    """The first encoder name in ``candidates`` that PyAV's FFmpeg can encode with."""
    for name in candidates:
        with contextlib.suppress(av.FFmpegError, ValueError):  # unknown codec
            return av.Codec(name, "w").name
    return None


def _load_espeak() -> tuple[ctypes.CDLL, bytes]:
    """A fresh handle on libespeak-ng (with its argtypes set) and its data path."""
    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_LOCAL)
        data = espeakng_loader.get_data_path().encode()
    except (ImportError, OSError, RuntimeError) as e:
        raise RuntimeError(
            f"cannot load the espeak-ng library for tts(): {e}; install espeakng-loader"
        ) from e
    lib.espeak_Initialize.argtypes = [c_int, c_int, c_char_p, c_int]
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [c_char_p]
    lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
    synth_args = [c_char_p, c_size_t, c_uint, c_int, c_uint, c_uint, c_void_p, c_void_p]
    lib.espeak_Synth.argtypes = synth_args
    return lib, data


def _unload(lib: ctypes.CDLL) -> None:
    """Unload the library so the next call starts from its pristine static state."""
    import _ctypes

    with contextlib.suppress(AttributeError, OSError):  # no dlclose on this platform
        _ctypes.dlclose(lib._handle)


def tts(text: str, *, voice: str = "en-us", rate_wpm: int = 160) -> tuple[np.ndarray, int]:
    """Synthesize ``text`` with espeak-ng: (float32 mono samples in [-1, 1], sample rate).

    Thread-safe (one process-wide lock) and deterministic: espeak-ng keeps synthesis
    state in C statics that ``espeak_Initialize`` does not reset (pitch flutter phase,
    ...), so each call loads the library afresh and unloads it after (about 5 ms).
    Raises ``RuntimeError`` when the library cannot be loaded or fails, ``ValueError``
    for a bad argument (empty text, unknown voice, rate outside 80..450 wpm).
    """
    if not text.strip():
        raise ValueError(f"text must not be empty, got {text!r}")
    if not 80 <= rate_wpm <= 450:
        raise ValueError(f"rate_wpm must be in [80, 450], got {rate_wpm!r}")
    chunks: list[np.ndarray] = []

    def on_audio(wav: ctypes.c_void_p, n: int, _events: ctypes.c_void_p) -> int:
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = _SYNTH_CALLBACK(on_audio)
    data = text.encode("utf-8")
    with _ESPEAK_LOCK:
        lib, path = _load_espeak()
        try:
            rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, path, _DONT_EXIT)
            if rate <= 0:
                raise RuntimeError(f"espeak_Initialize failed ({rate}) with data at {path!r}")
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"voice {voice!r} is not known to espeak-ng")
            lib.espeak_SetParameter(_RATE, int(rate_wpm), 0)
            err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with error {err}")
        finally:
            lib.espeak_Terminate()
            _unload(lib)
    return np.concatenate([np.zeros(0, np.int16), *chunks]) / np.float32(32768.0), int(rate)


def trim_silence(audio: np.ndarray, level: float = 1e-3) -> np.ndarray:
    """``audio`` (1-D) without its leading and trailing samples quieter than ``level``."""
    loud = np.flatnonzero(np.abs(audio) > level)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def resample(audio: np.ndarray, rate_in: int, rate_out: int = 16000) -> np.ndarray:
    """``audio`` (1-D float32 mono) resampled from ``rate_in`` to ``rate_out`` (FFmpeg)."""
    arr = np.ascontiguousarray(audio, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"audio must be 1-D mono, got shape {arr.shape}")
    if rate_in == rate_out or arr.size == 0:
        return arr.copy()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate_out)
    frame = av.AudioFrame.from_ndarray(arr[None, :], format="flt", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = rate_in, 0, Fraction(1, rate_in)
    out = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.float32)


def write_media(
    path: str | Path,
    *,
    frames: Iterable[np.ndarray] | None,
    fps: float = 25.0,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    video_codec: str | None = None,
    audio_codec: str | None = None,
    video_options: Mapping[str, str] | None = None,
) -> Path:
    """Encode RGB ``frames`` (H, W, 3 uint8, even H and W) and/or ``audio`` to ``path``.

    The container follows the extension (``CONTAINER_EXTENSIONS``); codecs default to the
    first available candidate. ``audio``: (channels, samples) or (samples,) float32 at
    ``sample_rate``. Packets are written interleaved, so memory does not grow with length.
    ``video_options`` go to the encoder (default: one thread, so output is deterministic).
    """
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if ext not in _CONTAINERS:
        raise ValueError(f"path extension must be one of {CONTAINER_EXTENSIONS}, got {path}")
    fmt, video_cands, audio_cands = _CONTAINERS[ext]
    if (frames is None and audio is None) or (frames is not None and not video_cands):
        raise ValueError(f"need frames or audio, and no frames for {ext!r}; got {frames!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    chans = None if audio is None else np.ascontiguousarray(np.atleast_2d(audio), np.float32)
    if chans is not None and (chans.ndim != 2 or not 1 <= len(chans) <= 8):
        raise ValueError(f"audio must be (channels <= 8, samples), got {chans.shape}")
    frame_iter = iter(frames) if frames is not None else None
    first = next(frame_iter, None) if frame_iter is not None else None
    if frame_iter is not None and first is None:
        raise ValueError("frames must not be empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format=fmt) as out:
        vstream = astream = None
        if first is not None:
            vstream = _add_video(out, first, fps, video_codec or video_cands, video_options)
        if chans is not None:
            astream = _add_audio(out, chans.shape[0], sample_rate, audio_codec or audio_cands)
        a_pos = 0
        if vstream is not None and frame_iter is not None and first is not None:
            for i, rgb in enumerate(itertools.chain([first], frame_iter)):
                if rgb.shape != first.shape or rgb.dtype != np.uint8:
                    raise ValueError(f"frames must all be uint8 {first.shape}, got {rgb.shape}")
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = i
                out.mux(vstream.encode(frame))
                if astream is not None and chans is not None:  # keep packets interleaved
                    upto = round((i + 1) / fps * sample_rate)
                    a_pos = _push_audio(out, astream, chans, a_pos, upto, sample_rate)
            out.mux(vstream.encode(None))
        if astream is not None and chans is not None:
            _push_audio(out, astream, chans, a_pos, chans.shape[1], sample_rate)
            out.mux(astream.encode(None))
    return path


def _pick(codec: str | Sequence[str]) -> str:
    cands = (codec,) if isinstance(codec, str) else tuple(codec)
    name = available_encoder(cands)
    if name is None:
        raise ValueError(f"no encoder available among {cands} in PyAV's FFmpeg")
    return name


def _add_video(
    out: av.container.OutputContainer,
    first: np.ndarray,
    fps: float,
    codec: str | Sequence[str],
    options: Mapping[str, str] | None,
) -> av.VideoStream:
    if first.ndim != 3 or first.shape[2] != 3 or first.shape[0] % 2 or first.shape[1] % 2:
        raise ValueError(f"frames must be (H, W, 3) with even H and W, got {first.shape}")
    name = _pick(codec)
    rate = Fraction(fps).limit_denominator(1001)
    opts = dict(options) if options is not None else _DEFAULT_VIDEO_OPTIONS.get(name, {})
    stream: av.VideoStream = out.add_stream(name, rate=rate, options=opts)  # type: ignore[assignment]
    stream.width, stream.height = int(first.shape[1]), int(first.shape[0])
    stream.pix_fmt = "yuv420p"
    stream.time_base = 1 / rate
    return stream


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def _add_audio(
    out: av.container.OutputContainer, channels: int, rate: int, codec: str | Sequence[str]
) -> av.AudioStream:
    codec_obj = av.Codec(_pick(codec), "w")
    supported = codec_obj.audio_rates  # opus: 48 kHz and a few others; PyAV resamples
    enc_rate = rate if not supported or rate in supported else 48000
    # FFmpeg's own vorbis encoder is marked experimental: it must be asked for explicitly.
    opts = {"strict": "experimental"} if codec_obj.experimental else {}
    stream: av.AudioStream = out.add_stream(codec_obj.name, rate=enc_rate, options=opts)  # type: ignore[assignment]
    stream.layout = _layout(channels)
    return stream


def _push_audio(
    out: av.container.OutputContainer, stream: av.AudioStream, chans: np.ndarray, *span: int
) -> int:
    """Encode samples [start, stop) of ``chans`` (span = start, stop, rate); new start."""
    start, stop, rate = span
    stop = min(stop, chans.shape[1])
    for a in range(start, stop, 4096):
        piece = np.ascontiguousarray(chans[:, a : min(a + 4096, stop)])
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=_layout(len(chans)))
        frame.sample_rate, frame.pts, frame.time_base = rate, a, Fraction(1, rate)
        out.mux(stream.encode(frame))
    return max(start, stop)


def write_vtt(path: str | Path, cues: Iterable[Cue]) -> Path:
    """Write ``cues`` as a WebVTT file at ``path``."""
    Path(path).write_text(format_vtt(cues), encoding="utf-8")
    return Path(path)


def _backgrounds(size: tuple[int, int], n_frames: int, fps: float) -> Iterator[np.ndarray]:
    """Frames of a colour gradient panning slowly sideways."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames!r}")
    w, h = size
    x = np.linspace(0.0, 1.0, w + 64, dtype=np.float32)[None, :, None]
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    base = np.clip([40, 70, 110] + x * [60, 0, -40] + y * [0, 50, 20], 0, 255).astype(np.uint8)
    for i in range(n_frames):
        dx = round(32 + 31 * np.sin(2 * np.pi * 0.05 * i / fps))
        yield base[:, dx : dx + w].copy()


def talking_head_frames(
    face_rgb: np.ndarray, n_frames: int, size: tuple[int, int] = (640, 360), fps: float = 25.0
) -> Iterator[np.ndarray]:
    """``n_frames`` frames (size = (width, height)) of ``face_rgb`` on a background.

    The image fills about 90 % of the height and sways gently (a few pixels, slight
    zoom), like a person on a call. Deterministic.
    """
    import cv2

    if face_rgb.ndim != 3 or face_rgb.shape[2] != 3:
        raise ValueError(f"face_rgb must be (H, W, 3), got {face_rgb.shape}")
    w, h = size
    base = 0.9 * h / face_rgb.shape[0]
    for i, frame in enumerate(_backgrounds(size, n_frames, fps)):
        t = i / fps
        scale = base * (1.0 + 0.02 * np.sin(2 * np.pi * 0.3 * t))
        fw, fh = int(face_rgb.shape[1] * scale), int(face_rgb.shape[0] * scale)
        face = cv2.resize(face_rgb, (fw, fh), interpolation=cv2.INTER_AREA)
        x0 = (w - fw) // 2 + int(round(6 * np.sin(2 * np.pi * 0.4 * t)))
        y0 = (h - fh) // 2 + int(round(3 * np.sin(2 * np.pi * 0.7 * t)))
        (xs, ys), (xe, ye) = (max(x0, 0), max(y0, 0)), (min(x0 + fw, w), min(y0 + fh, h))
        frame[ys:ye, xs:xe] = face[ys - y0 : ye - y0, xs - x0 : xe - x0]
        yield frame


def no_face_frames(
    n_frames: int, size: tuple[int, int] = (640, 360), fps: float = 25.0
) -> Iterator[np.ndarray]:
    """``n_frames`` (>= 1) frames with no face: a moving gradient and a drifting square."""
    w, h = size
    side = max(h // 5, 2)
    for i, frame in enumerate(_backgrounds(size, n_frames, fps)):
        t = i / fps
        x0 = int((w - side) * (0.5 + 0.4 * np.sin(2 * np.pi * 0.2 * t)))
        y0 = int((h - side) * (0.5 + 0.3 * np.cos(2 * np.pi * 0.2 * t)))
        frame[y0 : y0 + side, x0 : x0 + side] = (230, 200, 40)
        yield frame


SAMPLE_VERSION = "demo-v1"
SAMPLE_NAME = "sentistream_demo"
SAMPLE_SENTENCES: tuple[tuple[float, str], ...] = (
    (1.0, "I am really happy with how this turned out, thank you so much!"),
    (7.5, "The meeting is scheduled for Tuesday at ten in the morning."),
    (13.5, "This is awful, I am very disappointed and angry."),
)
SAMPLE_DURATION_S = 20.0
SAMPLE_CROP = (0, 330, 60, 390)  # rows, cols of the portrait: head and shoulders


def sample_speech() -> tuple[np.ndarray, int, list[Cue]]:
    """The demo's mono speech track, its sample rate, and one cue per sentence (the time
    its speech sounds, silence trimmed)."""
    track, rate, cues, cursor = np.zeros(0, np.float32), 0, [], 0.0
    for planned, text in SAMPLE_SENTENCES:
        speech, rate = tts(text)
        speech = trim_silence(speech)
        track = track if track.size else np.zeros(round(SAMPLE_DURATION_S * rate), np.float32)
        start = max(planned, cursor + 1.0)
        a = round(start * rate)
        track[a : a + speech.size] = speech[: track.size - a]
        cursor = min(start + speech.size / rate, SAMPLE_DURATION_S)
        cues.append(Cue(round(start, 3), round(cursor, 3), text))
    return track, rate, cues


def _sample_key() -> str:
    spec = [SAMPLE_VERSION, SAMPLE_SENTENCES, SAMPLE_DURATION_S, SAMPLE_CROP, av.__version__]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def make_sample(out_dir: str | Path) -> Path:
    """Write (or reuse) the built-in DEMO video and return the path of its mp4.

    A 20 s 640x360 25 fps H.264 + AAC clip of scikit-image's astronaut portrait (Eileen
    Collins, NASA, public domain) with espeak-ng speech of three sentences: positive,
    neutral, negative; beside it ``<name>.vtt`` (those sentences and times), a README
    line saying it is a demo, and a manifest with the spec key and the mp4's sha256.
    Deterministic; an existing file with the same key and hash is reused.
    """
    from skimage import data as skdata

    out = Path(out_dir)
    mp4, vtt = out / f"{SAMPLE_NAME}.mp4", out / f"{SAMPLE_NAME}.vtt"
    manifest = out / f"{SAMPLE_NAME}.json"
    key = _sample_key()
    if mp4.is_file() and vtt.is_file() and manifest.is_file():
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        if meta.get("key") == key and meta.get("sha256") == _sha256(mp4):
            return mp4
    out.mkdir(parents=True, exist_ok=True)
    track, rate, cues = sample_speech()
    r0, r1, c0, c1 = SAMPLE_CROP
    face = np.ascontiguousarray(skdata.astronaut()[r0:r1, c0:c1])
    frames = talking_head_frames(face, round(SAMPLE_DURATION_S * 25))
    tmp = out / f".{SAMPLE_NAME}.tmp.mp4"
    write_media(tmp, frames=frames, fps=25.0, audio=track, sample_rate=rate)
    tmp.replace(mp4)
    write_vtt(vtt, cues)
    (out / f"{SAMPLE_NAME}.README.md").write_text(
        f"{SAMPLE_NAME}.mp4 is a synthetic DEMO clip made by sentistream.pipelines.demo.synth."
        "make_sample: NASA's public-domain astronaut portrait (skimage.data.astronaut) with "
        f"espeak-ng speech; captions in {SAMPLE_NAME}.vtt. Not real data.\n",
        encoding="utf-8",
    )
    manifest.write_text(json.dumps({"key": key, "sha256": _sha256(mp4)}), encoding="utf-8")
    return mp4

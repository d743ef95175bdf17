"""Voice features and heads: Whisper encoder statistics + prosody, optional per-channel
normalisation, and a hierarchical head (emotion classes -> valence and arousal).

``audio (16 kHz) -> Whisper encoder states (T, 384) -> mean+std (768) ++ prosody (20)
-> [channel normalisation] -> standardiser -> linear -> 7 emotions -> valence, arousal``.

* Whisper mean+std: :func:`~sentistream.models.whisper.encode_pooled` (768).
* :func:`prosody_features`: :data:`PROSODY_NAMES` (pitch from
  ``torchaudio.functional.detect_pitch_frequency``, frame energy, speaking-rate proxies,
  spectral shape).
* :func:`channel_normalise`: standardise a clip's features by the statistics of the
  earlier clips of the same channel (speaker / video audio channel); see its docstring
  for how a pipeline carries them. :func:`channel_prior` and :func:`zscore` are the
  training side.
* :class:`EmotionHead`, :class:`VoiceHeads`, :func:`valence_arousal`: the heads a bundle
  holds and their aggregation; :class:`~sentistream.models.voice.model.VoiceEmotionModel`
  ties them to the encoder.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torchaudio
from torch import nn

from sentistream.models.audio import SAMPLE_RATE

PROSODY_NAMES: tuple[str, ...] = (
    "log_duration_s",
    "active_ratio",
    "energy_db_mean",
    "energy_db_std",
    "energy_db_range",
    "energy_db_delta",
    "f0_median_st",
    "f0_p10_st",
    "f0_p90_st",
    "f0_range_st",
    "f0_std_st",
    "f0_delta_st",
    "f0_slope_st_per_s",
    "peaks_per_s",
    "pauses_per_s",
    "centroid_log_hz",
    "centroid_std",
    "high_band_ratio",
    "flatness",
    "zcr",
)
_FRAME, _HOP = 400, 160  # 25 ms / 10 ms at 16 kHz
F0_LOW, F0_HIGH = 60, 500


def _frames(wave: np.ndarray) -> np.ndarray:
    """(samples,) -> (F, 400) frames, hop 160 (zero-padded to one frame at least)."""
    if len(wave) < _FRAME:
        wave = np.pad(wave, (0, _FRAME - len(wave)))
    n = 1 + (len(wave) - _FRAME) // _HOP
    idx = np.arange(_FRAME)[None, :] + _HOP * np.arange(n)[:, None]
    return wave[idx]


def _peaks(x: np.ndarray, floor: float) -> int:
    """Local maxima of ``x`` above ``floor`` (at least 5 frames apart)."""
    count, last = 0, -10
    for i in range(1, len(x) - 1):
        if x[i] >= floor and x[i] > x[i - 1] and x[i] >= x[i + 1] and i - last >= 5:
            count, last = count + 1, i
    return count


def prosody_features(audio: np.ndarray) -> np.ndarray:
    """(samples,) float32 16 kHz mono -> (len(PROSODY_NAMES),) float32 prosody.

    Clips under 0.5 s are zero-padded to it. Frames of 25 ms every 10 ms; *active* frames
    lie within 30 dB of the clip's 95th percentile energy. Pitch: ``detect_pitch_frequency``
    (60-500 Hz) on active frames, in semitones re 100 Hz. Rate proxies: peaks of the
    smoothed energy envelope and pauses (>= 15 inactive frames) per active second.
    """
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError(f"audio must be a non-empty 1-D array, got {wave.shape}")
    duration = len(wave) / SAMPLE_RATE
    wave = np.pad(wave, (0, max(0, SAMPLE_RATE // 2 - len(wave))))  # pitch needs >= 0.5 s
    frames = _frames(wave.astype(np.float64))
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    active = energy > np.percentile(energy, 95) - 30.0
    e_act = energy[active]
    pitch = torchaudio.functional.detect_pitch_frequency(
        torch.from_numpy(wave)[None], SAMPLE_RATE, freq_low=F0_LOW, freq_high=F0_HIGH
    )[0].numpy()
    pitch_at = np.minimum(
        (np.arange(len(energy)) * len(pitch)) // max(len(energy), 1), len(pitch) - 1
    )
    f0 = pitch[pitch_at][active]
    st = 12 * np.log2(np.clip(f0, F0_LOW, F0_HIGH) / 100.0)
    t = np.flatnonzero(active) * _HOP / SAMPLE_RATE
    slope = float(np.polyfit(t, st, 1)[0]) if len(st) >= 3 and np.ptp(t) > 0 else 0.0
    active_s = max(active.sum() * _HOP / SAMPLE_RATE, 1e-2)
    smooth = np.convolve(energy, np.ones(5) / 5, mode="same")
    peaks = _peaks(smooth, float(np.percentile(e_act, 50)))
    pauses = int(np.sum(np.diff(np.flatnonzero(active)) >= 15))
    spec = np.abs(np.fft.rfft(frames[active] * np.hanning(_FRAME), axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(_FRAME, 1 / SAMPLE_RATE)
    centroid = (spec * freqs).sum(1) / spec.sum(1)
    high = spec[:, freqs >= 1000].sum(1) / spec.sum(1)
    flat = np.exp(np.mean(np.log(spec), 1)) / np.mean(spec, 1)
    zcr = np.mean(np.abs(np.diff(np.sign(frames[active]), axis=1)) > 0, axis=1)
    e10, e90 = np.percentile(e_act, [10, 90])
    s10, s50, s90 = np.percentile(st, [10, 50, 90])
    d_e = np.abs(np.diff(e_act)).mean() if len(e_act) > 1 else 0.0
    d_st = np.abs(np.diff(st)).mean() if len(st) > 1 else 0.0
    c_mean = centroid.mean() + 1.0
    values = [math.log(duration), active.mean(), e_act.mean(), e_act.std()]
    values += [e90 - e10, d_e, s50, s10, s90, s90 - s10, st.std(), d_st, slope]
    values += [peaks / active_s, pauses / active_s, np.log(c_mean), centroid.std() / c_mean]
    values += [high.mean(), flat.mean(), zcr.mean()]
    return np.asarray(values, dtype=np.float32)


# ----------------------------------------------------------------- channel normalisation


class ChannelStats(NamedTuple):
    """What a pipeline carries per channel: count, sum and sum of squares of the features
    of the channel's clips so far (2 D + 1 numbers; :meth:`empty` to start)."""

    n: int
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> ChannelStats:
        return cls(0, np.zeros(dim), np.zeros(dim))


def channel_normalise(
    features: np.ndarray,
    previous: ChannelStats,
    prior_mean: np.ndarray,
    prior_var: np.ndarray,
    prior_weight: float = 1.0,
) -> tuple[np.ndarray, ChannelStats]:
    """Standardise each clip by the statistics of its channel up to and including itself.

    Clip i (in order) becomes ``(x_i - m_i) / sqrt(v_i)``, where ``m_i`` / ``v_i`` are the
    mean / variance of the channel's clips so far (``previous`` plus clips 0..i of this
    call), each shrunk towards the prior with ``prior_weight`` pseudo-clips (the training
    population mean; the mean within-speaker variance). Pure: the pipeline keeps the
    returned stats per channel key (video id + speaker or audio channel), e.g. in a
    stateful DoFn's ``ReadModifyWriteState``, and passes them with the next segments of
    that channel in time order. A channel's first clips lean on the prior (the model card
    gives accuracy by position in the channel).

    Args:
        features: (N, D) features of one channel's next clips, in time order.
        previous: the channel's stats before them (``ChannelStats.empty(D)`` at its start).
        prior_mean, prior_var: (D,) prior mean and variance (> 0).
        prior_weight: pseudo-count of the prior (> 0).

    Returns:
        (N, D) float32 normalised features and the channel's updated stats.
    """
    x = np.asarray(features, dtype=np.float64)
    dim = len(prior_mean)
    if x.ndim != 2 or x.shape[1] != dim or previous.total.shape != (dim,):
        raise ValueError(f"features must be (N, {dim}) with (D,) stats, got {x.shape}")
    if prior_weight <= 0:
        raise ValueError(f"prior_weight must be > 0, got {prior_weight!r}")
    n, total, total_sq = previous.n, previous.total.astype(np.float64), previous.total_sq
    out = np.empty_like(x)
    for i, row in enumerate(x):
        n, total, total_sq = n + 1, total + row, total_sq + row * row
        mean = (prior_weight * prior_mean + total) / (prior_weight + n)
        scatter = np.maximum(total_sq - total * total / n, 0.0)
        var = (prior_weight * prior_var + scatter) / (prior_weight + n)
        out[i] = (row - mean) / np.sqrt(np.maximum(var, 1e-12))
    return out.astype(np.float32), ChannelStats(n, total, np.asarray(total_sq, np.float64))


def zscore(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(N, D) rows standardised by their group's own mean and std (training side)."""
    out = np.empty_like(x)
    for g in np.unique(groups):
        m = groups == g
        out[m] = (x[m] - x[m].mean(0)) / np.maximum(x[m].std(0), 1e-6)
    return out


def channel_prior(x: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The prior of :func:`channel_normalise` from (N, D) training features and their
    (N,) speakers: the population mean and the mean within-speaker variance."""
    within = np.mean([x[groups == g].var(0) for g in np.unique(groups)], axis=0)
    return x.mean(0), np.maximum(within, 1e-12)


# ----------------------------------------------------------------- head

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
EMOTION_VALENCE = (1, 2, 0, 0, 0, 0, 2)  # index into VALENCE_LABELS (surprised: positive)
EMOTION_AROUSAL = (0, 1, 0, 1, 1, -1, 1)  # 1 high, 0 low, -1 not counted (disgust)


def valence_arousal(emotion_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 7) emotion probabilities -> (N, 3) valence probabilities (sums over the emotions
    of each class) and (N,) P(high arousal) among the emotions with an arousal label."""
    p = np.asarray(emotion_probs, dtype=np.float64)
    to_val = np.eye(3)[list(EMOTION_VALENCE)]
    aro = np.asarray(EMOTION_AROUSAL)
    high, low = p[:, aro == 1].sum(1), p[:, aro == 0].sum(1)
    return np.clip(p @ to_val, 0.0, 1.0), high / np.maximum(high + low, 1e-12)


class EmotionHead(nn.Module):
    """Standardiser + linear emotion classifier: (N, in_features) -> (N, 7) logits. The
    ``mean`` / ``scale`` buffers are set by the trainer."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, *, in_features: int, n_classes: int = len(EMOTIONS)) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features must be >= 1, got {in_features!r}")
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.linear = nn.Linear(in_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.scale)


class VoiceHeads(nn.Module):
    """A voice bundle's weights: ``plain`` (globally standardised features) and ``channel``
    (channel-normalised features) heads, and the channel prior (``prior_mean/var``). The
    heads give 7 emotion logits (``n_classes=7``) or, for a bundle trained on valence labels
    only (``params["target"] == "valence"``), 3 valence logits."""

    prior_mean: torch.Tensor
    prior_var: torch.Tensor

    def __init__(self, *, in_features: int, n_classes: int = len(EMOTIONS)) -> None:
        super().__init__()
        self.plain = EmotionHead(in_features=in_features, n_classes=n_classes)
        self.channel = EmotionHead(in_features=in_features, n_classes=n_classes)
        self.register_buffer("prior_mean", torch.zeros(in_features, dtype=torch.float64))
        self.register_buffer("prior_var", torch.ones(in_features, dtype=torch.float64))

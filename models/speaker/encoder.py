"""Speaker embeddings: the GE2E voice encoder of Resemblyzer (Wan et al., 2018), loaded
into our own torch module.

``resemblyzer==0.1.4`` (Apache-2.0) ships the encoder's trained weights
(``resemblyzer/pretrained.pt``), but its own code needs librosa and webrtcvad, and
webrtcvad has no wheel (it needs a C compiler). ``models/training/speaker_convert.py``
takes the weights out of the wheel once, into the bundle ``speaker-ge2e-resemblyzer``,
which loads here with ``strict=True``; the mel frames are computed with torchaudio exactly
as Resemblyzer's ``wav_to_mel_spectrogram`` does with librosa (a power mel spectrogram,
not a log one: 40 Slaney mel bands, 25 ms Hann window, 10 ms step, zero padding at the
ends).

Pure apart from loading the bundle; nothing loads at import.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import torch
import torchaudio
from torch import nn

from sentistream.models.audio import SAMPLE_RATE, SILENCE_DBFS, level_dbfs
from sentistream.models.bundle import (
    DEFAULT_BUNDLES,
    Bundled,
    BundleMeta,
    load_bundle_meta,
    load_weights_strict,
)
from sentistream.models.cache import shared_model

N_MELS = 40
N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
HIDDEN = 256
LAYERS = 3
EMBED_DIM = 256
PARTIAL_FRAMES = 160  # the 1.6 s the encoder was trained on
TARGET_DBFS = -30.0  # Resemblyzer's preprocessing: quieter audio is raised to this level


class GE2EEncoder(nn.Module):
    """(B, T, 40) power mel frames -> (B, 256) L2-normalised embeddings: a 3-layer LSTM,
    its last hidden state through a linear layer and a ReLU (Resemblyzer's
    ``VoiceEncoder``, without its GE2E loss parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBED_DIM)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


@lru_cache(maxsize=1)
def _mel() -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE,
        n_fft=N_FFT,
        hop_length=HOP,
        n_mels=N_MELS,
        f_min=0.0,
        f_max=SAMPLE_RATE / 2,
        window_fn=torch.hann_window,
        power=2.0,
        center=True,
        pad_mode="constant",
        norm="slaney",
        mel_scale="slaney",
    )


def raise_level(audio: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """``audio`` scaled up to ``target_dbfs`` RMS if it is quieter (never scaled down),
    as Resemblyzer's ``normalize_volume(..., increase_only=True)``."""
    level = level_dbfs(audio)
    if level <= SILENCE_DBFS:  # digital silence: nothing to raise
        return audio
    gain_db = target_dbfs - level
    return audio if gain_db <= 0 else (audio * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def mel_frames(audio: np.ndarray) -> np.ndarray:
    """16 kHz mono float32 samples -> (T, 40) float32 power mel frames, T = 1 + n // 160."""
    with torch.inference_mode():
        mel = _mel()(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)))
    return mel.T.numpy()


class SpeakerEncoder(Bundled):
    """A loaded speaker-embedding bundle: ``embed`` audio pieces -> unit vectors, one per
    piece (cosine similarity near 1: the same voice)."""

    def __init__(self, meta: BundleMeta, model: GE2EEncoder, device: str = "cpu") -> None:
        self.meta = meta
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self._lock = threading.Lock()  # one LSTM call at a time: torch already uses the cores

    @classmethod
    def load(
        cls, name_or_path: str = DEFAULT_BUNDLES["speaker"], device: str = "cpu"
    ) -> SpeakerEncoder:
        """Load a shipped bundle by name, or a bundle ``.json`` by path (strict weights)."""
        meta = load_bundle_meta(name_or_path, expected_kind="speaker")
        model = load_weights_strict(GE2EEncoder(), meta, "do not fit the GE2E encoder")
        return cls(meta, model, device)

    def embed(self, pieces: list[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
        """(N, 256) float32 embeddings of N pieces of 16 kHz audio (each raised to -30
        dBFS if quieter). Pieces of one length share a batch; any length works, but the
        encoder was trained on 1.6 s (``PARTIAL_FRAMES``)."""
        out = np.zeros((len(pieces), EMBED_DIM), np.float32)
        mels = [mel_frames(raise_level(p)) for p in pieces]
        by_len: dict[int, list[int]] = {}
        for i, m in enumerate(mels):
            by_len.setdefault(len(m), []).append(i)
        with self._lock, torch.inference_mode():
            for idx in by_len.values():
                for start in range(0, len(idx), batch_size):
                    part = idx[start : start + batch_size]
                    x = torch.from_numpy(np.stack([mels[i] for i in part])).to(self.device)
                    out[part] = self.model(x).float().cpu().numpy()
        return out


def load_speaker_encoder(
    name_or_path: str = DEFAULT_BUNDLES["speaker"], device: str = "cpu"
) -> SpeakerEncoder:
    """The process's one ``SpeakerEncoder`` of a bundle and device (loaded on first use,
    then shared by every step and thread of the worker)."""
    return shared_model(
        ("speaker", name_or_path, device), lambda: SpeakerEncoder.load(name_or_path, device)
    )

"""Shared fixtures of the model tests: generated speech-like audio, a stand-in encoder."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from sentistream.models.audio import SAMPLE_RATE


def _speechlike(seconds: float, seed: int = 0, f0: float = 140.0, gain: float = 0.1) -> np.ndarray:
    """A voiced-sounding test signal: harmonics of a wobbling f0 under a syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t))) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    return (gain * envelope * voiced + 0.001 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="session")
def speechlike() -> Callable[..., np.ndarray]:
    """``speechlike(seconds, seed=0, f0=140.0, gain=0.1)`` -> (samples,) float32 at 16 kHz."""
    return _speechlike


def _fake_encoder(texts: list[str]) -> np.ndarray:
    """Deterministic stand-in for MiniLM: (N, 384) from a hash of each text."""
    rows = [np.random.default_rng(sum(map(ord, t))).standard_normal(384) for t in texts]
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)


@pytest.fixture(scope="session")
def fake_encoder() -> Callable[[list[str]], np.ndarray]:
    """A MiniLM stand-in for ``TextSentimentModel.load(..., encoder=...)``."""
    return _fake_encoder

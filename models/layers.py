"""Torch building blocks the model heads share."""

from __future__ import annotations

from torch import nn


def linear_or_mlp(in_dim: int, out_dim: int, hidden: int = 0, dropout: float = 0.0) -> nn.Module:
    """``nn.Linear`` when ``hidden == 0``, else a one-hidden-layer MLP (linear, GELU,
    dropout, linear); its state-dict keys are ``weight`` / ``bias`` or ``0.*`` / ``3.*``."""
    if hidden == 0:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, out_dim),
    )

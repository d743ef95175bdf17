"""The worker process's one copy of each loaded model.

Every model the pipeline runs is loaded through :func:`shared_model`, keyed by what makes
it different (kind, bundle, device, and for Whisper its compute type and threads). The
first call loads it; every later call in the same process, from any step, thread or
bundle, gets the same object.

Beam's own sharing (``apache_beam.utils.shared``, which RunInference uses) keeps only the
most recently acquired object alive between bundles. A job fuses four model steps into
one stage, so on a runner that sets up and tears down the DoFns of every bundle (the
Dask runner does, once per partition) three of the four models were loaded again for
each bundle. Here they stay loaded for the life of the worker process.

:func:`model_loads` reports how often each key was asked for and how often it was really
loaded (the cluster test checks that each model loads once per worker process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_MODELS: dict[tuple[Hashable, ...], Any] = {}
_LOADS: dict[tuple[Hashable, ...], int] = {}
_ASKED: dict[tuple[Hashable, ...], int] = {}
# Re-entrant: loading a voice model loads the Whisper encoder it reads through this cache.
_LOCK = threading.RLock()


def shared_model(key: tuple[Hashable, ...], load: Callable[[], T]) -> T:
    """The process's model for ``key``, loaded by ``load()`` on first use.

    Args:
        key: what tells this model apart; its first item names the kind (``"face"``,
            ``"whisper"``...).
        load: builds the model; called once per key and process (again only after
            :func:`clear_models`). An exception is raised to the caller and nothing is
            cached, so a later call tries again.
    """
    with _LOCK:
        _ASKED[key] = _ASKED.get(key, 0) + 1
        if key not in _MODELS:
            _MODELS[key] = load()
            _LOADS[key] = _LOADS.get(key, 0) + 1
        return _MODELS[key]


def model_loads() -> dict[str, dict[str, int]]:
    """``{key: {"loads": n, "asked": m}}`` for every key used in this process (keys as
    text, so the answer crosses process boundaries)."""
    with _LOCK:
        return {
            "/".join(map(str, key)): {"loads": _LOADS.get(key, 0), "asked": n}
            for key, n in _ASKED.items()
        }


def clear_models(kind: str | None = None) -> None:
    """Forget the loaded models (of one ``kind``, or all); the counts stay."""
    with _LOCK:
        for key in [k for k in _MODELS if kind is None or k[0] == kind]:
            del _MODELS[key]

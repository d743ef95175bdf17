"""The process's memory allocator on a Dask worker: one setting undone, arenas trimmed.

Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand freed
memory back to the system). :func:`tune_allocator` restores fast allocation of the
pipeline's large buffers there, and :func:`release_free_memory` keeps Dask's intent by
trimming between recordings. Both do nothing in a process without that variable.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

_LOG = logging.getLogger(__name__)


# glibc's mallopt parameters, and the values set where Dask's fixed trim threshold is found
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_BYTES, _MMAP_BYTES = 64 << 20, 32 << 20
_allocator_tuned: bool | None = None  # None: not looked at yet in this process


def tune_allocator() -> bool:
    """Undo the allocator setting that Dask's nanny gives its workers; once per process.

    Dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``. Setting any threshold
    switches off glibc's dynamic mmap threshold, so every buffer over 128 KiB (a frame, a
    spectrogram, a batch) is mapped and unmapped anew, zeroed page by page: the face and
    voice steps ran 1.6-2.4x slower on a Dask worker than in a plain process
    (``benchmarks/scaling.py``, docs/scaling.md). Where that variable is set (and
    ``MALLOC_MMAP_THRESHOLD_`` is not), buffers up to 32 MiB come from the heap again and
    the heap is trimmed past 64 MiB of free top; :func:`release_free_memory` trims every
    arena before each recording, which keeps the worker's memory flat (Dask's intent).
    Returns whether it changed anything.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
    if "MALLOC_TRIM_THRESHOLD_" in os.environ and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        try:
            libc = _libc()
            _allocator_tuned = bool(
                libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_BYTES)
                and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES)
            )
        except (OSError, AttributeError):  # not glibc
            return False
        _LOG.info(
            "MALLOC_TRIM_THRESHOLD_ is set (a Dask worker): mmap threshold %d MiB, "
            "trim threshold %d MiB",
            _MMAP_BYTES >> 20,
            _TRIM_BYTES >> 20,
        )
    return _allocator_tuned


def release_free_memory() -> None:
    """Where :func:`tune_allocator` changed the thresholds, hand the free memory of every
    malloc arena back to the system (``malloc_trim(0)``). Called before each recording:
    with buffers on the heap, a long-lived Dask worker's RSS otherwise grew by about 75 MB
    per 60 s recording (fragments held in its threads' arenas)."""
    if _allocator_tuned:
        _libc().malloc_trim(0)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL("libc.so.6")

"""Finished inputs, noted by the Fuse step for a progress display in the launching process.

Each worker process appends one line per finished input (its media seconds; 0 for a dead
letter) to its own file in a local folder; ``read_progress`` sums them. A side channel on
purpose: Beam's counters reach the launcher only when the run ends. Only runners whose
workers share the launcher's file system (FnApiRunner, in or out of process) report
progress this way; a remote runner shows its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProgressLog:
    """The folder finished inputs are noted in (one file per worker process)."""

    folder: str

    def note(self, media_s: float) -> None:
        """One input finished, with ``media_s`` seconds of media (0: it failed)."""
        path = Path(self.folder) / f"{os.getpid()}.log"
        with path.open("a", encoding="ascii") as f:
            f.write(f"{media_s:.3f}\n")


@dataclass(frozen=True)
class Progress:
    inputs: int
    media_s: float


def read_progress(folder: str) -> Progress:
    """What the workers noted so far (a line still being written is not counted)."""
    inputs, media_s = 0, 0.0
    for path in Path(folder).glob("*.log"):
        try:
            text = path.read_text(encoding="ascii")
        except OSError:
            continue
        for line in text.split("\n")[:-1]:  # the part after the last newline is unfinished
            try:
                media_s += float(line)
            except ValueError:
                continue
            inputs += 1
    return Progress(inputs, media_s)

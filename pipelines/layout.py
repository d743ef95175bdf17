"""Where the jobs write: one output layout for batch and stream.

Below an output root (a local path or any Beam filesystem URI), hive-partitioned by the
UTC processing date::

    ROOT/scores/date=YYYY-MM-DD/<name>.parquet        one row per segment
    ROOT/calls/date=YYYY-MM-DD/<name>.parquet         one row per recording and speaker
    ROOT/dead_letters/date=YYYY-MM-DD/<name>.parquet

The batch job names its files ``run-<RUN_ID>-<shard>-of-<n>.parquet`` (``OutputPaths``);
the streaming Parquet writer (``transforms/io/parquet_stream.py``, whose folder names this
module uses) names them ``stream-<UTC time>-<random>.parquet``. Read either with pyarrow
datasets or DuckDB ``read_parquet('ROOT/scores/**/*.parquet', hive_partitioning=true)``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

from sentistream.transforms.io.parquet_stream import (
    CALLS_DIR,
    DEAD_LETTERS_DIR,
    SCORES_DIR,
    partition_dir,
)

#: The row kinds a batch run writes, each in its own folder below the root.
RUN_KINDS = (SCORES_DIR, CALLS_DIR, DEAD_LETTERS_DIR)


def partition(root: str, kind: str, day: dt.date) -> str:
    """The folder of ``kind`` (``scores``, ``calls`` or ``dead_letters``) rows processed
    on ``day``."""
    return partition_dir(root, kind, day.isoformat())


def new_run_id(now: dt.datetime) -> str:
    """``YYYYMMDDTHHMMSS-<6 hex>``: sorts by start time, unique across concurrent runs."""
    return now.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def is_local(root: str) -> bool:
    """Whether ``root`` is a local path (not a ``scheme://`` URI)."""
    return "://" not in root


def prepare_root(root: str) -> None:
    """Create a local output root (remote filesystems need no folders)."""
    if is_local(root):
        Path(root).mkdir(parents=True, exist_ok=True)


STAGING_DIR = "_staging"


@dataclass(frozen=True)
class OutputPaths:
    """The file prefixes of one batch run (Beam's sinks append shard and suffix).

    The sinks write under ``ROOT/_staging/run-<RUN_ID>/`` (Beam's own temporary files
    included); :meth:`publish` moves the finished files to their ``prefix`` (one per
    kind of ``RUN_KINDS``) once the run succeeded. So nothing under ``ROOT/scores``,
    ``ROOT/calls`` or ``ROOT/dead_letters`` is ever a partial file, and a failed run leaves
    its files in ``_staging`` only (which ``scores/**/*.parquet`` globs do not reach).
    """

    root: str
    run_id: str
    day: dt.date

    @staticmethod
    def for_run(root: str, run_id: str, today: dt.date) -> OutputPaths:
        return OutputPaths(root, run_id, today)

    @property
    def staging(self) -> str:
        return FileSystems.join(self.root, STAGING_DIR, f"run-{self.run_id}")

    def prefix(self, kind: str) -> str:
        """The final file prefix of the run's ``kind`` rows."""
        return FileSystems.join(partition(self.root, kind, self.day), f"run-{self.run_id}")

    @property
    def scores_prefix(self) -> str:
        return self.prefix(SCORES_DIR)

    @property
    def calls_prefix(self) -> str:
        return self.prefix(CALLS_DIR)

    @property
    def dead_letters_prefix(self) -> str:
        return self.prefix(DEAD_LETTERS_DIR)

    def staged(self, kind: str) -> str:
        """Where the sink of ``kind`` rows writes during the run."""
        return FileSystems.join(self.staging, kind, f"run-{self.run_id}")

    def publish(self) -> list[str]:
        """Move the run's finished files into place; returns their final paths."""
        moved: list[str] = []
        for kind in RUN_KINDS:
            final, staged = self.prefix(kind), self.staged(kind)
            found = [m.path for r in FileSystems.match([staged + "*"]) for m in r.metadata_list]
            if not found:
                continue
            folder = FileSystems.split(final)[0]
            if is_local(folder):
                Path(folder).mkdir(parents=True, exist_ok=True)
            targets = [FileSystems.join(folder, FileSystems.split(f)[1]) for f in found]
            FileSystems.rename(found, targets)
            moved += targets
        if FileSystems.exists(self.staging):
            FileSystems.delete([self.staging])
        parent = FileSystems.split(self.staging)[0]
        if is_local(parent):
            with contextlib.suppress(OSError):  # other runs may still be staging there
                Path(parent).rmdir()
        return moved

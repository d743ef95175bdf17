"""Where the jobs write: one output layout for batch and stream.

Below an output root (a local path or any Beam filesystem URI), hive-partitioned by the
UTC processing date::

    ROOT/scores/date=YYYY-MM-DD/<name>.parquet
    ROOT/dead_letters/date=YYYY-MM-DD/<name>.parquet

The batch job names its files ``run-<RUN_ID>-<shard>-of-<n>.parquet`` (``OutputPaths``);
the streaming Parquet writer (``transforms/io/parquet_stream.py``, whose folder names this
module uses) names them ``stream-<UTC time>-<random>.parquet``. Read either with pyarrow
datasets or DuckDB ``read_parquet('ROOT/scores/**/*.parquet', hive_partitioning=true)``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

from sentistream.transforms.io.parquet_stream import DEAD_LETTERS_DIR, SCORES_DIR, partition_dir


def partition(root: str, kind: str, day: dt.date) -> str:
    """The folder of ``kind`` (``scores`` or ``dead_letters``) rows processed on ``day``."""
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


@dataclass(frozen=True)
class OutputPaths:
    """The file prefixes of one batch run (Beam's sinks append shard and suffix)."""

    scores_prefix: str
    dead_letters_prefix: str

    @staticmethod
    def for_run(root: str, run_id: str, today: dt.date) -> OutputPaths:
        name = f"run-{run_id}"
        return OutputPaths(
            scores_prefix=FileSystems.join(partition(root, SCORES_DIR, today), name),
            dead_letters_prefix=FileSystems.join(partition(root, DEAD_LETTERS_DIR, today), name),
        )

"""Parquet written from a DoFn, for streaming: files appear while the stream runs.

Beam's file sinks (``WriteToParquet``, ``WriteToFiles``) group in streaming mode and so
emit nothing until the source ends when run locally (docs/streaming.md). This writer
buffers the rows of one bundle and writes them in ``finish_bundle`` (or earlier, once
``max_rows`` rows or ``max_delay_s`` seconds have built up), so a row lands in a file
within one bundle of being scored. Layout, the same as the batch job's::

    ROOT/scores/date=YYYY-MM-DD/stream-<UTC time>-<random>.parquet
    ROOT/calls/date=YYYY-MM-DD/stream-<UTC time>-<random>.parquet
    ROOT/dead_letters/date=YYYY-MM-DD/stream-<UTC time>-<random>.parquet

``date`` is the UTC processing date of the row (``processed_at``). Each file is written
under a hidden temporary name (``.<name>.tmp``, which pyarrow datasets and ``*.parquet``
globs skip) and then renamed, so readers (pyarrow, DuckDB
``read_parquet('ROOT/scores/**/*.parquet', hive_partitioning=true)``) never see a
partial file. Files are small (one per bundle that had rows); compact them off-line if
that matters. Delivery is at least once: a row may appear in two files after a restart;
``segment_id`` identifies duplicates.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from sentistream.transforms.schema import (
    CALL_SCHEMA,
    DEAD_LETTER_SCHEMA,
    SCORE_SCHEMA,
    CallRow,
    DeadLetterRow,
    ScoreRow,
    to_dict,
)

SCORES_DIR = "scores"
CALLS_DIR = "calls"
DEAD_LETTERS_DIR = "dead_letters"
Row = ScoreRow | CallRow | DeadLetterRow
#: Row type -> (folder, schema): the output layout of every writer.
KINDS: dict[type, tuple[str, pa.Schema]] = {
    ScoreRow: (SCORES_DIR, SCORE_SCHEMA),
    CallRow: (CALLS_DIR, CALL_SCHEMA),
    DeadLetterRow: (DEAD_LETTERS_DIR, DEAD_LETTER_SCHEMA),
}


def partition_dir(root: str, kind: str, date_iso: str) -> str:
    """The folder of ``kind`` (``scores``, ``calls`` or ``dead_letters``) rows of one
    processing date: the output layout every writer (batch and stream) uses."""
    return FileSystems.join(root, kind, f"date={date_iso}")


def partition_date(row: Row) -> str:
    """The ``date=`` partition of a row: its UTC processing date."""
    return dt.datetime.fromtimestamp(row.processed_at, dt.UTC).date().isoformat()


def write_table_atomically(table: pa.Table, path: str) -> str:
    """Write ``table`` to ``path`` via a hidden temporary file and a rename."""
    folder, name = path.rsplit("/", 1)
    tmp = f"{folder}/.{name}.tmp"
    with FileSystems.create(tmp) as f:
        pq.write_table(table, f, compression="zstd")
    FileSystems.rename([tmp], [path])
    return path


@dataclass(frozen=True)
class ParquetStreamConfig:
    """Where and how often streaming Parquet files are written.

    Attributes:
        root: output root (local path or any Beam filesystem URI).
        max_rows: a buffer of this many rows is written at once, bundle or not.
        max_delay_s: a buffer whose oldest row waited this long is written when the
            next row arrives (bundles end within about a second in local streaming,
            so this matters for long bundles, e.g. a bounded run).
        prefix: file name prefix.
    """

    root: str
    max_rows: int = 10_000
    max_delay_s: float = 10.0
    prefix: str = "stream"

    def __post_init__(self) -> None:
        if not self.root:
            raise ValueError("root must be a path or URI, got ''")
        if self.max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {self.max_rows!r}")
        if not self.max_delay_s > 0:
            raise ValueError(f"max_delay_s must be > 0, got {self.max_delay_s!r}")


class WriteParquetStreamFn(beam.DoFn):
    """``ScoreRow`` / ``CallRow`` / ``DeadLetterRow`` -> Parquet files (see the module
    docstring).

    Args:
        config: where and how often.
        clock: wall-clock seconds, for file names and ``max_delay_s`` (tests inject one).
    """

    def __init__(self, config: ParquetStreamConfig, clock: Callable[[], float] = time.time):
        self._config = config
        self._clock = clock
        self._buffers: dict[tuple[type, str], list[dict]] = {}
        self._first_at: dict[tuple[type, str], float] = {}

    def start_bundle(self) -> None:
        self._buffers = {}
        self._first_at = {}

    def process(self, row: Row) -> None:
        if type(row) not in KINDS:
            raise TypeError(f"expected an output row, got {type(row).__name__}")
        key = (type(row), partition_date(row))
        buf = self._buffers.setdefault(key, [])
        if not buf:
            self._first_at[key] = self._clock()
        buf.append(to_dict(row))
        cfg = self._config
        if len(buf) >= cfg.max_rows or self._clock() - self._first_at[key] >= cfg.max_delay_s:
            self._write(key)

    def finish_bundle(self) -> None:
        for key in list(self._buffers):
            self._write(key)

    def _write(self, key: tuple[type, str]) -> None:
        rows = self._buffers.pop(key, [])
        self._first_at.pop(key, None)
        if not rows:
            return
        kind, schema = KINDS[key[0]]
        stamp = dt.datetime.fromtimestamp(self._clock(), dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{self._config.prefix}-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        path = FileSystems.join(partition_dir(self._config.root, kind, key[1]), name)
        write_table_atomically(pa.Table.from_pylist(rows, schema=schema), path)
        beam.metrics.Metrics.counter("sentistream.parquet", f"{kind}_rows").inc(len(rows))
        beam.metrics.Metrics.counter("sentistream.parquet", f"{kind}_files").inc()


class WriteRowsToParquetStream(beam.PTransform):
    """PCollection[ScoreRow | CallRow | DeadLetterRow] -> Parquet files under
    ``config.root``."""

    def __init__(self, config: ParquetStreamConfig, clock: Callable[[], float] = time.time):
        super().__init__()
        self._fn = WriteParquetStreamFn(config, clock)

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return rows | "WriteParquet" >> beam.ParDo(self._fn)

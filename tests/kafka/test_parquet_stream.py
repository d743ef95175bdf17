"""Streaming Parquet: a file per bundle, atomic, hive-partitioned, readable while written.

No broker needed; it lives beside the Kafka tests because it is the stream's other sink.
"""

from __future__ import annotations

import apache_beam as beam
import duckdb
import pyarrow.dataset as ds
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from kafkatools import dead_letter_row, score_row

from sentistream.transforms.io.parquet_stream import (
    ParquetStreamConfig,
    WriteParquetStreamFn,
    WriteRowsToParquetStream,
)
from sentistream.transforms.schema import DEAD_LETTER_SCHEMA, SCORE_SCHEMA, to_dict

DAY1 = 1_767_225_601.0  # 2026-01-01
DAY2 = DAY1 + 86_400.0


def test_rows_land_in_date_partitions_readable_by_pyarrow_and_duckdb(tmp_path):
    rows = [
        score_row("s1", processed_at=DAY1),
        score_row("s2", processed_at=DAY2),
        dead_letter_row("v2", processed_at=DAY1),
    ]
    config = ParquetStreamConfig(str(tmp_path))
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = p | beam.Create(rows, reshuffle=False) | WriteRowsToParquetStream(config)

    scores = tmp_path / "scores"
    assert sorted(d.name for d in scores.iterdir()) == ["date=2026-01-01", "date=2026-01-02"]
    table = ds.dataset(scores, format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("segment_id").to_pylist()) == ["s1", "s2"]
    assert table.schema.field("fused_valence").type == SCORE_SCHEMA.field("fused_valence").type
    got = duckdb.sql(
        f"SELECT segment_id, date FROM read_parquet('{scores}/**/*.parquet', "
        "hive_partitioning=true) ORDER BY segment_id"
    ).fetchall()
    assert [(s, str(d)) for s, d in got] == [("s1", "2026-01-01"), ("s2", "2026-01-02")]
    dead = ds.dataset(tmp_path / "dead_letters", format="parquet").to_table()
    assert dead.schema.remove_metadata() == DEAD_LETTER_SCHEMA.remove_metadata()
    assert dead.to_pylist() == [to_dict(rows[2])]
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_file_per_bundle_and_earlier_on_size_or_age(tmp_path):
    now = [100.0]
    fn = WriteParquetStreamFn(
        ParquetStreamConfig(str(tmp_path), max_rows=2, max_delay_s=5.0), clock=lambda: now[0]
    )

    def files() -> int:
        return len(list(tmp_path.rglob("*.parquet")))

    fn.start_bundle()
    fn.process(score_row("a", processed_at=DAY1))
    assert files() == 0  # buffered
    fn.process(score_row("b", processed_at=DAY1))
    assert files() == 1  # max_rows reached
    fn.process(score_row("c", processed_at=DAY1))
    now[0] += 6.0
    fn.process(score_row("d", processed_at=DAY1))
    assert files() == 2  # the oldest row waited past max_delay_s
    fn.process(score_row("e", processed_at=DAY1))
    fn.finish_bundle()
    assert files() == 3
    fn.start_bundle()
    fn.finish_bundle()  # an empty bundle writes nothing
    assert files() == 3
    ids = ds.dataset(tmp_path / "scores", format="parquet").to_table().column("segment_id")
    assert sorted(ids.to_pylist()) == ["a", "b", "c", "d", "e"]


def test_bad_config_and_rows_are_refused(tmp_path):
    with pytest.raises(ValueError, match="max_rows"):
        ParquetStreamConfig(str(tmp_path), max_rows=0)
    fn = WriteParquetStreamFn(ParquetStreamConfig(str(tmp_path)))
    fn.start_bundle()
    with pytest.raises(TypeError, match="an output row"):
        fn.process({"segment_id": "x"})

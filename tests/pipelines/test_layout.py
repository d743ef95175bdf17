"""One output layout: the batch job's prefixes sit in the folders the streaming Parquet
writer uses, partitioned by date."""

from __future__ import annotations

import datetime as dt

from sentistream.pipelines.layout import OutputPaths, new_run_id, partition
from sentistream.transforms.io.parquet_stream import DEAD_LETTERS_DIR, SCORES_DIR


def test_batch_prefixes_follow_the_layout(tmp_path):
    day = dt.date(2026, 1, 2)
    paths = OutputPaths.for_run(str(tmp_path), "RUN", day)
    assert paths.scores_prefix == f"{tmp_path}/{SCORES_DIR}/date=2026-01-02/run-RUN"
    assert paths.dead_letters_prefix == f"{tmp_path}/{DEAD_LETTERS_DIR}/date=2026-01-02/run-RUN"
    assert paths.scores_prefix.startswith(partition(str(tmp_path), SCORES_DIR, day))


def test_run_ids_sort_by_time_and_are_unique():
    t = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    a, b = new_run_id(t), new_run_id(t)
    assert a.startswith("20260102T030405-") and a != b

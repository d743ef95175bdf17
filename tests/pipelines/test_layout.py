"""One output layout: the batch job's prefixes sit in the folders the streaming Parquet
writer uses, partitioned by date."""

from __future__ import annotations

import datetime as dt
import os

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


def test_a_run_writes_under_staging_and_publishes_only_finished_files(tmp_path):

    from sentistream.pipelines.layout import STAGING_DIR, OutputPaths

    paths = OutputPaths.for_run(str(tmp_path), "RUN", dt.date(2026, 1, 2))
    staged = paths.staged(SCORES_DIR)
    assert staged.startswith(f"{tmp_path}/{STAGING_DIR}/run-RUN/")
    os.makedirs(os.path.dirname(staged))
    for shard in ("-00000-of-00002.parquet", "-00001-of-00002.parquet"):
        with open(staged + shard, "wb") as f:
            f.write(b"x")
    assert not list(tmp_path.glob(f"{SCORES_DIR}/**/*.parquet"))  # nothing visible yet
    moved = paths.publish()
    assert sorted(os.path.basename(m) for m in moved) == [
        "run-RUN-00000-of-00002.parquet",
        "run-RUN-00001-of-00002.parquet",
    ]
    assert len(list(tmp_path.glob(f"{SCORES_DIR}/date=2026-01-02/*.parquet"))) == 2
    assert not (tmp_path / STAGING_DIR).exists()  # no empty staging folder is left

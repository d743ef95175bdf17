"""Streaming and batch make the same call-level rows (and the same segment rows) from the
same stereo recording: the live streaming runtime emits the call row once the
recording's last segment is scored, with no grouping step to stall it."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest
from kafkatools import consume, produce, settings_for
from test_stream_e2e import stream_config

from sentistream.pipelines.batch import BatchSettings, run_job
from sentistream.pipelines.stream.graph import StreamJob
from sentistream.pipelines.stream.runtime import run
from sentistream.transforms.io.events import encode_event

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ROLES = ("agent", "customer")
# All that may differ: when a row was made, and the event's time (Kafka's record time in
# streaming; batch inputs have none).
VARIES = {"processed_at", "event_time"}


def _table(root, kind: str) -> list[dict]:
    folder = root / kind
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pylist()


def _same(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in VARIES and k != "date"}


def test_stream_and_batch_agree_on_calls_and_segments(topics, stereo_call, tmp_path):
    path, _ = stereo_call
    config = stream_config()
    batch_out = tmp_path / "batch"
    job = BatchSettings(inputs=(str(path),), output=str(batch_out), channel_roles=ROLES)
    run_job(job, config)
    produce(topics.bootstrap, topics.events, [encode_event(str(path), channel_roles=ROLES)])
    stream_out = tmp_path / "stream"
    settings = settings_for(topics, stream_out, runtime="streaming", max_events=1)
    run(StreamJob(settings, config))

    batch_calls = {r["summary_id"]: _same(r) for r in _table(batch_out, "calls")}
    assert len(batch_calls) == 2
    live = consume(topics.bootstrap, topics.calls, expect=2)
    assert {row["summary_id"]: _same(row) for _, row in live} == batch_calls
    parquet = {r["summary_id"]: _same(r) for r in _table(stream_out, "calls")}
    assert parquet == batch_calls

    batch_segments = {r["segment_id"]: _same(r) for r in _table(batch_out, "scores")}
    stream_segments = {r["segment_id"]: _same(r) for r in _table(stream_out, "scores")}
    assert stream_segments == batch_segments and len(batch_segments) >= 2  # one per speaker

"""Streaming diarizes an event's whole recording: its rows and call rows carry the
diarized speakers and the roles the event maps them to, as batch does."""

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
VARIES = {"processed_at", "event_time", "date", "detail_json"}  # detail: floats in JSON
ROLES = "first=agent,*=customer"


def _table(root, kind: str) -> list[dict]:
    return ds.dataset(root / kind, format="parquet", partitioning="hive").to_table().to_pylist()


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-4
    return a == b


def _same(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in VARIES}


def test_a_streamed_mono_recording_is_diarized_as_a_whole(topics, mono_conversation, tmp_path):
    path, _ = mono_conversation
    config = stream_config()
    event = encode_event(str(path), video_id="conv-1", speakers=2, speaker_roles=ROLES)
    produce(topics.bootstrap, topics.events, [event])
    stream_out = tmp_path / "stream"
    run(StreamJob(settings_for(topics, stream_out, runtime="streaming", max_events=1), config))

    live = consume(topics.bootstrap, topics.calls, expect=2)
    calls = {row["speaker"]: row for _, row in live if row["speaker"].startswith("spk_")}
    assert calls["spk_0"]["role"] == "agent" and calls["spk_1"]["role"] == "customer"
    rows = [r for r in _table(stream_out, "scores") if r["segmenter"] == "vad"]
    assert {(r["speaker"], r["role"]) for r in rows} == {("spk_0", "agent"), ("spk_1", "customer")}

    # the same recording in batch, with the same per-input speakers and roles (a manifest)
    manifest = tmp_path / "inputs.jsonl"
    manifest.write_bytes(event + b"\n")
    batch_out = tmp_path / "batch"
    run_job(BatchSettings(manifest=str(manifest), output=str(batch_out)), config)
    for kind, key in (("scores", "segment_id"), ("calls", "summary_id")):
        want = {r[key]: _same(r) for r in _table(batch_out, kind)}
        got = {r[key]: _same(r) for r in _table(stream_out, kind)}
        assert got.keys() == want.keys()
        # Scores may differ in float noise: streaming batches model inputs as they come
        differ = [
            (k, f, v, got[k][f])
            for k, row in want.items()
            for f, v in row.items()
            if not _close(v, got[k][f])
        ]
        assert not differ

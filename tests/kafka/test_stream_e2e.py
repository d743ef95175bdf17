"""The streaming job end to end on a real broker, with the real models on generated media:
events in -> rows on the output topic and in Parquet; bad events -> dead letters with
their reason while the stream keeps flowing; a killed stream loses nothing on restart."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
from kafkatools import committed, consume, make_clip, produce, settings_for

from sentistream.pipelines.options import RUNTIMES
from sentistream.pipelines.stream.graph import StreamJob
from sentistream.pipelines.stream.runtime import run
from sentistream.transforms.config import (
    DecodeConfig,
    FaceConfig,
    ModelRuntime,
    PipelineConfig,
    PolicyConfig,
    TextConfig,
    VoiceConfig,
)
from sentistream.transforms.io import events as ev
from sentistream.transforms.io.events import encode_event

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SENTENCES = ["I am really happy with how this turned out.", "This is awful and I am angry."]


def available_modalities() -> tuple[str, ...]:
    """The modalities whose model bundles are shipped in this checkout."""
    from sentistream.models.bundle import resolve_bundle

    out = []
    for name, bundle in (
        ("face", FaceConfig.bundle),
        ("voice", VoiceConfig.bundle),
        ("text", TextConfig.bundle),
    ):
        try:
            resolve_bundle(bundle)
        except ValueError:
            continue
        out.append(name)
    return tuple(out)


def stream_config() -> PipelineConfig:
    one = ModelRuntime(threads=1)
    return PipelineConfig(
        decode=DecodeConfig(fps=1.0, max_side=320),
        face=FaceConfig(runtime=one),
        voice=VoiceConfig(runtime=one),
        text=TextConfig(runtime=one),
        policy=PolicyConfig(rules=(("*", available_modalities()),)),
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "call.mp4", SENTENCES, duration_s=5.0)


def parquet_rows(root: Path, kind: str) -> list[dict]:
    folder = root / kind
    if not folder.exists():
        return []
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pylist()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_events_in_scores_out_and_bad_events_dead_lettered(topics, clip, tmp_path, runtime):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    events = [
        encode_event(str(clip), video_id="good-1", metadata={"consent": "true"}),
        b'{"uri": "/a.mp4",',  # bad JSON
        b'{"video_id": "no-uri"}',
        encode_event("ftp://example.com/x.mp4", video_id="ftp"),
        encode_event(str(tmp_path / "missing.mp4"), video_id="missing"),
        encode_event(str(garbage), video_id="garbage"),
        encode_event(f"file://{clip}", video_id="good-2"),  # the stream kept flowing
    ]
    produce(topics.bootstrap, topics.events, events)
    out = tmp_path / "out"
    settings = settings_for(topics, out, runtime=runtime, max_events=len(events))
    run(StreamJob(settings, stream_config()))

    scores = consume(topics.bootstrap, topics.scores, expect=2 * len(SENTENCES))
    by_video: dict[str, list] = {}
    for key, row in scores:
        assert key == row["segment_id"].encode()
        by_video.setdefault(row["video_id"], []).append(row)
    assert set(by_video) == {"good-1", "good-2"}
    assert len(by_video["good-1"]) >= len(SENTENCES)
    assert {r["transcript"] for r in by_video["good-1"]} >= set(SENTENCES)
    assert sorted(r["start_s"] for r in by_video["good-1"]) == sorted(
        r["start_s"] for r in by_video["good-2"]
    )
    assert all(r["fused_label"] for r in by_video["good-1"])
    assert {r["metadata_json"] for r in by_video["good-1"]} == {'{"consent": "true"}'}

    dead = {
        row["video_id"]: row for _, row in consume(topics.bootstrap, topics.dead_letters, expect=5)
    }
    assert {k: dead[k]["error_type"] for k in ("no-uri", "ftp", "missing")} == {
        "no-uri": ev.ERR_MISSING_URI,
        "ftp": ev.ERR_SCHEME,
        "missing": ev.ERR_NOT_FOUND,
    }
    assert dead[""]["error_type"] == ev.ERR_BAD_JSON and dead[""]["payload"] == '{"uri": "/a.mp4",'
    assert dead["garbage"]["stage"] != ev.STAGE_PARSE  # failed in decoding, with its reason
    assert dead["garbage"]["error"]

    parquet = parquet_rows(out, "scores")
    assert sorted(r["segment_id"] for r in parquet) == sorted(r["segment_id"] for _, r in scores)

    # one call row per good recording, when its last segment was scored; none for the rest
    calls = consume(topics.bootstrap, topics.calls, expect=2)
    assert sorted(row["video_id"] for _, row in calls) == ["good-1", "good-2"]
    for key, row in calls:
        assert key == row["summary_id"].encode() and row["complete"]
        assert row["segments"] == len(by_video[row["video_id"]])
    assert sorted(r["summary_id"] for r in parquet_rows(out, "calls")) == sorted(
        row["summary_id"] for _, row in calls
    )
    n = duckdb.sql(
        f"SELECT count(DISTINCT video_id) FROM read_parquet('{out}/scores/**/*.parquet', "
        "hive_partitioning=true)"
    ).fetchall()[0][0]
    assert n == 2
    assert {r["video_id"] for r in parquet_rows(out, "dead_letters")} == set(dead)
    assert committed(topics.bootstrap, topics.events, topics.group) == len(events)


def _stream_process(topics, out: Path, *extra: str) -> subprocess.Popen:
    modalities = ",".join(available_modalities())
    cmd = [sys.executable, "-m", "sentistream.pipelines.stream"]
    cmd += ["--bootstrap", topics.bootstrap, "--input-topic", topics.events]
    cmd += ["--output-topic", topics.scores, "--dead-letter-topic", topics.dead_letters]
    cmd += ["--calls-topic", topics.calls]
    cmd += ["--output", str(out), "--group-id", topics.group, "--threads", "1", "--fps", "1"]
    cmd += ["--max-side", "320", "--policy", f"*={modalities}", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, env=env, cwd=REPO.parent, start_new_session=True)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_killed_stream_resumes_without_loss_and_duplicates_collapse(
    topics, clip, tmp_path, runtime
):
    videos = [f"call-{i}" for i in range(4)]
    produce(topics.bootstrap, topics.events, [encode_event(str(clip), video_id=v) for v in videos])
    out = tmp_path / "out"
    mode = ("--runtime", runtime, "--batch-events", "1")
    first = _stream_process(topics, out, *mode)
    try:
        seen = consume(topics.bootstrap, topics.scores, expect=1, timeout_s=120)
        assert seen, "no row within 120 s"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # no chance to flush or commit anything
        first.wait(timeout=30)
    assert committed(topics.bootstrap, topics.events, topics.group) in (None, 0, 1, 2, 3)

    second = _stream_process(topics, out, *mode, "--idle-timeout", "3")
    assert second.wait(timeout=300) == 0

    rows = [row for _, row in consume(topics.bootstrap, topics.scores, expect=10**6, timeout_s=3)]
    unique = {row["segment_id"]: row for row in rows}
    per_video: dict[str, set] = {}
    for row in unique.values():
        per_video.setdefault(row["video_id"], set()).add((row["start_s"], row["end_s"]))
    assert set(per_video) == set(videos)  # nothing lost
    assert len({frozenset(spans) for spans in per_video.values()}) == 1  # all complete
    parquet_ids = {r["segment_id"] for r in parquet_rows(out, "scores")}
    assert parquet_ids == set(unique)  # Parquet also complete; duplicates collapse by id
    assert committed(topics.bootstrap, topics.events, topics.group) == len(videos)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_a_streaming_run_dies_when_its_parent_is_killed(topics, tmp_path):
    """SIGKILL of the ``stream`` process alone (not its group): the forked run must not
    go on as an orphan (it would score every event a second time after a restart)."""
    parent = _stream_process(topics, tmp_path / "out", "--runtime", "streaming")
    try:
        deadline = time.monotonic() + 60
        while not (kids := _children(parent.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert kids, "the stream command forked no run within 60 s"
        os.kill(parent.pid, signal.SIGKILL)  # the parent only
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(k) for k in kids), "the forked run outlived its parent"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)

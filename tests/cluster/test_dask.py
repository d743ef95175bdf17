"""The batch job on a real dask.distributed cluster: a scheduler and two single-thread
worker processes on loopback (``dask scheduler`` / ``dask worker``), started and stopped
by pid. It writes the same rows as FnApiRunner on the same inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from sentistream.pipelines import batch

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
VARIES = {"processed_at", "date", "detail_json"}  # detail: floats inside JSON text


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """The scheduler's address, with two worker processes registered."""
    pytest.importorskip("distributed")
    from distributed import Client

    from sentistream.pipelines.dask_runner import LoopbackCluster

    with LoopbackCluster(2, tmp_path_factory.mktemp("dask")) as cluster:
        with Client(cluster.address, timeout=60) as client:
            pids = client.run(os.getpid)
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
        yield cluster.address


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-3
    return a == b


def _rows(root: Path, kind: str, key: str) -> dict[str, dict]:
    table = ds.dataset(root / kind, format="parquet", partitioning="hive").to_table()
    return {r[key]: {k: v for k, v in r.items() if k not in VARIES} for r in table.to_pylist()}


def test_the_batch_job_on_dask_writes_what_fnapirunner_writes(
    scheduler, mono_conversation, stereo_call, tmp_path
):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    inputs = [str(mono_conversation[0]), str(stereo_call[0]), str(bad)]
    common = ["--no-asr", "--threads", "1", "--no-progress"]
    for path in inputs:
        common += ["--input", path]
    local, dask = tmp_path / "local", tmp_path / "dask"
    batch.run([*common, "--output", str(local)])
    batch.run([*common, "--output", str(dask), "--runner", "DaskRunner",
               "--dask_client_address", scheduler])  # fmt: skip
    for kind, key in (("scores", "segment_id"), ("calls", "summary_id")):
        want, got = _rows(local, kind, key), _rows(dask, kind, key)
        assert want and got.keys() == want.keys()
        # Equal but for float noise: RunInference sizes its batches by how long they
        # take, so the batches (and a padded encoder's last bits) differ between runs.
        differ = [
            (k, f, v, got[k][f])
            for k, row in want.items()
            for f, v in row.items()
            if not _close(v, got[k][f])
        ]
        assert not differ, kind
    # the broken input is a dead letter
    dead = ds.dataset(dask / "dead_letters", format="parquet").to_table().to_pylist()
    assert [r["stage"] for r in dead if r["source_uri"].endswith("bad.mp4")] == ["decode"]
    _models_loaded_once_per_worker(scheduler)


def _models_loaded_once_per_worker(address: str) -> None:
    """Each worker process loaded each model it used exactly once (a Dask partition is a
    Beam bundle that sets its DoFns up anew, and Beam's own sharing keeps only the last
    model acquired alive), and both workers scored recordings."""
    from distributed import Client

    from sentistream.models.cache import model_loads

    with Client(address, timeout=60) as client:
        per_worker = client.run(model_loads)
    used = {key.split("/")[0] for loads in per_worker.values() for key in loads}
    assert {"face", "voice", "whisper", "text", "speaker"} <= used, per_worker
    for worker, loads in per_worker.items():
        assert all(n["loads"] == 1 for n in loads.values()), (worker, loads)
        # one recording per partition: both workers scored some
        assert any(key.startswith("face/") for key in loads), per_worker
    # Dask's MALLOC_TRIM_THRESHOLD_ was undone in each worker before scoring
    from sentistream.transforms.allocator import tune_allocator

    with Client(address, timeout=60) as client:
        assert all(client.run(tune_allocator).values())

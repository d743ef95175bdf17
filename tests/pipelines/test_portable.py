"""The batch job on Beam's portable path, the way Flink on Kubernetes runs Python.

``PortableRunner --job_endpoint=embed`` starts an in-process job service; with
``--environment_type=EXTERNAL`` it asks a separate worker pool (``worker_pool_main``, the
same service the SDK container runs as a sidecar with ``--worker_pool``) to start the SDK
harness, so the Python work happens in another process that only sees what is installed,
not the launcher's memory. Real generated media in, real Parquet read back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sentistream.pipelines import batch
from sentistream.pipelines.broker import free_port, wait_for_port
from sentistream.pipelines.flags import parser_with
from sentistream.transforms.media.captions import Cue

pytestmark = pytest.mark.slow
FPS = 10.0
SECONDS = 2.0
SENTENCE = "I love this, it is wonderful."


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s of a talking head with a spoken sentence and a .vtt caption beside it."""
    import torch
    import torchaudio
    from skimage import data as skdata

    from sentistream.models.audio import SAMPLE_RATE
    from sentistream.pipelines.demo.synth import (
        talking_head_frames,
        trim_silence,
        tts,
        write_media,
        write_vtt,
    )

    d = tmp_path_factory.mktemp("portable_media")
    audio, rate = tts(SENTENCE)
    audio = torchaudio.functional.resample(
        torch.from_numpy(trim_silence(audio)), rate, SAMPLE_RATE
    ).numpy()
    track = np.zeros(int(SECONDS * SAMPLE_RATE), np.float32)
    n = min(audio.size, track.size)
    track[:n] = audio[:n]
    path = write_media(
        d / "call.mp4",
        frames=talking_head_frames(skdata.astronaut(), int(SECONDS * FPS), fps=FPS),
        fps=FPS,
        audio=track,
    )
    write_vtt(d / "call.vtt", [Cue(0.1, 1.9, SENTENCE)])
    return path


@pytest.fixture
def worker_pool(tmp_path):
    """A Beam worker pool on a free port, in its own process group; killed afterwards.

    The pool starts each SDK worker as ``python -c ...`` found on PATH, so this
    interpreter's folder goes first on PATH (pytest may run without the venv activated).
    """
    port = free_port()
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["OMP_NUM_THREADS"] = "1"
    log_path = tmp_path / "worker_pool.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "apache_beam.runners.worker.worker_pool_main",
                f"--service_port={port}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the SDK workers it starts too
        )
    try:
        try:
            wait_for_port("127.0.0.1", port, timeout_s=60)
        except TimeoutError:
            pytest.fail(f"worker pool did not listen: {log_path.read_text(errors='replace')}")
        yield port, log_path
    finally:
        for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait_s)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


def test_batch_job_runs_on_portable_runner_with_external_worker_pool(clip, worker_pool, tmp_path):
    port, pool_log = worker_pool
    out = tmp_path / "out"
    argv = [
        "--input",
        str(clip),
        "--output",
        str(out),
        "--policy",
        "*=face,text",
        "--no-asr",
        "--fps",
        "2",
        "--threads",
        "1",
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{port}",
    ]
    _, beam_args = parser_with(None, batch.add_arguments).parse_known_args(argv)
    assert beam_args[0] == "--runner=PortableRunner"  # Beam's flags reach Beam untouched

    result = batch.run(argv)  # as ``python -m sentistream.pipelines.batch`` does

    # The work ran in the pool's SDK worker, not in this process.
    assert "Starting worker with command" in pool_log.read_text(errors="replace")
    score_files = sorted(out.glob("scores/date=*/*.parquet"))
    dead_files = sorted(out.glob("dead_letters/date=*/*.parquet"))
    assert score_files and dead_files
    assert str(score_files[0]).startswith(result.paths.scores_prefix)
    rows = [r for f in score_files for r in pq.read_table(f).to_pylist()]
    dead = [r for f in dead_files for r in pq.read_table(f).to_pylist()]
    assert dead == []
    assert len(rows) == 1
    row = rows[0]
    assert row["source_uri"] == str(clip)
    assert row["segmenter"] == "captions" and row["transcript"] == SENTENCE
    assert row["modalities_enabled"] == "face,text"
    assert row["face_present"] and row["text_present"] and not row["voice_present"]
    assert row["voice_reason"] == "disabled_by_policy"
    assert row["modalities_present"] == "face,text"
    assert row["text_valence"] > 0 and row["fused_label"] == "positive"
    assert row["face_model_id"] and row["text_model_id"]
    # Metrics come back from the portable job too.
    assert result.counters.get("sentistream.decode/videos") == 1
    assert result.counters.get("sentistream.decode/segments") == 1

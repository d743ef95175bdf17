"""Beam pipeline options for every job, and the counters of a finished run.

Locally the jobs run on FnApiRunner: Beam's default local runner first tries to
download the Prism binary, which fails offline (docs/DESIGN.md). A ``--runner`` given on
the command line passes through to Beam untouched, with all of its flags.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner")
#: Short runner names Beam does not resolve itself, and the class each one means.
RUNNER_ALIASES = {"DaskRunner": "sentistream.pipelines.dask_runner.DaskRunner"}


def runner_of(beam_args: Sequence[str]) -> str | None:
    """The ``--runner`` in ``beam_args`` (``--runner=X`` or ``--runner X``), if any."""
    args = list(beam_args)
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(args):
            return args[i + 1]
    return None


def _aliased(args: list[str]) -> list[str]:
    """``args`` with a short ``--runner`` name of ``RUNNER_ALIASES`` spelled out (Beam
    knows ``DaskRunner`` only by its module path, and ours mends it: dask_runner.py)."""
    out = []
    for i, arg in enumerate(args):
        if arg.startswith("--runner=") and arg.split("=", 1)[1] in RUNNER_ALIASES:
            arg = f"--runner={RUNNER_ALIASES[arg.split('=', 1)[1]]}"
        elif i and args[i - 1] == "--runner" and arg in RUNNER_ALIASES:
            arg = RUNNER_ALIASES[arg]
        out.append(arg)
    return out


def beam_options(
    beam_args: Sequence[str], *, workers: int = 1, streaming: bool = False
) -> PipelineOptions:
    """Beam options: FnApiRunner unless ``--runner`` is given; ``beam_args`` is not changed.

    ``workers`` > 1 asks a local runner for that many worker processes (multi-processing;
    batch only: in local streaming more workers stall, docs/streaming.md). ``streaming``
    adds ``--streaming``.
    """
    args = _aliased(list(beam_args))
    runner = runner_of(args)
    if runner is None:
        runner = "FnApiRunner"
        args.append(f"--runner={runner}")
    if workers > 1 and runner in LOCAL_RUNNERS:
        args += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    if streaming and "--streaming" not in args:
        args.append("--streaming")
    return PipelineOptions(args)


def cores_per_worker(beam_args: Sequence[str], workers: int = 1) -> int:
    """The cores one worker process may use, which the default thread counts follow
    (``options.config_from_args``): the CPU count divided by ``workers`` on a local
    runner; 1 on a distributed runner, whose worker processes are one per core (Dask
    workers with ``--nthreads 1``, Dataflow's SDK process per vCPU)."""
    runner = runner_of(_aliased(list(beam_args)))
    if runner is None or runner in LOCAL_RUNNERS:
        return max(1, (os.cpu_count() or 1) // max(1, workers))
    return 1


def counters_of(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """The committed counters of a finished pipeline, by ``namespace/name``."""
    counters: dict[str, int] = {}
    for c in result.metrics().query()["counters"]:
        key = f"{c.key.metric.namespace}/{c.key.metric.name}"
        counters[key] = counters.get(key, 0) + int(c.committed or 0)
    return counters

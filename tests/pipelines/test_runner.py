"""``runner.beam_options``, the one Beam-options builder of batch and stream: FnApiRunner
locally (never a Prism download), ``--workers N`` as FnApiRunner multi-processing,
``--streaming`` for the stream, and any ``--runner`` (with its flags) passed through."""

from __future__ import annotations

import datetime as dt

import pytest
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PortableOptions,
    StandardOptions,
    WorkerOptions,
)

from sentistream.pipelines.runner import beam_options, runner_of


def _runner(opts) -> str:
    return opts.view_as(StandardOptions).runner


def test_default_is_fnapirunner_in_one_process():
    opts = beam_options([], workers=1)
    assert _runner(opts) == "FnApiRunner"
    direct = opts.view_as(DirectOptions)
    assert direct.direct_num_workers == 1
    assert direct.direct_running_mode == "in_memory"


@pytest.mark.parametrize("workers", [2, 5])
def test_workers_gives_multi_processing(workers):
    opts = beam_options([], workers=workers)
    assert _runner(opts) == "FnApiRunner"
    direct = opts.view_as(DirectOptions)
    assert direct.direct_num_workers == workers
    assert direct.direct_running_mode == "multi_processing"


@pytest.mark.parametrize(
    "runner_args",
    [
        ["--runner=DataflowRunner"],
        ["--runner", "DataflowRunner"],
        ["--runner=PortableRunner"],
        ["--runner=FlinkRunner"],
        ["--runner=DirectRunner"],
    ],
    ids=["equals", "two-tokens", "portable", "flink", "direct"],
)
def test_a_given_runner_passes_through_unchanged(runner_args):
    opts = beam_options(runner_args, workers=1)
    assert _runner(opts) == runner_args[-1].rsplit("=", 1)[-1]
    # Nothing local is added to a runner the user chose.
    assert opts.view_as(DirectOptions).direct_running_mode == "in_memory"


def test_runner_flags_pass_through_with_the_runner():
    args = [
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=EXTERNAL",
        "--environment_config=localhost:50000",
        "--sdk_worker_parallelism=2",
    ]
    portable = beam_options(args, workers=1).view_as(PortableOptions)
    assert portable.job_endpoint == "embed"
    assert portable.environment_type == "EXTERNAL"
    assert portable.environment_config == "localhost:50000"
    assert int(portable.sdk_worker_parallelism) == 2


def test_dataflow_flags_pass_through():
    args = [
        "--runner=DataflowRunner",
        "--machine_type=n2-highmem-4",
        "--max_num_workers=8",
        "--sdk_container_image=registry.example/sentistream-worker:1",
        "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;"
        "install-nvidia-driver",
    ]
    opts = beam_options(args, workers=1)
    worker = opts.view_as(WorkerOptions)
    assert worker.machine_type == "n2-highmem-4"
    assert worker.max_num_workers == 8
    assert worker.sdk_container_image == "registry.example/sentistream-worker:1"
    assert opts.get_all_options()["dataflow_service_options"] == [
        "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"
    ]


def test_beam_args_are_not_mutated():
    args = ["--temp_location=/tmp/x"]
    beam_options(args, workers=3)
    assert args == ["--temp_location=/tmp/x"]


def test_fnapirunner_chosen_by_name_keeps_workers():
    """``--runner=FnApiRunner --workers 2`` should still give two processes."""
    opts = beam_options(["--runner=FnApiRunner"], workers=2)
    assert opts.view_as(DirectOptions).direct_running_mode == "multi_processing"


def test_streaming_adds_the_flag_once_and_keeps_a_given_runner():
    opts = beam_options([], streaming=True)
    assert opts.view_as(StandardOptions).streaming and _runner(opts) == "FnApiRunner"
    given = ["--runner=DataflowRunner", "--streaming"]
    opts = beam_options(given, streaming=True)
    assert _runner(opts) == "DataflowRunner" and given == ["--runner=DataflowRunner", "--streaming"]
    assert not beam_options([]).view_as(StandardOptions).streaming


def test_runner_of_reads_both_spellings():
    assert runner_of(["--runner=X"]) == runner_of(["--a=1", "--runner", "X"]) == "X"
    assert runner_of(["--runner"]) is None and runner_of([]) is None


def test_inputs_are_redistributed_before_scoring():
    import apache_beam as beam

    from sentistream.pipelines.batch import build
    from sentistream.pipelines.layout import OutputPaths
    from sentistream.transforms.config import PipelineConfig
    from sentistream.transforms.records import VideoRef

    refs = [VideoRef(uri=f"/media/{i}.mp4") for i in range(4)]
    pipeline = beam.Pipeline(options=beam_options([], workers=2))
    paths = OutputPaths.for_run("/tmp/out", "RUN", dt.date(2026, 1, 2))
    build(pipeline, refs, PipelineConfig(), paths)
    names = [t.unique_name for t in pipeline.to_runner_api().components.transforms.values()]
    before_score = [n for n in names if not n.startswith(("Score", "Write", "Dead", "Calls"))]
    # A Reshuffle transform proper (Create's empty "MaybeReshuffle" wrapper does not count).
    assert any("Reshuffle" in n.split("/") for n in before_score), sorted(before_score)


def test_the_short_dask_runner_name_means_the_mended_runner():
    for args in (["--runner", "DaskRunner"], ["--runner=DaskRunner"]):
        opts = beam_options([*args, "--dask_client_address", "tcp://127.0.0.1:1"])
        assert opts.get_all_options()["runner"] == "sentistream.pipelines.dask_runner.DaskRunner"
    assert beam_options(["--runner=FnApiRunner"]).get_all_options()["runner"] == "FnApiRunner"

"""Beam's DaskRunner, mended so the batch job runs on a dask.distributed cluster.

``apache_beam.runners.dask.dask_runner.DaskRunner`` (Beam 2.77) loses or changes data in
four ways and spreads a backfill badly; this subclass fixes each without touching Beam:

1. **Outputs of ``finish_bundle`` are dropped**: a bundle's outputs are collected before
   ``finish_bundle`` runs, so whatever a DoFn emits there is lost. RunInference's
   batching emits its last batch there, and WriteToParquet hands over its files there.
   Here the outputs are collected after ``finish_bundle``.
2. **Tagged outputs are not told apart**: every consumer of a multi-output ParDo (such
   as ``beam.Partition``, which routes score, call and dead-letter rows) reads all of
   its outputs. That was the ``KeyError: 'stage'`` in WriteToParquet. Here each output
   is kept with its tag, and a consumer reads only its own tag's.
3. **Only the last transform is computed**: with several sinks, only the last one's
   graph ran. Here every leaf of the pipeline is computed, in one computation.
4. **A side input runs its upstream again**: a task reads a side input by computing its
   bag, so WriteToParquet's finalising step scored every recording a second time (and
   the voice step's per-channel statistics saw a recording twice). Here side inputs are
   persisted once and read from there.

5. **Up to 128 inputs share one partition**: Beam's default partition size is 128
   elements of the input list, so a backfill of fewer than 129 recordings ran as one
   partition, on one worker, however many the cluster had. A recording is minutes of
   work, so here each input is its own partition unless ``--dask_partition_size`` or
   ``--dask_npartitions`` says otherwise.

Metrics are not collected by the Dask runner: ``metrics()`` answers with no counters.
Use it as ``--runner DaskRunner --dask_client_address tcp://HOST:8786`` (``runner.py``
maps the short name here); see docs/scaling.md.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from apache_beam import TaggedOutput, pvalue
from apache_beam.runners.dask import dask_runner as upstream
from apache_beam.runners.dask import transform_evaluator as te
from apache_beam.runners.dask.overrides import dask_overrides
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.utils.windowed_value import WindowedValue


def _run_bundle(items, invoker_args, invoker_kwargs, receivers) -> list[tuple[Any, Any]]:  # noqa: ANN001
    """One Dask partition as one Beam bundle: (tag, element) of every output, those of
    ``finish_bundle`` included."""
    receivers.values.clear()  # the receivers object may be reused by a worker
    invoker = te.DoFnInvoker.create_invoker(*invoker_args, **invoker_kwargs)
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(item)
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    out = []
    for value in receivers.values:
        tag = value.tag if isinstance(value, TaggedOutput) else None
        if isinstance(value, TaggedOutput):
            value = value.value
        # plain elements, as the upstream op hands its main output on (a GroupByKey reads
        # (key, value) pairs; the next ParDo windows them again: batch, global window)
        out.append((tag, value.value if isinstance(value, WindowedValue) else value))
    receivers.values.clear()
    return out


class _ParDo(te.ParDo):
    """``te.ParDo`` with outputs collected after ``finish_bundle``, each with its tag."""

    def apply(self, input_bag, side_inputs=None):  # noqa: ANN001, ANN201
        transform = self.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = getattr(getattr(main_input, "windowing", None), "windowfn", None)
        receivers = te.OneReceiver()
        invoker_args = [
            te.DoFnSignature(transform.fn),
            te._OutputHandler(  # noqa: SLF001 - the upstream op builds it the same way
                window_fn=window_fn,
                main_receivers=receivers[None],
                tagged_receivers=receivers,
                per_element_output_counter=None,
                output_batch_converter=None,
                process_yields_batches=False,
                process_batch_yields_elements=False,
            ),
        ]
        invoker_kwargs = dict(
            context=te.DoFnContext(transform.label, state=None),
            side_inputs=side_inputs,
            input_args=list(args),
            input_kwargs=kwargs,
            user_state_context=None,
            bundle_finalizer_param=te.DoFn.BundleFinalizerParam(),
        )
        return input_bag.map(te.get_windowed_value, window_fn).map_partitions(
            _run_bundle, invoker_args, invoker_kwargs, receivers
        )


TRANSLATIONS = {**te.TRANSLATIONS, te.apache_beam.ParDo: _ParDo}


@dataclasses.dataclass
class _Visitor(upstream.PipelineVisitor):
    """The pipeline as Dask bags (``upstream.DaskRunner.to_dask_bag_visitor``, with tag
    routing and every leaf kept)."""

    bag_kwargs: dict
    client: Any = None
    bags: dict = dataclasses.field(default_factory=collections.OrderedDict)
    persisted: list = dataclasses.field(default_factory=list)  # held until the run ends
    tagged: set = dataclasses.field(default_factory=set)  # producers of (tag, value) bags
    consumed: set = dataclasses.field(default_factory=set)

    def _input(self, value: Any) -> Any:
        producer = value.producer
        self.consumed.add(producer)
        bag = self.bags[producer]
        if producer in self.tagged:
            tag = value.tag
            bag = bag.filter(lambda tv, tag=tag: tv[0] == tag).map(lambda tv: tv[1])
        return bag

    def visit_transform(self, node: Any) -> None:
        op_class = TRANSLATIONS.get(node.transform.__class__, te.NoOp)
        op = op_class(node, bag_kwargs=self.bag_kwargs)
        kws: dict[str, Any] = {"input_bag": None, "side_inputs": None}
        inputs = []
        for value in node.inputs:
            if isinstance(value, pvalue.PBegin):
                inputs.append(None)
            elif value.producer in self.bags:
                inputs.append(self._input(value))
        if inputs:
            single = len(inputs) == 1 and not isinstance(op, te.Flatten)
            kws["input_bag"] = inputs[0] if single else inputs
        if node.side_inputs:
            kws["side_inputs"] = [
                SideInputMap(
                    type(si),
                    si._view_options(),  # noqa: SLF001 - as upstream
                    te.DaskBagWindowedIterator(
                        self._side_input(si.pvalue),
                        si._window_mapping_fn,  # noqa: SLF001
                    ),
                )
                for si in node.side_inputs
            ]
        self.bags[node] = op.apply(**kws)
        if isinstance(op, _ParDo):
            self.tagged.add(node)

    def _side_input(self, value: Any) -> Any:
        """A side input's bag, persisted: a task reads it by computing it, which would
        otherwise run its whole upstream again (the scoring chain, for WriteToParquet's
        finalising step), with stateful steps such as the voice channel statistics seeing
        a recording twice."""
        bag = self._input(value)
        if self.client is not None:
            bag = self.client.persist(bag, optimize_graph=False)  # keys shared with leaves
            self.persisted.append(bag)
        return bag

    def leaves(self) -> list:
        return [bag for node, bag in self.bags.items() if node not in self.consumed]


@dataclasses.dataclass
class _Result(upstream.DaskRunnerResult):
    keep: list = dataclasses.field(default_factory=list)  # persisted side inputs

    def wait_until_finish(self, duration: Any = None) -> str:
        """Beam's wait, then the client closed (upstream leaves it open, and it then
        keeps trying to reach a scheduler that has gone away)."""
        try:
            return super().wait_until_finish(duration)
        finally:
            if self.state != upstream.PipelineState.RUNNING:
                self.keep.clear()
                self.client.close()

    def metrics(self) -> Any:
        return _NoMetrics()


class _NoMetrics:
    def query(self, _filter: Any = None) -> dict[str, list]:
        return {"counters": [], "distributions": [], "gauges": []}


class DaskRunner(upstream.DaskRunner):
    """Beam's DaskRunner with the five mends of the module docstring."""

    def run_pipeline(self, pipeline: Any, options: Any) -> _Result:
        import dask.distributed as ddist

        dask_options = options.view_as(upstream.DaskOptions).get_all_options(
            drop_default=True, current_only=True
        )
        bag_kwargs = upstream.DaskOptions._extract_bag_kwargs(dask_options)  # noqa: SLF001
        if not bag_kwargs:  # one recording per partition (Beam's default is 128 inputs)
            bag_kwargs = {"partition_size": 1}
        client = ddist.Client(**dask_options)
        pipeline.replace_all(dask_overrides())
        visitor = _Visitor(bag_kwargs, client)
        pipeline.visit(visitor)
        # One computation of all the leaves: the tasks they share (the whole scoring
        # chain before the sinks) run once, not once per sink.
        leaves = client.compute(visitor.leaves(), optimize_graph=False)
        return _Result(client, leaves, visitor.persisted)


# One recording at a time per single-thread worker. Dask's default worker-saturation,
# 1.1, rounds up to two root tasks per one-thread worker, so with few recordings one
# worker could hold two while another idled (seen in the cluster test: all three on one).
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}


class LoopbackCluster:
    """A ``dask scheduler`` and ``dask worker --nworkers N --nthreads 1`` on loopback, as
    separate processes of this environment, stopped by pid (whole process groups); logs
    under ``logs``. ``with LoopbackCluster(2, logs) as c: ... c.address``."""

    def __init__(self, workers: int, logs: Any) -> None:
        self.workers, self.logs = workers, logs
        self.procs: list[Any] = []
        self.address = ""

    def __enter__(self) -> LoopbackCluster:
        import os
        import subprocess
        import sys
        import time
        from pathlib import Path

        from distributed import Client

        from sentistream.pipelines.broker import free_port

        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        dask = str(Path(sys.executable).parent / "dask")
        for name, cmd in (
            ("scheduler", [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port)]),
            ("workers", [dask, "worker", self.address, "--nworkers", str(self.workers),
                         "--nthreads", "1"]),
        ):  # fmt: skip
            log = open(Path(self.logs) / f"{name}-{self.workers}.log", "wb")  # noqa: SIM115
            self.procs.append(
                subprocess.Popen(
                    [*cmd, "--no-dashboard"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, **SCHEDULER_ENV},
                )
            )
            log.close()  # the child holds its own copy
            if name == "scheduler":
                time.sleep(1.5)
        try:
            with Client(self.address, timeout=60) as client:
                client.wait_for_workers(self.workers, timeout=120)
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def worker_root(self) -> int:
        """The pid of the ``dask worker`` process (its nanny and workers are below it)."""
        return self.procs[1].pid

    def __exit__(self, *exc: object) -> None:
        import os
        import signal

        for proc in reversed(self.procs):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=30)

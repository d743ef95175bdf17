"""Running the streaming graph locally: two runtimes share it (docs/streaming.md has the
measurements behind the default).

- ``streaming``: FnApiRunner ``--streaming`` runs over the unbounded splittable Kafka
  source (models load once per run; offsets commit per bundle), recycled every
  ``max_run_s`` so memory stays bounded, each recycled run optionally in a forked child;
- ``loop``: poll a batch of events, run the bounded pipeline on it, commit, repeat
  (``stream/loop.py``).

Offsets are committed only after an event's rows were acknowledged by Kafka and its
Parquet files renamed into place (at least once; ``segment_id`` identifies duplicates).
Pass ``--runner=...`` (and ``--kafka-io xlang``) to run the same graph on Dataflow/Flink.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import signal
import sys
import time

import apache_beam as beam

from sentistream.pipelines.options import RUNTIME_LOOP
from sentistream.pipelines.runner import beam_options
from sentistream.pipelines.stream.graph import StreamJob, attach_outputs
from sentistream.pipelines.stream.loop import run_loop
from sentistream.pipelines.stream.settings import StreamSettings
from sentistream.transforms.io.kafka_config import KafkaReadConfig
from sentistream.transforms.io.kafka_offsets import new_consumer, partition_starts
from sentistream.transforms.io.kafka_source import read_kafka

_LOG = logging.getLogger(__name__)


def run(job: StreamJob) -> None:
    """Run the stream with the runtime ``job.settings.runtime`` names."""
    if job.settings.runtime == RUNTIME_LOOP:
        run_loop(job)
    else:
        run_streaming(job)


def run_streaming(job: StreamJob) -> int:
    """Streaming runs over the unbounded Kafka source, one after another; returns how
    many runs it took.

    Each run ends after ``max_run_s`` (and the next starts at once from the committed
    offsets), or, for good, at ``max_events`` or after ``idle_timeout_s`` without events.
    With ``isolate_runs`` each recycled run is a forked child process, so all of its
    memory (the models' native allocations included) goes back when it ends.
    """
    settings = job.settings
    max_run_s = None if settings.max_events is not None else settings.max_run_s
    isolate = settings.isolate_runs and max_run_s is not None and hasattr(os, "fork")
    runs, idle_s, failures = 0, 0.0, 0
    while True:
        started = time.time()
        stop_at = started + max_run_s if max_run_s is not None else None
        read = dataclasses.replace(settings.read_config(), stop_at=stop_at)
        before = committed_offsets(settings)
        try:
            if isolate:
                _run_in_child(job, read, runs + 1)
            else:
                _run_once(job, read)
                gc.collect()  # the finished run is cyclic garbage; free it before the next
        except Exception as exc:  # noqa: BLE001 - a failed run is retried, then isolated
            runs += 1
            moved = committed_offsets(settings) != before
            failures = 1 if moved else failures + 1
            if failures < settings.max_attempts:
                _LOG.warning("streaming run %d failed (%s); restarting it", runs, exc)
                continue
            _LOG.error(
                "streaming run %d failed %d times at the same offsets (%s): running the "
                "next events one at a time to find and dead-letter the failing one",
                runs,
                failures,
                exc,
            )
            _isolate_next_events(job)
            failures = 0
            continue
        failures = 0
        runs += 1
        if stop_at is None or time.time() < stop_at:
            return runs  # the source stopped before the stop time: idle, or max_events read
        # Runs can be shorter than the idle timeout: count idle time across runs.
        idle_s = idle_s + time.time() - started if committed_offsets(settings) == before else 0
        if settings.idle_timeout_s is not None and idle_s >= settings.idle_timeout_s:
            return runs
        _LOG.info("streaming run %d reached %.0fs; starting a fresh one", runs, max_run_s)


def _isolate_next_events(job: StreamJob) -> None:
    """One loop-runtime pass over the next ``batch_events`` events from the committed
    offsets: failing events become dead letters and every offset of the pass is
    committed (``loop.run_batch_isolating_failures``)."""
    settings = dataclasses.replace(
        job.settings,
        runtime=RUNTIME_LOOP,
        kafka_io="python",
        max_events=job.settings.batch_events,
        idle_timeout_s=5.0,
    )
    run_loop(dataclasses.replace(job, settings=settings))


def _run_once(job: StreamJob, read: KafkaReadConfig) -> None:
    with beam.Pipeline(options=beam_options(job.beam_args, streaming=True)) as p:
        records = p | "ReadEvents" >> read_kafka(read, job.settings.kafka_io, unbounded=True)
        attach_outputs(records, job)


def _die_with_parent() -> None:
    """Linux: the kernel sends this process SIGKILL when its parent dies (even by SIGKILL),
    so a run never outlives the ``stream`` command that forked it."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _child_main(job: StreamJob, read: KafkaReadConfig, parent: int) -> None:
    # Die at once on SIGTERM / Ctrl-C (the parent decides what happens next): finished
    # bundles are committed, the bundle in hand is simply read again by the next run.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    _run_once(job, read)


def _run_in_child(job: StreamJob, read: KafkaReadConfig, number: int) -> None:
    """One streaming run in a forked child; raises if it fails."""
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(
        target=_child_main, args=(job, read, os.getpid()), name=f"sentistream-run-{number}"
    )
    child.start()
    try:
        child.join()
    finally:
        if child.is_alive():  # the parent was interrupted: stop the run too
            child.terminate()
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"streaming run {number} failed (exit code {child.exitcode})")


def committed_offsets(settings: StreamSettings) -> dict[tuple[str, int], int]:
    """Where each input partition would start now (the group's committed offset)."""
    read = settings.read_config()
    consumer = new_consumer(read)
    try:
        return {(s.topic, s.partition): s.start_offset for s in partition_starts(consumer, read)}
    finally:
        consumer.close(autocommit=False)

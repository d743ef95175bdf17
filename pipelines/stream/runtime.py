"""The streaming job: events on Kafka in; scores on Kafka and in Parquet out.

    sentistream stream [--bootstrap HOST:PORT] [--input-topic T] [--output-topic T]
                       [--dead-letter-topic T] [--output DIR] [--group-id G]
                       [--runtime streaming|loop] [--max-events N] [--idle-timeout S]

Graph (one fused stage: no Flatten, join or shuffle, so every step runs live)::

    Kafka events -> ParseEvents -> ScoreVideos -> rows -> Kafka (scores / dead letters)
                        |                           \\-> Parquet (streaming files)
                        \\-> dead letters (bad events) -> Kafka + Parquet

Offsets are committed only after an event's rows were acknowledged by Kafka and its
Parquet files renamed into place (at least once; ``segment_id`` identifies duplicates).
Two local runtimes share the graph (docs/streaming.md has the measurements behind the
default):

- ``streaming``: one long FnApiRunner ``--streaming`` run over the unbounded
  splittable Kafka source (models load once; offsets commit per bundle);
- ``loop``: poll a batch of events, run the bounded pipeline on it, commit, repeat.

Pass ``--runner=...`` (and ``--kafka-io xlang`` for Java KafkaIO) to run the same graph
on Dataflow or Flink. Without ``--bootstrap`` an embedded local broker (in-memory Tansu)
is started, which only makes sense for trying things out: see ``sentistream demo``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from sentistream.pipelines.broker import LocalBroker, ensure_topics
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.io.events import DEAD_LETTER_TAG, ParseEvents
from sentistream.transforms.io.kafka_source import (
    IO_CHOICES,
    IO_PYTHON,
    KafkaReadConfig,
    KafkaRecord,
    KafkaWriteConfig,
    WriteRowsToKafka,
    commit_offset,
    new_consumer,
    partition_starts,
    read_kafka,
)
from sentistream.transforms.io.parquet_stream import ParquetStreamConfig, WriteRowsToParquetStream

_LOG = logging.getLogger(__name__)

RUNTIME_STREAMING = "streaming"
RUNTIME_LOOP = "loop"
RUNTIMES = (RUNTIME_STREAMING, RUNTIME_LOOP)
DEFAULT_RUNTIME = RUNTIME_STREAMING

Scorer = Callable[[PipelineConfig], beam.PTransform]


def default_scorer(config: PipelineConfig) -> beam.PTransform:
    from sentistream.transforms.score import ScoreVideos

    return ScoreVideos(config)


def load_scorer(spec: str | None) -> Scorer:
    """``module:attr`` or ``path/to/file.py:attr`` -> a callable ``(PipelineConfig) ->
    PTransform`` from VideoRef to rows (None: ``ScoreVideos``)."""
    if not spec:
        return default_scorer
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError(f"--scorer must be 'module:attr' or 'file.py:attr', got {spec!r}")
    if where.endswith(".py"):
        import importlib.util

        mod_spec = importlib.util.spec_from_file_location("_sentistream_scorer", where)
        if mod_spec is None or mod_spec.loader is None:
            raise ValueError(f"--scorer: cannot load {where!r}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[mod_spec.name] = module
        mod_spec.loader.exec_module(module)
    else:
        import importlib

        module = importlib.import_module(where)
    scorer = getattr(module, attr, None)
    if not callable(scorer):
        raise ValueError(f"--scorer: {attr!r} in {where!r} is not callable")
    return scorer


@dataclass(frozen=True)
class StreamSettings:
    """Where the stream reads and writes, and when a (test or demo) run stops.

    Attributes:
        bootstrap: Kafka brokers, ``host:port[,...]``.
        input_topic / output_topic / dead_letter_topic: the three topics.
        output: Parquet root (``scores/`` and ``dead_letters/`` below it); None: no Parquet.
        group_id: consumer group for committed offsets; this pipeline's alone.
        runtime: ``streaming`` or ``loop`` (see the module docstring).
        max_events: stop after this many events (streaming runtime: per partition).
        idle_timeout_s: stop once no event arrived for this long.
        max_run_s: streaming runtime: end the streaming run after this long and start a
            fresh one (FnApiRunner's memory grows with every bundle; a fresh run starts
            from zero; see docs/streaming.md). None: one run forever. Not used with
            ``max_events``, whose runs end by themselves.
        isolate_runs: run each recycled streaming run in a forked child process (the CLI
            does), so native memory the models accumulate is returned too.
        batch_events: loop runtime: most events per bounded run.
        kafka_io: ``python`` (kafka-python, any runner) or ``xlang`` (Java KafkaIO).
        check_exists: dead-letter events whose media does not exist when they arrive.
        parquet_max_delay_s: a Parquet buffer is written once its oldest row is this old.
    """

    bootstrap: str
    input_topic: str = "sentistream.events"
    output_topic: str = "sentistream.scores"
    dead_letter_topic: str = "sentistream.dead_letters"
    output: str | None = "out/stream"
    group_id: str = "sentistream-stream"
    runtime: str = DEFAULT_RUNTIME
    max_events: int | None = None
    idle_timeout_s: float | None = None
    max_run_s: float | None = 600.0
    isolate_runs: bool = False
    batch_events: int = 4
    kafka_io: str = IO_PYTHON
    check_exists: bool = True
    parquet_max_delay_s: float = 10.0

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        if self.kafka_io not in IO_CHOICES:
            raise ValueError(f"kafka_io must be one of {IO_CHOICES}, got {self.kafka_io!r}")
        if self.max_events is not None and self.max_events < 1:
            raise ValueError(f"max_events must be >= 1 or None, got {self.max_events!r}")
        if self.idle_timeout_s is not None and not self.idle_timeout_s > 0:
            raise ValueError(f"idle_timeout_s must be > 0 or None, got {self.idle_timeout_s!r}")
        if self.max_run_s is not None and not self.max_run_s > 0:
            raise ValueError(f"max_run_s must be > 0 or None, got {self.max_run_s!r}")
        if self.batch_events < 1:
            raise ValueError(f"batch_events must be >= 1, got {self.batch_events!r}")
        if self.runtime == RUNTIME_LOOP and self.kafka_io != IO_PYTHON:
            raise ValueError("the loop runtime polls with kafka-python: use kafka_io='python'")

    def read_config(self) -> KafkaReadConfig:
        return KafkaReadConfig(
            bootstrap=self.bootstrap,
            topics=(self.input_topic,),
            group_id=self.group_id,
            max_records_per_partition=self.max_events,
            idle_stop_s=self.idle_timeout_s,
        )

    def write_config(self) -> KafkaWriteConfig:
        return KafkaWriteConfig(self.bootstrap, self.output_topic, self.dead_letter_topic)


def attach_outputs(
    records: beam.PCollection,
    config: PipelineConfig,
    settings: StreamSettings,
    scorer: Scorer = default_scorer,
) -> None:
    """Events (``KafkaRecord`` or bytes) -> parse -> score -> Kafka + Parquet sinks.

    Both row streams (scored rows, and dead letters of events that did not parse) go to
    the same two sinks without a Flatten, so the graph stays one live stage.
    """
    parsed = records | "ParseEvents" >> ParseEvents(check_exists=settings.check_exists)
    rows = parsed.refs | "Score" >> scorer(config)
    for label, pcoll in (("Rows", rows), ("EventDeadLetters", parsed[DEAD_LETTER_TAG])):
        _ = pcoll | f"{label}ToKafka" >> WriteRowsToKafka(
            settings.write_config(), io=settings.kafka_io
        )
        if settings.output:
            parquet = ParquetStreamConfig(settings.output, max_delay_s=settings.parquet_max_delay_s)
            _ = pcoll | f"{label}ToParquet" >> WriteRowsToParquetStream(parquet)


def beam_options(beam_args: Sequence[str], *, streaming: bool) -> PipelineOptions:
    """FnApiRunner in-process unless ``--runner`` is given (no Prism download offline)."""
    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        args.append("--runner=FnApiRunner")
    if streaming and "--streaming" not in args:
        args.append("--streaming")
    return PipelineOptions(args)


def run_streaming(
    settings: StreamSettings,
    config: PipelineConfig,
    beam_args: Sequence[str] = (),
    scorer: Scorer = default_scorer,
) -> int:
    """Streaming runs over the unbounded Kafka source, one after another; returns how
    many runs it took.

    Each run ends after ``max_run_s`` (and the next starts at once from the committed
    offsets), or, for good, at ``max_events`` or after ``idle_timeout_s`` without events.
    With ``isolate_runs`` each recycled run is a forked child process, so all of its
    memory (the models' native allocations included) goes back when it ends.
    """
    max_run_s = None if settings.max_events is not None else settings.max_run_s
    isolate = settings.isolate_runs and max_run_s is not None and hasattr(os, "fork")
    runs, idle_s = 0, 0.0
    while True:
        started = time.time()
        stop_at = started + max_run_s if max_run_s is not None else None
        read = dataclasses.replace(settings.read_config(), stop_at=stop_at)
        before = committed_offsets(settings)
        if isolate:
            _run_in_child(read, config, settings, beam_args, scorer, runs + 1)
        else:
            _run_once(read, config, settings, beam_args, scorer)
            gc.collect()  # the finished run is cyclic garbage; free it before the next
        runs += 1
        if stop_at is None or time.time() < stop_at:
            return runs  # the source stopped before the stop time: idle, or max_events read
        # Runs can be shorter than the idle timeout: count idle time across runs.
        idle_s = idle_s + time.time() - started if committed_offsets(settings) == before else 0
        if settings.idle_timeout_s is not None and idle_s >= settings.idle_timeout_s:
            return runs
        _LOG.info("streaming run %d reached %.0fs; starting a fresh one", runs, max_run_s)


def _run_once(
    read: KafkaReadConfig,
    config: PipelineConfig,
    settings: StreamSettings,
    beam_args: Sequence[str],
    scorer: Scorer,
) -> None:
    with beam.Pipeline(options=beam_options(beam_args, streaming=True)) as p:
        records = p | "ReadEvents" >> read_kafka(read, settings.kafka_io, unbounded=True)
        attach_outputs(records, config, settings, scorer)


def _child_main(*args: Any) -> None:
    # Die at once on SIGTERM / Ctrl-C (the parent decides what happens next): finished
    # bundles are committed, the bundle in hand is simply read again by the next run.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _run_once(*args)


def _run_in_child(
    read: KafkaReadConfig,
    config: PipelineConfig,
    settings: StreamSettings,
    beam_args: Sequence[str],
    scorer: Scorer,
    number: int,
) -> None:
    """One streaming run in a forked child; raises if it fails."""
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(
        target=_child_main,
        args=(read, config, settings, beam_args, scorer),
        name=f"sentistream-run-{number}",
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


@dataclass
class LoopStats:
    """What the loop runtime did: events and bounded runs, and seconds per run."""

    events: int = 0
    runs: int = 0
    run_seconds: list[float] = dataclasses.field(default_factory=list)


def run_loop(
    settings: StreamSettings,
    config: PipelineConfig,
    beam_args: Sequence[str] = (),
    scorer: Scorer = default_scorer,
    stop: threading.Event | None = None,
) -> LoopStats:
    """Poll a batch, run the bounded pipeline on it, commit its offsets, repeat.

    Stops at ``max_events``, after ``idle_timeout_s`` without events, or when ``stop``
    is set; a failed run raises before its offsets are committed.
    """
    from kafka import TopicPartition

    read = settings.read_config()
    consumer = new_consumer(read)
    stats = LoopStats()
    try:
        starts = partition_starts(consumer, read)
        tps = [TopicPartition(s.topic, s.partition) for s in starts]
        consumer.assign(tps)
        for s, tp in zip(starts, tps, strict=True):
            consumer.seek(tp, s.start_offset)
        last_event = time.monotonic()
        while stop is None or not stop.is_set():
            want = settings.batch_events
            if settings.max_events is not None:
                want = min(want, settings.max_events - stats.events)
                if want <= 0:
                    break
            polled = consumer.poll(timeout_ms=100, max_records=want)
            batch = [
                KafkaRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
                for records in polled.values()
                for r in records
            ]
            if not batch:
                idle = time.monotonic() - last_event
                if settings.idle_timeout_s is not None and idle > settings.idle_timeout_s:
                    break
                continue
            started = time.monotonic()
            with beam.Pipeline(options=beam_options(beam_args, streaming=False)) as p:
                records = p | "Events" >> beam.Create(batch, reshuffle=False)
                attach_outputs(records, config, settings, scorer)
            next_offsets: dict[tuple[str, int], int] = {}
            for r in batch:
                key = (r.topic, r.partition)
                next_offsets[key] = max(next_offsets.get(key, 0), r.offset + 1)
            for (topic, partition), offset in next_offsets.items():
                commit_offset(consumer, topic, partition, offset)
            stats.events += len(batch)
            stats.runs += 1
            stats.run_seconds.append(time.monotonic() - started)
            last_event = time.monotonic()
    finally:
        consumer.close(autocommit=False)
    return stats


def run(
    settings: StreamSettings,
    config: PipelineConfig,
    beam_args: Sequence[str] = (),
    scorer: Scorer = default_scorer,
) -> None:
    """Run the stream with the runtime ``settings.runtime`` names."""
    if settings.runtime == RUNTIME_LOOP:
        run_loop(settings, config, beam_args, scorer)
    else:
        run_streaming(settings, config, beam_args, scorer)


@contextmanager
def kafka_for(bootstrap: str | None, topics: Sequence[str]) -> Iterator[str]:
    """Yield a bootstrap address with ``topics`` present: ``bootstrap`` if given, else an
    embedded local broker (stopped on exit)."""
    if bootstrap:
        try:
            ensure_topics(bootstrap, topics)
        except Exception as exc:  # noqa: BLE001 - the topics may exist without admin rights
            _LOG.warning("could not check/create topics %s on %s: %s", topics, bootstrap, exc)
        yield bootstrap
        return
    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, topics)
        print(f"embedded local Kafka broker (in-memory) at {broker.bootstrap}", file=sys.stderr)
        yield broker.bootstrap


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--bootstrap",
        default=None,
        help="Kafka bootstrap servers host:port[,...] (default: start an embedded local broker)",
    )
    add("--input-topic", default=StreamSettings.input_topic, help="topic of input events")
    add("--output-topic", default=StreamSettings.output_topic, help="topic of score rows")
    add(
        "--dead-letter-topic",
        default=StreamSettings.dead_letter_topic,
        help="topic of dead letters (bad events, failed media)",
    )
    add(
        "--output",
        default=StreamSettings.output,
        help="Parquet root (scores/ and dead_letters/ below it); '' for none",
    )
    add(
        "--group-id",
        default=StreamSettings.group_id,
        help="consumer group holding the committed offsets (this pipeline's alone)",
    )
    add(
        "--runtime",
        choices=RUNTIMES,
        default=DEFAULT_RUNTIME,
        help="local runtime: one streaming run, or a loop of bounded runs (docs/streaming.md)",
    )
    add(
        "--batch-events",
        type=int,
        default=StreamSettings.batch_events,
        help="loop runtime: most events per bounded run",
    )
    add(
        "--kafka-io",
        choices=IO_CHOICES,
        default=IO_PYTHON,
        help="python: kafka-python source/sink (any runner); xlang: Beam's Java KafkaIO "
        "(Dataflow/Flink; needs Java and the expansion service)",
    )
    add(
        "--max-run-minutes",
        type=float,
        default=StreamSettings.max_run_s / 60,
        help="streaming runtime: end the run this often and start a fresh one, to bound "
        "memory (0: never; docs/streaming.md)",
    )
    add(
        "--no-isolate-runs",
        action="store_true",
        help="streaming runtime: recycle runs in this process instead of a forked child",
    )
    add(
        "--max-events",
        type=int,
        default=None,
        help="stop after this many events (streaming runtime: per partition)",
    )
    add(
        "--idle-timeout",
        type=float,
        default=None,
        help="stop after this many seconds without an event",
    )
    add(
        "--no-check-exists",
        action="store_true",
        help="do not check that the media exists when an event arrives",
    )
    add(
        "--scorer",
        default=None,
        help="module:attr or file.py:attr of a callable(PipelineConfig) -> PTransform from "
        "VideoRef to rows, instead of ScoreVideos (benchmarks, custom processing)",
    )


def settings_from_args(args: argparse.Namespace, bootstrap: str) -> StreamSettings:
    return StreamSettings(
        bootstrap=bootstrap,
        input_topic=args.input_topic,
        output_topic=args.output_topic,
        dead_letter_topic=args.dead_letter_topic,
        output=args.output or None,
        group_id=args.group_id,
        runtime=args.runtime,
        max_events=args.max_events,
        idle_timeout_s=args.idle_timeout,
        max_run_s=args.max_run_minutes * 60 if args.max_run_minutes else None,
        isolate_runs=not args.no_isolate_runs,
        batch_events=args.batch_events,
        kafka_io=args.kafka_io,
        check_exists=not args.no_check_exists,
    )


def run_command(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> int:
    """``sentistream stream``: run until stopped (or ``--max-events`` / ``--idle-timeout``)."""
    from sentistream.pipelines.options import config_from_args

    config = config_from_args(args)
    topics = [args.input_topic, args.output_topic, args.dead_letter_topic]
    with kafka_for(args.bootstrap, topics) as bootstrap, _terminate_as_interrupt():
        settings = settings_from_args(args, bootstrap)
        _LOG.info(
            "streaming %s -> %s (+ %s)",
            settings.input_topic,
            settings.output_topic,
            settings.output or "no Parquet",
        )
        try:
            run(settings, config, beam_args, load_scorer(args.scorer))
        except KeyboardInterrupt:
            print("stopped; offsets of completed work are committed", file=sys.stderr)
            return 130
    return 0


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so the embedded broker is stopped on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``stream`` on the CLI's subparsers; ``func`` is ``run_command``."""
    from sentistream.pipelines.options import add_model_arguments

    parser = subparsers.add_parser(
        "stream",
        help="score events from Kafka continuously into Kafka and Parquet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stream_arguments(parser)
    add_model_arguments(parser)
    parser.set_defaults(func=run_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sentistream.pipelines.stream.runtime`` (the same flags as ``sentistream stream``)."""
    from sentistream.pipelines.options import add_model_arguments

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_stream_arguments(parser)
    add_model_arguments(parser)
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(
        level=os.environ.get("SENTISTREAM_LOG", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,  # importing Beam may already have configured the root logger
    )
    for noisy in ("kafka", "apache_beam"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))
    return run_command(args, beam_args)


if __name__ == "__main__":
    sys.exit(main())

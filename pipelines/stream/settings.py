"""Where the stream reads and writes, and when a run stops: ``StreamSettings`` and its
command-line flags (``STREAM_FLAGS`` in ``pipelines/options.py``; each flag's default is
the field's default)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from sentistream.pipelines.flags import add_flags, from_args
from sentistream.pipelines.options import (
    DEFAULT_RUNTIME,
    RUNTIME_LOOP,
    RUNTIMES,
    STREAM_FLAGS,
)
from sentistream.transforms.io.kafka_config import IO_CHOICES, IO_PYTHON, KafkaReadConfig
from sentistream.transforms.io.kafka_sink import KafkaWriteConfig


@dataclass(frozen=True)
class StreamSettings:
    """Where the stream reads and writes, and when a (test or demo) run stops.

    Attributes:
        bootstrap: Kafka brokers, ``host:port[,...]``; None: an embedded local broker,
            started by ``broker.kafka_for`` (which returns settings with its address).
        input_topic / output_topic / dead_letter_topic / calls_topic: the topics of input
            events, segment rows, dead letters and call-level rows.
        output: Parquet root (``scores/``, ``calls/`` and ``dead_letters/`` below it);
            None: no Parquet.
        group_id: consumer group for committed offsets; this pipeline's alone.
        runtime: ``streaming`` or ``loop`` (see ``stream/runtime.py``).
        max_events: stop after this many events (streaming runtime: per partition).
        idle_timeout_s: stop once no event arrived for this long.
        max_run_s: streaming runtime: end the streaming run after this long and start a
            fresh one (FnApiRunner's memory grows with every bundle; a fresh run starts
            from zero; see docs/streaming.md). None: one run forever. Not used with
            ``max_events``, whose runs end by themselves.
        isolate_runs: run each recycled streaming run in a forked child process (the CLI
            does), so native memory the models accumulate is returned too.
        batch_events: loop runtime: most events per bounded run.
        max_attempts: how many times a failing run is tried before its events are run one
            at a time and each event that still fails becomes a dead letter (``stage``
            ``stream``, the raw event kept) with its offset committed: one poison event
            never stops the stream.
        kafka_io: ``python`` (kafka-python, any runner) or ``xlang`` (Java KafkaIO).
        check_exists: dead-letter events whose media does not exist when they arrive.
        parquet_max_delay_s: a Parquet buffer is written once its oldest row is this old.
    """

    bootstrap: str | None = None
    input_topic: str = "sentistream.events"
    output_topic: str = "sentistream.scores"
    dead_letter_topic: str = "sentistream.dead_letters"
    calls_topic: str = "sentistream.calls"
    output: str | None = "out/stream"
    group_id: str = "sentistream-stream"
    runtime: str = DEFAULT_RUNTIME
    max_events: int | None = None
    idle_timeout_s: float | None = None
    max_run_s: float | None = 600.0
    isolate_runs: bool = True
    batch_events: int = 4
    max_attempts: int = 2
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
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        if self.runtime == RUNTIME_LOOP and self.kafka_io != IO_PYTHON:
            raise ValueError("the loop runtime polls with kafka-python: use kafka_io='python'")

    @property
    def topics(self) -> tuple[str, str, str, str]:
        return (self.input_topic, self.output_topic, self.dead_letter_topic, self.calls_topic)

    def _broker(self) -> str:
        if not self.bootstrap:
            raise ValueError("bootstrap is None: give --bootstrap, or start a broker (kafka_for)")
        return self.bootstrap

    def read_config(self) -> KafkaReadConfig:
        return KafkaReadConfig(
            bootstrap=self._broker(),
            topics=(self.input_topic,),
            group_id=self.group_id,
            max_records_per_partition=self.max_events,
            idle_stop_s=self.idle_timeout_s,
        )

    def write_config(self) -> KafkaWriteConfig:
        return KafkaWriteConfig(
            self._broker(), self.output_topic, self.dead_letter_topic, self.calls_topic
        )


def add_stream_arguments(parser: Any) -> None:
    """The stream's own options (``--scorer`` too); processing options are separate."""
    add_flags(parser, STREAM_FLAGS, StreamSettings())
    parser.add_argument(
        "--scorer",
        default=None,
        help="module:attr or file.py:attr of a callable(PipelineConfig) -> PTransform from "
        "VideoRef to rows, instead of ScoreVideos (benchmarks, custom processing)",
    )


def settings_from_args(args: argparse.Namespace) -> StreamSettings:
    return from_args(args, STREAM_FLAGS, StreamSettings())

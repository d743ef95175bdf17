"""The streaming job: events on Kafka in; scores on Kafka and in Parquet out.

    sentistream stream [--bootstrap HOST:PORT] [--input-topic T] [--output-topic T]
                       [--dead-letter-topic T] [--calls-topic T] [--output DIR]
                       [--group-id G]
                       [--runtime streaming|loop] [--max-events N] [--idle-timeout S]

or ``python -m sentistream.pipelines.stream`` (same flags; add ``--runner=...`` and
``--kafka-io xlang`` for Dataflow or Flink). The graph is ``stream/graph.py``; the local
runtimes (``streaming``, ``loop``) are ``stream/runtime.py``. Without ``--bootstrap`` an
embedded local broker (in-memory Tansu) is started, which only makes sense for trying
things out: see ``sentistream demo``. Live calls (a stream URL, or chunk events) are
scored while they go on: docs/live.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sentistream.pipelines.broker import kafka_for
from sentistream.pipelines.flags import parser_with
from sentistream.pipelines.logs import STREAM_NOISY, configure_logging, default_level
from sentistream.pipelines.options import add_model_arguments, config_from_args
from sentistream.pipelines.stream.graph import StreamJob, load_scorer
from sentistream.pipelines.stream.runtime import run
from sentistream.pipelines.stream.settings import add_stream_arguments, settings_from_args

_LOG = logging.getLogger(__name__)


def run_command(job: StreamJob) -> int:
    """Run until stopped (or ``max_events`` / ``idle_timeout_s``); 130 when interrupted.
    Without a bootstrap address an embedded local broker serves the run."""
    topics = job.settings.topics
    with kafka_for(job.settings.bootstrap, topics) as bootstrap, _terminate_as_interrupt():
        settings = dataclasses.replace(job.settings, bootstrap=bootstrap)
        _LOG.info(
            "streaming %s -> %s (+ %s)",
            settings.input_topic,
            settings.output_topic,
            settings.output or "no Parquet",
        )
        try:
            run(dataclasses.replace(job, settings=settings))
        except KeyboardInterrupt:
            print("stopped; offsets of completed work are committed", file=sys.stderr)
            return 130
    return 0


def run_from_args(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> int:
    """Parsed ``stream`` arguments -> typed settings, once -> ``run_command``."""
    job = StreamJob(
        settings=settings_from_args(args),
        config=config_from_args(args),
        beam_args=tuple(beam_args),
        scorer=load_scorer(args.scorer),
    )
    return run_command(job)


def add_arguments(parser: Any) -> None:
    """Every option of the stream: its own, then the processing options."""
    add_stream_arguments(parser)
    add_model_arguments(parser)


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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sentistream.pipelines.stream`` (the same flags as ``sentistream stream``)."""
    args, beam_args = parser_with(__doc__, add_arguments).parse_known_args(argv)
    configure_logging(default_level(), quiet=STREAM_NOISY)
    return run_from_args(args, beam_args)

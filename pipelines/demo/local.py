"""``sentistream demo``: the streaming job on one machine, end to end, in a minute.

Starts the local Kafka-protocol broker (in-memory Tansu; or uses ``--bootstrap``),
publishes an event for the built-in DEMO sample (a generated 20 s clip) and one
deliberately malformed event, runs the streaming pipeline until both are handled, prints
each score row as it arrives on the output topic (seconds after the event was
published), and stops everything. Parquet lands under ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentistream.pipelines.stream import runtime as stream
from sentistream.transforms.io.events import encode_event


def _fmt(value: float | None) -> str:
    return "    -" if value is None else f"{value:+.2f}"


def format_row(row: dict[str, Any], since_s: float) -> str:
    """One score row as a line of the demo's live table."""
    text = (row.get("transcript") or "")[:48]
    return (
        f"+{since_s:5.1f}s {row['start_s']:5.1f}-{row['end_s']:5.1f}s {row['speaker']:<8} "
        f"face {_fmt(row['face_valence'])} voice {_fmt(row['voice_valence'])} "
        f"text {_fmt(row['text_valence'])} -> {_fmt(row['fused_valence'])} "
        f"{row['fused_label']:<8} {text}"
    )


class Printer(threading.Thread):
    """Follows the output and dead-letter topics and prints what arrives."""

    def __init__(self, bootstrap: str, topics: Sequence[str], t0: float) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tps = [TopicPartition(t, 0) for t in topics]
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, 0)
        self._scores_topic = topics[0]
        self._t0 = t0
        self._halt = threading.Event()
        self.rows = 0
        self.dead = 0

    def run(self) -> None:
        while not self._halt.is_set():
            self.drain(timeout_ms=100)

    def drain(self, timeout_ms: int) -> None:
        for tp, records in self._consumer.poll(timeout_ms=timeout_ms).items():
            for r in records:
                row = json.loads(r.value)
                since = time.time() - self._t0
                if tp.topic == self._scores_topic:
                    self.rows += 1
                    print(format_row(row, since), flush=True)
                else:
                    self.dead += 1
                    print(
                        f"+{since:5.1f}s DEAD LETTER [{row['stage']}/{row['error_type']}] "
                        f"{row['error'][:70]}",
                        flush=True,
                    )

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.drain(timeout_ms=500)  # anything that arrived while stopping
        self._consumer.close(autocommit=False)


def run_demo(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> int:
    from sentistream.pipelines.cli import default_cache_dir
    from sentistream.pipelines.options import config_from_args
    from sentistream.pipelines.demo.synth import make_sample

    config = config_from_args(args)
    sample = make_sample(default_cache_dir() / "sample")
    run_id = uuid.uuid4().hex[:8]
    names = [f"sentistream.demo.{kind}.{run_id}" for kind in ("events", "scores", "dead")]
    with stream.kafka_for(args.bootstrap, names) as bootstrap:
        settings = stream.StreamSettings(
            bootstrap=bootstrap,
            input_topic=names[0],
            output_topic=names[1],
            dead_letter_topic=names[2],
            output=args.output,
            group_id=f"sentistream-demo-{run_id}",
            runtime=args.runtime,
            max_events=2,
        )
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        t0 = time.time()
        producer.send(
            names[0],
            encode_event(str(sample), video_id="demo-sample", source="sentistream-demo"),
        ).get(timeout=10)
        producer.send(names[0], b'{"video_id": "demo-broken", "note": "no uri"}').get(10)
        producer.close(timeout=5)
        print(
            f"published 2 events to {names[0]} on {bootstrap}: the DEMO sample {sample.name}\n"
            "(a generated clip: NASA's public-domain astronaut portrait + synthesized speech)"
            "\nand one malformed event (no uri) to show the dead-letter path. Scoring...\n",
            flush=True,
        )
        printer = Printer(bootstrap, names[1:], t0)
        printer.start()
        try:
            stream.run(settings, config, beam_args)
        finally:
            printer.stop()
    print(
        f"\n{printer.rows} score rows, {printer.dead} dead letter(s) in "
        f"{time.time() - t0:.1f}s; Parquet under {Path(args.output).resolve()}",
        flush=True,
    )
    return 0 if printer.rows else 1


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on the CLI's subparsers; ``func`` is ``run_demo``."""
    from sentistream.pipelines.options import add_model_arguments

    parser = subparsers.add_parser(
        "demo",
        help="start a local broker, stream the built-in sample through, show rows arriving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bootstrap", default=None, help="use this Kafka instead of starting the local broker"
    )
    parser.add_argument("--output", default="out/demo", help="Parquet root")
    parser.add_argument(
        "--runtime",
        choices=stream.RUNTIMES,
        default=stream.DEFAULT_RUNTIME,
        help="local streaming runtime (docs/streaming.md)",
    )
    add_model_arguments(parser)
    parser.set_defaults(func=run_demo)
    return parser


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="sentistream")
    add_parser(_parser.add_subparsers())
    _args, _beam = _parser.parse_known_args(["demo", *sys.argv[1:]])
    sys.exit(_args.func(_args, _beam))

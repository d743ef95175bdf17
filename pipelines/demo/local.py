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
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentistream.pipelines.broker import kafka_for
from sentistream.pipelines.demo.sample import DEMO_BANNER, builtin_sample
from sentistream.pipelines.flags import add_flags, from_args
from sentistream.pipelines.options import (
    DEFAULT_RUNTIME,
    DEMO_FLAGS,
    RUNTIME_STREAMING,
    add_model_arguments,
    config_from_args,
)
from sentistream.pipelines.stream.graph import StreamJob
from sentistream.pipelines.stream.runtime import run
from sentistream.pipelines.stream.settings import StreamSettings
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.io.events import encode_event

CHUNK_S = 2.0  # --live: seconds of audio per chunk event


def _fmt(value: float | None) -> str:
    return "    -" if value is None else f"{value:+.2f}"


def format_row(row: dict[str, Any], since_s: float) -> str:
    """One score row as a line of the demo's live table."""
    text = (row.get("transcript") or "")[:48]
    mark = "~" if row.get("partial") else " "  # a live turn still open
    return (
        f"+{since_s:5.1f}s{mark}{row['start_s']:5.1f}-{row['end_s']:5.1f}s {row['speaker']:<8} "
        f"face {_fmt(row['face_valence'])} voice {_fmt(row['voice_valence'])} "
        f"text {_fmt(row['text_valence'])} -> {_fmt(row['fused_valence'])} "
        f"{row['fused_label']:<8} {text}"
    )


def format_call(row: dict[str, Any], since_s: float) -> str:
    """One call-level row as a line of the demo's output."""
    return (
        f"+{since_s:5.1f}s CALL {row['video_id']} {row['speaker']}: "
        f"{row['fused_label']} {_fmt(row['fused_valence'])} over {row['talk_time_s']:.1f}s "
        f"of talk, trend {_fmt(row['trend'])}, {row['words']} words"
    )


class Printer(threading.Thread):
    """Follows the output, dead-letter and call topics (in that order) and prints what
    arrives."""

    def __init__(self, bootstrap: str, topics: Sequence[str], t0: float) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tps = [TopicPartition(t, 0) for t in topics]
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, 0)
        self._scores_topic = topics[0]
        self._calls_topic = topics[2] if len(topics) > 2 else None
        self._t0 = t0
        self._halt = threading.Event()
        self.rows = 0
        self.dead = 0
        self.calls = 0

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
                elif tp.topic == self._calls_topic:
                    self.calls += 1
                    print(format_call(row, since), flush=True)
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


@dataclass(frozen=True)
class DemoSettings:
    """The demo's own options (the processing options are the pipeline's).

    Attributes:
        bootstrap: use this Kafka; None: start the embedded local broker.
        output: Parquet root.
        runtime: the local streaming runtime (``stream/runtime.py``).
        live: send the sample as a live call in chunk events instead (docs/live.md).
    """

    bootstrap: str | None = None
    output: str = "out/demo"
    runtime: str = DEFAULT_RUNTIME
    live: bool = False


def add_arguments(parser: Any) -> None:
    """The demo's options, then the processing options."""
    add_flags(parser, DEMO_FLAGS, DemoSettings())
    add_model_arguments(parser)


def run_from_args(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> int:
    """Parsed ``demo`` arguments -> typed settings, once -> ``run_demo``."""
    return run_demo(from_args(args, DEMO_FLAGS, DemoSettings()), config_from_args(args), beam_args)


def run_demo(demo: DemoSettings, config: PipelineConfig, beam_args: Sequence[str] = ()) -> int:
    """Publish the sample and a malformed event (``live``: the sample as a live call),
    stream them, print rows as they arrive."""
    sample = builtin_sample()
    run_id = uuid.uuid4().hex[:8]
    kinds = ("events", "scores", "dead", "calls")
    names = [f"sentistream.demo.{kind}.{run_id}" for kind in kinds]
    with kafka_for(demo.bootstrap, names) as bootstrap:
        stream_settings = StreamSettings(
            bootstrap=bootstrap,
            input_topic=names[0],
            output_topic=names[1],
            dead_letter_topic=names[2],
            calls_topic=names[3],
            output=demo.output,
            group_id=f"sentistream-demo-{run_id}",
            runtime=RUNTIME_STREAMING if demo.live else demo.runtime,
            max_events=None if demo.live else 2,
            idle_timeout_s=3.0 if demo.live else None,
            # --live: the call's sender is a thread of this process, which must not fork
            isolate_runs=not demo.live,
        )
        t0 = time.time()
        if demo.live:
            _publish_live(bootstrap, names[0], sample)
        else:
            _publish(bootstrap, names[0], sample)
            print(
                f"published 2 events to {names[0]} on {bootstrap}: the DEMO sample "
                f"{sample.name}\n{DEMO_BANNER}\nand one malformed event (no uri) to show "
                "the dead-letter path. Scoring...\n",
                flush=True,
            )
        printer = Printer(bootstrap, names[1:], t0)
        printer.start()
        try:
            run(StreamJob(stream_settings, config, tuple(beam_args)))
        finally:
            printer.stop()
    print(
        f"\n{printer.rows} score rows, {printer.calls} call row(s), {printer.dead} dead "
        f"letter(s) in "
        f"{time.time() - t0:.1f}s; Parquet under {Path(demo.output).resolve()}",
        flush=True,
    )
    return 0 if printer.rows else 1


def _publish_live(bootstrap: str, topic: str, sample: Path) -> None:
    """The sample's audio as a live call in 2 s chunk events (a thread, started here):
    the first chunk at once, the others in real time once the stream has taken it (so
    the model loading at start-up does not show as latency)."""
    from kafka import KafkaProducer

    from sentistream.pipelines.demo.live import chunk_recording, publish_chunks
    from sentistream.transforms.io.live_holds import HOLDS

    chunks = chunk_recording(sample, CHUNK_S)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    print(
        f"sending the DEMO sample {sample.name} as a live call 'demo-live' on {topic}: "
        f"{len(chunks)} chunk events of {CHUNK_S:.0f} s, in real time. Rows marked ~ are "
        "partial (the turn is still open); its final row follows.\n",
        flush=True,
    )

    def send() -> None:
        publish_chunks(producer, topic, "demo-live", chunks, chunk_s=CHUNK_S, order=[0])
        deadline = time.monotonic() + 600
        while not HOLDS.active() and time.monotonic() < deadline:  # the stream has it
            time.sleep(0.05)
        rest = range(1, len(chunks))
        publish_chunks(producer, topic, "demo-live", chunks, chunk_s=CHUNK_S, order=rest)

    threading.Thread(target=send, daemon=True, name="demo-live-call").start()


def _publish(bootstrap: str, topic: str, sample: Path) -> None:
    """The sample's event, then a malformed one (no uri)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(
        topic, encode_event(str(sample), video_id="demo-sample", source="sentistream-demo")
    ).get(timeout=10)
    producer.send(topic, b'{"video_id": "demo-broken", "note": "no uri"}').get(10)
    producer.close(timeout=5)

"""Streaming benchmark: latency, throughput and memory of ``sentistream stream``.

    python benchmarks/stream_latency.py latency    --runtime streaming --events 20
    python benchmarks/stream_latency.py throughput --runtime streaming --events 8
    python benchmarks/stream_latency.py soak       --runtime streaming --minutes 30 --rate 0.05

It starts a local broker (or uses ``--bootstrap``), writes a ``--clip-seconds`` talking-
head clip with synthesized speech (no captions unless ``--captions``, so the speech
branch runs ASR), starts the stream as a subprocess (``python -m
sentistream.pipelines.stream``), publishes events pointing at the clip, and follows the
output topic. An event is complete when the stream commits its offset (which it does
only after all of its rows are written), so "last row" needs no guess at the row count.

- latency: events one at a time (after a warm-up event); per event, seconds from publish
  to its first and to its last row on the output topic; p50 / p99 / max.
- throughput: ``--events`` published at once; video seconds scored per wall second from
  the first publish to the last completion (the sustained capacity, no idle time).
- soak: events at ``--rate`` per second for ``--minutes``; the stream process's RSS and
  the backlog every ``--sample-s``; RSS slope in MB/hour after the first ``--settle-s``.

``--scorer fake`` swaps the models for a stand-in that sleeps ``--fake-cost-s`` per event
and emits a row per 5 s of clip: it measures the runtime's own overhead and memory.
Prints one JSON object (also written to ``--json-out``). The parts are in
``benchmarks/streambench/``: ``bench`` (the stream process), ``follower`` (its output),
``modes`` (the measurements), ``fake_scorer``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from streambench.bench import Bench
from streambench.modes import run_bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("mode", choices=("latency", "throughput", "soak"))
    add("--runtime", choices=("streaming", "loop"), default="streaming")
    add("--bootstrap", default=None, help="Kafka to use (default: start a local broker)")
    add("--clip-seconds", type=float, default=30.0)
    add("--captions", action="store_true", help="give the clip a WebVTT sidecar (no ASR)")
    add("--events", type=int, default=10, help="latency/throughput: measured events")
    add("--gap-s", type=float, default=1.0, help="latency: pause between events")
    add("--rate", type=float, default=0.05, help="soak: events per second")
    add("--minutes", type=float, default=30.0, help="soak: duration")
    add("--sample-s", type=float, default=10.0, help="soak: RSS sampling period")
    add("--settle-s", type=float, default=120.0, help="soak: ignore RSS before this")
    add("--scorer", choices=("real", "fake"), default="real")
    add("--fake-cost-s", type=float, default=0.2, help="fake scorer: seconds per event")
    add("--threads", type=int, default=2, help="model threads in the stream process")
    add("--batch-events", type=int, default=4, help="loop runtime: events per run")
    add("--timeout-s", type=float, default=300.0, help="per event")
    add("--media-dir", default=str(Path(tempfile.gettempdir()) / "sentistream-bench-media"))
    add("--json-out", default=None)
    add("--debug", action="store_true")
    add(
        "--stream-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="everything after this goes to the stream command (model options)",
    )
    args = parser.parse_args(argv)

    from sentistream.pipelines.broker import LocalBroker

    broker = None if args.bootstrap else LocalBroker().start()
    bootstrap = args.bootstrap or broker.bootstrap  # type: ignore[union-attr]
    try:
        with tempfile.TemporaryDirectory(prefix="sentistream-bench-") as tmp:
            bench = Bench(args, bootstrap, Path(tmp))
            bench.start_stream()
            try:
                result = run_bench(args, bench)
            except BaseException:
                print(
                    (Path(tmp) / "stream.log").read_text(errors="replace")[-4000:], file=sys.stderr
                )
                raise
            finally:
                result_rc = bench.stop()
                if args.json_out:
                    log = Path(tmp) / "stream.log"
                    Path(args.json_out + ".stream.log").write_bytes(log.read_bytes())
            result["stream_exit_code"] = result_rc
    finally:
        if broker is not None:
            broker.stop()
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

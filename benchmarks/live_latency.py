"""Live-call benchmark: from speech in a live source to its row on the output topic.

    python benchmarks/live_latency.py latency --calls 1 --seconds 60
    python benchmarks/live_latency.py latency --calls 3 --seconds 60     # concurrency
    python benchmarks/live_latency.py soak --minutes 30 --speed 2

Each call is a talking-head clip with synthesized speech (``--clip-seconds``, looped to
``--seconds``), played out in real time as a live HLS playlist (1 s segments) on a
loopback HTTP server; one ``live_uri`` event per call goes to a local broker, and the
stream job (the streaming runtime, in this process, speech recognition on: no captions)
scores them with every modality. A finished recording is scored first, so the models are
loaded before the calls start.

Latency: for every 0.25 s instant of speech in a call (the synthesized sentences' spans),
the wall-clock time from when it was played out to the arrival of the first row on the
output topic covering it (partial or final), p50 / p95 / max; also for final rows only.
A call keeps up in real time when the latency of its second half is no worse than that
of its first (``lag_growth_s``, the p50 difference). ``--calls N`` runs N calls at once.

Soak: one call for ``--minutes`` of media (at ``--speed`` x real time), the process's RSS
every ``--sample-s``, and its slope in MB per media hour after ``--settle-s``.

Prints one JSON object (also written to ``--json-out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from streambench.follower import rss_mb

REPO = Path(__file__).resolve().parents[1]
SENTENCES = (
    "Thanks for calling, I am really happy to help you today.",
    "I have been waiting for two weeks and nothing has arrived.",
    "That is completely unacceptable and I am very angry.",
    "I understand, let me check the order status for you right now.",
)


def make_clip(path: Path, seconds: float) -> list[tuple[float, float]]:
    """A talking-head mp4 (a keyframe a second) with the sentences spoken over and over;
    returns the spans of speech (its captions, which are then removed so that the
    warm-up recording is transcribed like the calls)."""
    from sentistream.pipelines.demo.clips import spoken_clip
    from sentistream.transforms.media.captions import parse_captions

    spoken_clip(path, SENTENCES, duration_s=seconds, repeat=True, size=(320, 180), fps=10,
                keyframe_s=1.0)  # fmt: skip
    vtt = path.with_suffix(".vtt")
    cues = parse_captions(vtt.read_text())
    vtt.unlink()
    return [(c.start_s, c.end_s) for c in cues]


def latencies(
    rows: list[tuple[float, dict]], spans: list[tuple[float, float]], started_at: float,
    media_s: float, *, speed: float = 1.0, final_only: bool = False,
) -> list[tuple[float, float]]:  # fmt: skip
    """(media time, latency) of every 0.25 s instant of speech that a row covered: the
    instant was played out at ``started_at + instant / speed``."""
    got = sorted(
        (t, r["start_s"], r["end_s"]) for t, r in rows if not (final_only and r["partial"])
    )
    out = []
    for a, b in spans:
        for instant in np.arange(a + 0.125, b, 0.25):
            if instant > media_s:
                continue
            first = next((t for t, s, e in got if s <= instant <= e), None)
            if first is not None:
                out.append((float(instant), first - (started_at + instant / speed)))
    return out


def summary(points: list[tuple[float, float]]) -> dict:
    if not points:
        return {"n": 0}
    lat = np.array([p[1] for p in points])
    half = len(points) // 2
    early, late = np.median(lat[:half]) if half else np.nan, np.median(lat[half:])
    return {
        "n": len(points),
        "p50_s": round(float(np.percentile(lat, 50)), 2),
        "p95_s": round(float(np.percentile(lat, 95)), 2),
        "max_s": round(float(lat.max()), 2),
        "lag_growth_s": round(float(late - early), 2),
    }


def run(args: argparse.Namespace) -> dict:
    from sentistream.pipelines.broker import LocalBroker, ensure_topics
    from sentistream.pipelines.demo.live import HlsPublisher, TopicTail, serve_folder
    from sentistream.pipelines.options import command_line_defaults
    from sentistream.pipelines.stream.graph import StreamJob
    from sentistream.pipelines.stream.runtime import run as run_stream
    from sentistream.pipelines.stream.settings import StreamSettings
    from sentistream.transforms.config import LiveConfig
    from sentistream.transforms.io.events import encode_event
    from sentistream.transforms.io.live_events import encode_live_event

    work = Path(args.work or tempfile.mkdtemp(prefix="live-bench-"))
    clip = work / f"clip-{int(args.clip_seconds)}.mp4"
    spans_once = make_clip(clip, args.clip_seconds)
    media_s = args.minutes * 60 if args.mode == "soak" else args.seconds
    loops = max(1, int(np.ceil(media_s / args.clip_seconds)))
    broker = LocalBroker().start() if not args.bootstrap else None
    bootstrap = args.bootstrap or broker.bootstrap
    tag = uuid.uuid4().hex[:8]
    settings = StreamSettings(
        bootstrap=bootstrap, input_topic=f"live-events-{tag}", output_topic=f"live-scores-{tag}",
        dead_letter_topic=f"live-dead-{tag}", calls_topic=f"live-calls-{tag}",
        group_id=f"live-{tag}", runtime="streaming", idle_timeout_s=5.0, isolate_runs=False,
    )  # fmt: skip
    ensure_topics(bootstrap, settings.topics)
    config = dataclasses.replace(
        command_line_defaults(),
        live=LiveConfig(allowed_hosts=("127.0.0.1",), partial_every_s=args.partial_every_s),
    )
    follower = TopicTail(bootstrap, settings.output_topic)
    stream = threading.Thread(target=run_stream, args=(StreamJob(settings, config),))
    stream.start()
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(settings.input_topic, encode_event(str(clip), video_id="warm-up")).get(10)
    follower.wait_for(lambda r: r["video_id"] == "warm-up", timeout_s=600)
    rss: list[tuple[float, float]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(args.sample_s):
            rss.append((time.time(), rss_mb(os.getpid())))

    threading.Thread(target=sample, daemon=True).start()
    www = work / f"www-{tag}"
    publishers = []
    with serve_folder(www) as base:
        for i in range(args.calls):
            pub = HlsPublisher(clip, www / f"call{i}", loops=loops, speed=args.speed)
            publishers.append(pub.__enter__())
            event = encode_live_event(f"{base}/call{i}/index.m3u8", video_id=f"call{i}")
            producer.send(settings.input_topic, event).get(10)
        for pub in publishers:
            pub.wait()
        stream.join()
    sampling.set()
    follower.stop(linger_s=0)
    producer.close()
    if broker is not None:
        broker.stop()
    return report(args, follower.rows, publishers, spans_once, media_s, rss)


def report(args, rows, publishers, spans_once, media_s, rss) -> dict:
    per_call = {}
    for i, pub in enumerate(publishers):
        spans = [(a + at, b + at) for at in pub.offsets for a, b in spans_once]
        mine = [(t, r) for t, r in rows if r["video_id"] == f"call{i}"]
        at = (spans, pub.started_at, media_s)
        any_row = latencies(mine, *at, speed=args.speed)
        final = latencies(mine, *at, speed=args.speed, final_only=True)
        per_call[f"call{i}"] = {
            "rows": len(mine),
            "partial_rows": sum(r["partial"] for _, r in mine),
            "any_row": summary(any_row),
            "final_row": summary(final),
        }
        if args.detail:  # (arrival after t = 0, start, end, partial) per row
            per_call[f"call{i}"]["timeline"] = [
                (round(t - pub.started_at, 2), r["start_s"], r["end_s"], r["partial"])
                for t, r in mine
            ]
    out = {
        "mode": args.mode,
        "calls": args.calls,
        "media_s": media_s,
        "speed": args.speed,
        "partial_every_s": args.partial_every_s,
        "cpus": os.cpu_count(),
        "per_call": per_call,
    }
    if rss:
        t0 = rss[0][0]
        settled = [(t, m) for t, m in rss if t - t0 >= args.settle_s] or rss
        hours = [(t - t0) * args.speed / 3600 for t, _ in settled]
        slope = float(np.polyfit(hours, [m for _, m in settled], 1)[0]) if len(settled) > 2 else 0
        out["rss_mb"] = {
            "first": round(rss[0][1]),
            "peak": round(max(m for _, m in rss)),
            "last": round(rss[-1][1]),
            "slope_mb_per_media_hour": round(slope, 1),
            "samples": [(round((t - t0) * args.speed), round(m)) for t, m in rss],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("mode", choices=("latency", "soak"))
    add("--calls", type=int, default=1, help="live calls at once")
    add("--seconds", type=float, default=60.0, help="latency: media seconds per call")
    add("--minutes", type=float, default=30.0, help="soak: media minutes")
    add("--speed", type=float, default=1.0, help="play out at this x real time")
    add("--clip-seconds", type=float, default=30.0)
    add("--partial-every-s", type=float, default=2.0)
    add("--sample-s", type=float, default=10.0)
    add("--settle-s", type=float, default=120.0)
    add("--bootstrap", default=None)
    add("--work", default=None, help="folder for the clip and the HLS files")
    add("--json-out", default=None)
    add("--detail", action="store_true", help="add each row's arrival time to the output")
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO.parent))
    sys.exit(main())

"""The three measurements (latency, throughput, soak) and their summary statistics."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from streambench.bench import Bench
from streambench.follower import rss_mb


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


def run_bench(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    """Warm up with one event, measure ``args.mode``, then summarise every event."""
    assert bench.proc is not None
    result: dict[str, Any] = {
        "mode": args.mode,
        "runtime": args.runtime,
        "scorer": args.scorer,
        "clip_seconds": args.clip_seconds,
        "captions": args.captions,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg()[0],
    }
    t_start = time.time()
    bench.send("warmup")
    if not bench.wait_done("warmup", args.timeout_s):
        raise RuntimeError("warm-up event not completed in time; see stream.log")
    result["warmup_s"] = round(time.time() - t_start, 2)
    time.sleep(0.5)  # the follower may still be fetching the last rows
    result["rows_per_event"] = bench.follower.rows.get("warmup", 0)
    result["rss_after_warmup_mb"] = round(rss_mb(bench.proc.pid), 1)
    measure = {"latency": latency, "throughput": throughput, "soak": soak}[args.mode]
    result.update(measure(args, bench, t_start))
    time.sleep(1.0)  # rows are written before the commit; let the follower fetch them all
    expected = result["rows_per_event"]
    result["videos_with_missing_rows"] = sorted(
        v for v in bench.offsets if bench.follower.rows.get(v, 0) < expected
    )
    if args.debug:
        print(bench.offsets, bench.follower.first, bench.follower.done_at, file=sys.stderr)
    spans = [bench.latency(v) for v in bench.offsets if v != "warmup"]
    measured = [s for s in spans if s]
    for i, key in enumerate(("first_row_s", "last_row_s", "committed_s")):
        result[key] = summary([s[i] for s in measured])
    result["rss_end_mb"] = round(rss_mb(bench.proc.pid), 1)
    result["loadavg_end"] = os.getloadavg()[0]
    return result


def latency(args: argparse.Namespace, bench: Bench, t_start: float) -> dict[str, Any]:
    """Events one at a time, ``--gap-s`` apart."""
    for i in range(args.events):
        vid = f"lat-{i}"
        bench.send(vid)
        if not bench.wait_done(vid, args.timeout_s):
            raise RuntimeError(f"{vid} not completed in {args.timeout_s}s")
        time.sleep(0.3 + args.gap_s)
    return {}


def throughput(args: argparse.Namespace, bench: Bench, t_start: float) -> dict[str, Any]:
    """``--events`` at once; video seconds scored per wall second until the last commit."""
    t0 = time.time()
    vids = [f"tp-{i}" for i in range(args.events)]
    for vid in vids:
        bench.send(vid)
    for vid in vids:
        if not bench.wait_done(vid, args.timeout_s * len(vids)):
            raise RuntimeError(f"{vid} not completed")
    elapsed = max(bench.follower.done_at[bench.offsets[v]] for v in vids) - t0
    return {
        "throughput_video_s_per_s": round(args.events * args.clip_seconds / elapsed, 2),
        "elapsed_s": round(elapsed, 2),
    }


def soak(args: argparse.Namespace, bench: Bench, t_start: float) -> dict[str, Any]:
    """Events at ``--rate`` for ``--minutes``; RSS and backlog every ``--sample-s``."""
    assert bench.proc is not None
    samples: list[dict[str, Any]] = []
    end = time.monotonic() + args.minutes * 60
    next_send = next_sample = time.monotonic()
    n = 0
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_send:
            bench.send(f"soak-{n}")
            n += 1
            next_send += 1.0 / args.rate
        if now >= next_sample:
            samples.append(
                {
                    "t": round(time.time() - t_start, 1),
                    "rss_mb": round(rss_mb(bench.proc.pid), 1),
                    "sent": n,
                    "done": bench.follower.completed() - 1,
                }
            )
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
            next_sample += args.sample_s
        if bench.proc.poll() is not None:
            raise RuntimeError("stream exited during the soak; see stream.log")
        time.sleep(0.05)
    result: dict[str, Any] = {"soak_samples": samples}
    settled = [s for s in samples if s["t"] >= args.settle_s]
    if len(settled) >= 2:
        ts = [s["t"] for s in settled]
        rs = [s["rss_mb"] for s in settled]
        slope = statistics.linear_regression(ts, rs).slope
        result["rss_slope_mb_per_hour"] = round(slope * 3600, 1)
        result["rss_first_mb"], result["rss_last_mb"] = rs[0], rs[-1]
        result["rss_max_mb"] = max(rs)
    result["events_sent"] = n
    result["events_done"] = bench.follower.completed() - 1
    return result

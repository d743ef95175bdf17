"""Streaming benchmark: latency, throughput and memory of ``sentistream stream``.

    python benchmarks/stream_latency.py latency    --runtime streaming --events 20
    python benchmarks/stream_latency.py throughput --runtime streaming --events 8
    python benchmarks/stream_latency.py soak       --runtime streaming --minutes 30 --rate 0.05

It starts a local broker (or uses ``--bootstrap``), writes a ``--clip-seconds`` talking-
head clip with synthesized speech (no captions unless ``--captions``, so the speech
branch runs ASR), starts the stream as a subprocess (``python -m
sentistream.pipelines.stream.runtime``), publishes events pointing at the clip, and follows the
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
Prints one JSON object (also written to ``--json-out``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import apache_beam as beam

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [
    "Thanks for calling, I am really happy to help you today.",
    "I have been waiting for two weeks and nothing has arrived.",
    "That is completely unacceptable and I am very angry.",
    "I understand, let me check the order status for you right now.",
    "Great, it ships tomorrow morning, thank you so much.",
    "You are welcome, have a wonderful day.",
]


# -- the fake scorer (loaded by the stream subprocess through --scorer) -----------------


class _FakeScoreFn(beam.DoFn):
    def __init__(self, cost_s: float, clip_s: float) -> None:
        self._cost_s = cost_s
        self._clip_s = clip_s

    def process(self, ref: Any) -> Any:
        from sentistream.transforms.schema import SCHEMA_VERSION, ScoreRow

        vid = ref.resolved_id
        n = max(1, int(self._clip_s // 5))
        for i in range(n):
            time.sleep(self._cost_s / n)
            yield ScoreRow(
                schema_version=SCHEMA_VERSION, video_id=vid, source_uri=ref.uri,
                segment_id=f"{vid}-{i}", channel=0, speaker="unknown", role="unknown",
                start_s=5.0 * i, end_s=5.0 * (i + 1), segmenter="window", transcript=None,
                transcript_source="none", asr_confidence=None, face_present=False,
                face_valence=None, face_confidence=None, face_expression=None,
                face_reason="fake", voice_present=False, voice_valence=None,
                voice_arousal=None, voice_confidence=None, voice_reason="fake",
                text_present=False, text_valence=None, text_confidence=None,
                text_reason="fake", fused_valence=None, fused_label="unknown",
                fused_confidence=0.0, modalities_present="", modalities_enabled="",
                policy_id="fake", policy_rule="*", face_model_id=None, voice_model_id=None,
                text_model_id=None, fusion_model_id="fake", detail_json="{}",
                metadata_json="{}", event_time=ref.event_time, processed_at=time.time(),
            )  # fmt: skip


def FakeScore(config: Any) -> beam.PTransform:  # noqa: N802 - a transform factory
    cost = float(os.environ.get("BENCH_FAKE_COST_S", "0.2"))
    clip_s = float(os.environ.get("BENCH_CLIP_S", "30"))
    return beam.ParDo(_FakeScoreFn(cost, clip_s))


# -- media -----------------------------------------------------------------------------


def make_clip(folder: Path, seconds: float, captions: bool) -> Path:
    """A talking-head clip of ``seconds`` with the call sentences spoken through it."""
    import numpy as np
    from skimage import data as skdata

    from sentistream.transforms.media.captions import Cue
    from sentistream.pipelines.demo.synth import (
        talking_head_frames,
        trim_silence,
        tts,
        write_media,
        write_vtt,
    )

    path = folder / f"call-{int(seconds)}s{'-cc' if captions else ''}.mp4"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rate = 16000
    track = np.zeros(int(seconds * rate), np.float32)
    cues, cursor, i = [], 0.5, 0
    while cursor < seconds - 1.0:
        text = SENTENCES[i % len(SENTENCES)]
        speech, sr = tts(text)
        speech = trim_silence(speech)
        if sr != rate:
            idx = np.linspace(0, speech.size - 1, int(speech.size * rate / sr))
            speech = np.interp(idx, np.arange(speech.size), speech).astype(np.float32)
        a = int(cursor * rate)
        piece = speech[: track.size - a]
        track[a : a + piece.size] = piece
        cues.append(Cue(round(cursor, 3), round(cursor + piece.size / rate, 3), text))
        cursor += piece.size / rate + 0.8
        i += 1
    fps = 25.0
    frames = talking_head_frames(skdata.astronaut(), int(seconds * fps), fps=fps)
    tmp = path.with_suffix(".tmp.mp4")
    write_media(tmp, frames=frames, fps=fps, audio=track, sample_rate=rate)
    if captions:
        write_vtt(path.with_suffix(".vtt"), cues)
    tmp.replace(path)
    return path


# -- following the output ---------------------------------------------------------------


class Follower(threading.Thread):
    """Records when each video's rows arrive on the output topic, and when its event's
    offset is committed (= every row of it written)."""

    def __init__(self, bootstrap: str, topic: str, events_topic: str, group: str) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.done_at: dict[int, float] = {}  # event offset -> when its commit was seen
        self._halt = threading.Event()
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        self._consumer.assign([tp])
        self._consumer.seek(tp, 0)
        self._committed = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        self._events_tp = TopicPartition(events_topic, 0)
        self._last_check = 0.0
        self._seen_commit = 0

    def run(self) -> None:
        while not self._halt.is_set():
            for records in self._consumer.poll(timeout_ms=20).values():
                now = time.time()
                for r in records:
                    vid = json.loads(r.value)["video_id"]
                    self.first.setdefault(vid, now)
                    self.last[vid] = now
                    self.rows[vid] = self.rows.get(vid, 0) + 1
            if time.monotonic() - self._last_check > 0.05:
                self._last_check = time.monotonic()
                committed = self._committed.committed(self._events_tp) or 0
                now = time.time()
                for off in range(self._seen_commit, committed):
                    self.done_at[off] = now
                self._seen_commit = max(self._seen_commit, committed)

    def completed(self) -> int:
        return self._seen_commit

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self._consumer.close(autocommit=False)
        self._committed.close(autocommit=False)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
    return total / 1024.0


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


# -- the run ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, bootstrap: str, workdir: Path) -> None:
        from kafka import KafkaProducer

        from sentistream.pipelines.broker import ensure_topics

        tag = uuid.uuid4().hex[:8]
        self.args = args
        self.bootstrap = bootstrap
        self.events, self.scores, self.dead = f"b-ev-{tag}", f"b-sc-{tag}", f"b-dl-{tag}"
        self.group = f"b-g-{tag}"
        ensure_topics(bootstrap, [self.events, self.scores, self.dead])
        self.clip = make_clip(Path(args.media_dir), args.clip_seconds, args.captions)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        self.sent_at: dict[str, float] = {}
        self.offsets: dict[str, int] = {}
        self.follower = Follower(bootstrap, self.scores, self.events, self.group)
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start_stream(self) -> None:
        a = self.args
        cmd = [
            sys.executable, "-m", "sentistream.pipelines.stream.runtime",
            "--bootstrap", self.bootstrap, "--input-topic", self.events,
            "--output-topic", self.scores, "--dead-letter-topic", self.dead,
            "--group-id", self.group, "--output", str(self.workdir / "out"),
            "--runtime", a.runtime, "--batch-events", str(a.batch_events),
            "--threads", str(a.threads),
        ]  # fmt: skip
        if a.scorer == "fake":
            cmd += ["--scorer", f"{Path(__file__).resolve()}:FakeScore"]
        cmd += a.stream_args
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(a.threads),
            BENCH_FAKE_COST_S=str(a.fake_cost_s),
            BENCH_CLIP_S=str(a.clip_seconds),
            SENTISTREAM_LOG=os.environ.get("SENTISTREAM_LOG", "INFO"),
        )
        log = open(self.workdir / "stream.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.follower.start()

    def send(self, video_id: str) -> None:
        from sentistream.transforms.io.events import encode_event

        self.sent_at[video_id] = time.time()
        md = self.producer.send(
            self.events, value=encode_event(str(self.clip), video_id=video_id)
        ).get(timeout=10)
        self.offsets[video_id] = md.offset

    def wait_done(self, video_id: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.follower.completed() > self.offsets[video_id]:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"stream exited with {self.proc.returncode}; see stream.log")
            time.sleep(0.02)
        return False

    def latency(self, video_id: str) -> tuple[float, float, float] | None:
        off = self.offsets[video_id]
        if video_id not in self.first or off not in self.follower.done_at:
            return None
        t0 = self.sent_at[video_id]
        return (
            self.first[video_id] - t0,
            self.follower.last[video_id] - t0,
            self.follower.done_at[off] - t0,
        )

    @property
    def first(self) -> dict[str, float]:
        return self.follower.first

    def stop(self) -> int | None:
        try:
            if self.proc is None:
                return None
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=30)
            return self.proc.returncode
        finally:
            self.follower.stop()
            self.producer.close(timeout=5)


def run_bench(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    assert bench.proc is not None
    result: dict[str, Any] = {
        "mode": args.mode, "runtime": args.runtime, "scorer": args.scorer,
        "clip_seconds": args.clip_seconds, "captions": args.captions, "threads": args.threads,
        "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0],
    }  # fmt: skip
    t_start = time.time()
    bench.send("warmup")
    if not bench.wait_done("warmup", args.timeout_s):
        raise RuntimeError("warm-up event not completed in time; see stream.log")
    result["warmup_s"] = round(time.time() - t_start, 2)
    time.sleep(0.5)  # the follower may still be fetching the last rows
    result["rows_per_event"] = bench.follower.rows.get("warmup", 0)
    result["rss_after_warmup_mb"] = round(rss_mb(bench.proc.pid), 1)
    firsts, lasts, dones = [], [], []
    if args.mode == "latency":
        for i in range(args.events):
            vid = f"lat-{i}"
            bench.send(vid)
            if not bench.wait_done(vid, args.timeout_s):
                raise RuntimeError(f"{vid} not completed in {args.timeout_s}s")
            time.sleep(0.3)
            lat = bench.latency(vid)
            if lat:
                firsts.append(lat[0])
                lasts.append(lat[1])
                dones.append(lat[2])
            time.sleep(args.gap_s)
    elif args.mode == "throughput":
        t0 = time.time()
        vids = [f"tp-{i}" for i in range(args.events)]
        for vid in vids:
            bench.send(vid)
        for vid in vids:
            if not bench.wait_done(vid, args.timeout_s * len(vids)):
                raise RuntimeError(f"{vid} not completed")
        elapsed = max(bench.follower.done_at[bench.offsets[v]] for v in vids) - t0
        result["throughput_video_s_per_s"] = round(args.events * args.clip_seconds / elapsed, 2)
        result["elapsed_s"] = round(elapsed, 2)
        for vid in vids:
            lat = bench.latency(vid)
            if lat:
                firsts.append(lat[0])
                lasts.append(lat[1])
                dones.append(lat[2])
    else:  # soak
        samples = []
        end = time.monotonic() + args.minutes * 60
        next_send = time.monotonic()
        next_sample = time.monotonic()
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
        result["soak_samples"] = samples
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
        for i in range(n):
            lat = bench.latency(f"soak-{i}")
            if lat:
                firsts.append(lat[0])
                lasts.append(lat[1])
                dones.append(lat[2])
    time.sleep(1.0)  # rows are written before the commit; let the follower fetch them all
    expected = result["rows_per_event"]
    result["videos_with_missing_rows"] = sorted(
        v for v in bench.offsets if bench.follower.rows.get(v, 0) < expected
    )
    if args.debug:
        print(bench.offsets, bench.follower.first, bench.follower.done_at, file=sys.stderr)
    if args.mode != "latency":  # recompute now that every row has been fetched
        firsts, lasts, dones = [], [], []
        for vid in bench.offsets:
            lat = bench.latency(vid) if vid != "warmup" else None
            if lat:
                firsts.append(lat[0])
                lasts.append(lat[1])
                dones.append(lat[2])
    result["first_row_s"] = summary(firsts)
    result["last_row_s"] = summary(lasts)
    result["committed_s"] = summary(dones)
    result["rss_end_mb"] = round(rss_mb(bench.proc.pid), 1)
    result["loadavg_end"] = os.getloadavg()[0]
    return result


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

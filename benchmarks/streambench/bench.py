"""The stream under test: its topics, the clip its events point at, the ``python -m
sentistream.pipelines.stream`` subprocess, and a producer of events."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from streambench.follower import Follower

FAKE_SCORER = Path(__file__).resolve().parent / "fake_scorer.py"
SENTENCES = (
    "Thanks for calling, I am really happy to help you today.",
    "I have been waiting for two weeks and nothing has arrived.",
    "That is completely unacceptable and I am very angry.",
    "I understand, let me check the order status for you right now.",
    "Great, it ships tomorrow morning, thank you so much.",
    "You are welcome, have a wonderful day.",
)


def make_clip(folder: Path, seconds: float, captions: bool) -> Path:
    """A talking-head clip of ``seconds`` with the call sentences spoken through it
    (cached in ``folder``; written aside first, so a cached clip is always whole)."""
    from sentistream.pipelines.demo.clips import spoken_clip

    path = folder / f"call-{int(seconds)}s{'-cc' if captions else ''}.mp4"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        made = spoken_clip(
            Path(tmp) / path.name,
            SENTENCES,
            duration_s=seconds,
            gap_s=0.8,
            repeat=True,
            captions=captions,
        )
        if captions:
            shutil.move(made.with_suffix(".vtt"), path.with_suffix(".vtt"))
        made.replace(path)
    return path


class Bench:
    """Topics of its own on ``bootstrap``, the clip, the follower; ``start_stream`` starts
    the stream process, ``send`` publishes an event, ``wait_done`` waits for its commit."""

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

    def stream_command(self) -> list[str]:
        a = self.args
        cmd = [sys.executable, "-m", "sentistream.pipelines.stream"]
        cmd += ["--bootstrap", self.bootstrap, "--input-topic", self.events]
        cmd += ["--output-topic", self.scores, "--dead-letter-topic", self.dead]
        cmd += ["--group-id", self.group, "--output", str(self.workdir / "out")]
        cmd += ["--runtime", a.runtime, "--batch-events", str(a.batch_events)]
        cmd += ["--threads", str(a.threads)]
        if a.scorer == "fake":
            cmd += ["--scorer", f"{FAKE_SCORER}:FakeScore"]
        return cmd + a.stream_args

    def start_stream(self) -> None:
        a = self.args
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(a.threads),
            BENCH_FAKE_COST_S=str(a.fake_cost_s),
            BENCH_CLIP_S=str(a.clip_seconds),
            SENTISTREAM_LOG=os.environ.get("SENTISTREAM_LOG", "INFO"),
        )
        log = open(self.workdir / "stream.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            self.stream_command(),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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
        """Seconds from publish to the first row, the last row, and the commit."""
        off = self.offsets[video_id]
        f = self.follower
        if video_id not in f.first or off not in f.done_at:
            return None
        t0 = self.sent_at[video_id]
        return (f.first[video_id] - t0, f.last[video_id] - t0, f.done_at[off] - t0)

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

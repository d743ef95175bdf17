"""Time-boxed mutation fuzzing of small media files through the decoder.

    python benchmarks/fuzz_media.py --minutes 10 [--json report.json]

Seeds: small mp4 / mkv / webm / mov / flv / wav / mp3 files written by the demo's
encoder. Each case mutates one seed (bit flips, random bytes, a zeroed or duplicated
block, truncation, a splice of two seeds) and decodes it with ``iter_chunks`` (all
streams, frames at 2 fps) in a worker process with a per-case timeout, restarted after a
crash. Outcomes: ``ok`` (decoded), ``refused`` (``MediaDecodeError`` / ``ValueError`` /
``FileNotFoundError``: the clean error a dead letter carries), ``error`` (any other
exception: a finding), ``crash`` (the worker died: a finding), ``hang`` (over the
timeout: a finding). Findings are saved under ``--out`` for replay.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
import traceback
from pathlib import Path

import numpy as np

SEED_EXTS = ("mp4", "mkv", "webm", "mov", "flv", "wav", "mp3")


def write_seeds(folder: Path) -> list[Path]:
    from sentistream.pipelines.demo import synth

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(16_000) / 16_000
    audio = np.stack([np.sin(2 * np.pi * 330 * t), np.sin(2 * np.pi * 550 * t)]) * 0.3
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12)]
    seeds = []
    for ext in SEED_EXTS:
        video = frames if ext not in ("wav", "mp3") else None
        path = folder / f"seed.{ext}"
        synth.write_media(path, frames=video, fps=12, audio=audio.astype(np.float32))
        seeds.append(path)
    return seeds


def mutate(data: bytes, other: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    kind = rng.integers(6)
    if kind == 0:  # bit flips
        for pos in rng.integers(0, len(buf), size=rng.integers(1, 32)):
            buf[pos] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # random bytes over a block
        a = int(rng.integers(len(buf)))
        n = int(rng.integers(1, 256))
        buf[a : a + n] = rng.bytes(n)
    elif kind == 2:  # zero a block
        a = int(rng.integers(len(buf)))
        buf[a : a + int(rng.integers(1, 4096))] = b"\0" * min(4096, len(buf) - a)
    elif kind == 3:  # duplicate a block
        a = int(rng.integers(len(buf)))
        block = buf[a : a + int(rng.integers(1, 4096))]
        buf[a:a] = block * int(rng.integers(1, 8))
    elif kind == 4:  # truncate
        buf = buf[: int(rng.integers(1, len(buf)))]
    else:  # splice the head of one seed onto the tail of another
        cut = int(rng.integers(len(buf)))
        buf = buf[:cut] + bytearray(other[int(rng.integers(len(other))) :])
    return bytes(buf)


def _worker(conn) -> None:
    from sentistream.transforms.config import DecodeConfig
    from sentistream.transforms.media.decoding import MediaDecodeError, iter_chunks

    cfg = DecodeConfig(fps=2.0, max_decode_s=10)  # the watchdog ends slow cases first
    while True:
        path = conn.recv()
        try:
            for _ in iter_chunks(path, cfg):
                pass
            conn.send(("ok", ""))
        except (MediaDecodeError, ValueError, FileNotFoundError) as exc:
            conn.send(("refused", type(exc).__name__))
        except Exception as exc:  # noqa: BLE001 - a finding
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-800:]}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cases", type=int, help="stop after this many cases (deterministic)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--out", type=Path, default=Path("/tmp/sentistream-fuzz"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    seeds = write_seeds(args.out / "seeds")
    datas = [p.read_bytes() for p in seeds]
    rng = np.random.default_rng(args.seed)
    ctx = mp.get_context("spawn")
    counts = {k: 0 for k in ("ok", "refused", "error", "crash", "hang")}
    findings: list[dict] = []
    parent = worker = None
    end = time.monotonic() + args.minutes * 60
    case = args.out / "case.bin"
    n = 0
    while time.monotonic() < end and (args.cases is None or n < args.cases):
        if worker is None or not worker.is_alive():
            parent, child = ctx.Pipe()
            worker = ctx.Process(target=_worker, args=(child,), daemon=True)
            worker.start()
        i, j = rng.integers(len(seeds), size=2)
        data = mutate(datas[i], datas[j], rng)
        path = case.with_suffix(seeds[i].suffix)
        path.write_bytes(data)
        parent.send(str(path))
        n += 1
        if parent.poll(args.timeout):
            try:
                outcome, detail = parent.recv()
            except EOFError:
                outcome, detail = "crash", f"exit code {worker.exitcode}"
        else:
            outcome = "hang" if worker.is_alive() else "crash"
            detail = f"exit code {worker.exitcode}" if outcome == "crash" else ""
            worker.kill()
            worker.join()
            worker = None
        if outcome == "crash" and worker is not None:
            worker.join(timeout=5)
            detail = f"exit code {worker.exitcode}"
            worker = None
        counts[outcome] += 1
        if outcome in ("error", "crash", "hang"):
            keep = args.out / f"finding-{n:06d}{seeds[i].suffix}"
            keep.write_bytes(data)
            findings.append({"case": n, "seed": seeds[i].name, "outcome": outcome,
                             "detail": detail[:1000], "file": str(keep)})  # fmt: skip
    if worker is not None:
        worker.kill()
    report = {"minutes": args.minutes, "cases": n, **counts, "findings": findings}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if not findings else 1


if __name__ == "__main__":
    sys.exit(main())

"""A generated corpus of bad, odd and hostile inputs, and the batch job run over all of it.

    python benchmarks/bad_inputs.py [--out /tmp/bad-inputs] [--json report.json]

Builds one folder of media (globbed) and one manifest with bad lines, runs
``sentistream run`` on both together (one real batch job, the default models), and
accounts for every input: each must end as score rows or as a dead letter with its reason;
none lost, none crashing the run, none hanging it. Prints the kinds tried, rows / dead
letters / lost / crashed, wall time and the job's peak memory. ``tests/pipelines/
test_reliability.py`` runs the same corpus and asserts the invariant.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import os
import resource
import subprocess
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Corpus:
    """What was generated: ``media`` folder (globbed as ``media/*``), the ``manifest``
    and, per input, its kind and what may become of it (``rows``, ``dead``, ``either``)."""

    root: Path
    media: Path
    manifest: Path
    globbed: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (kind, want)
    lines: dict[int, tuple[str, str]] = field(default_factory=dict)  # line -> (kind, want)
    unprivileged: bool = False  # the job ran as an ordinary user (permission errors real)

    @property
    def kinds(self) -> int:
        return len(self.globbed) + len(self.lines)


def _wav(path: Path, data: np.ndarray, rate: int = 16_000, width: int = 2) -> Path:
    """(samples, channels) float in [-1, 1] as PCM."""
    arr = np.atleast_2d(data.T).T if data.ndim == 1 else data
    with wave.open(str(path), "wb") as w:
        w.setnchannels(arr.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes((np.clip(arr, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def _good_clip(path: Path, seconds: float = 2.0, size: tuple[int, int] = (160, 96)) -> Path:
    from sentistream.pipelines.demo import synth

    t = np.arange(round(seconds * 16_000)) / 16_000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    frames = synth.no_face_frames(round(seconds * 25), size=size)
    return synth.write_media(path, frames=frames, fps=25, audio=audio)


def build_corpus(root: Path) -> Corpus:
    """Write the corpus under ``root`` (a fresh folder)."""
    media = root / "media"
    media.mkdir(parents=True)
    outside = root / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("API_KEY=do-not-leak-this-value\n")
    corpus = Corpus(root, media, root / "manifest.jsonl")
    g = corpus.globbed
    rng = np.random.default_rng(0)

    def add(name: str | bytes, kind: str, want: str) -> Path:
        path = Path(os.fsdecode(os.path.join(os.fsencode(media), os.fsencode(name))))
        g[str(path)] = (kind, want)
        return path

    good = _good_clip(add("good.mp4", "good clip (control)", "rows"))
    data = good.read_bytes()
    add("empty.mp4", "0-byte file", "dead").write_bytes(b"")
    add("truncated.mp4", "mp4 cut in half", "either").write_bytes(data[: len(data) // 2])
    add("random.mp4", "random bytes", "dead").write_bytes(rng.bytes(50_000))
    add("notes.mp4", "text named .mp4", "dead").write_text("meeting notes\n" * 200)
    _wav(add("header-only.wav", "wav header, no samples", "dead"), np.zeros((0, 1)))
    _wav(add("silence.wav", "digital silence", "either"), np.zeros(32_000))
    _wav(add("noise.wav", "white noise", "either"), rng.normal(0, 0.3, 32_000))
    for ch in (3, 8, 12):
        _wav(add(f"ch{ch}.wav", f"{ch}-channel audio", "either"), rng.normal(0, 0.1, (16_000, ch)))
    _wav(add("clipped.wav", "full-scale square wave", "either"), np.sign(rng.normal(size=32_000)))
    _wav(add("rate8k.wav", "8 kHz audio", "either"), rng.normal(0, 0.1, 16_000), rate=8000)
    from sentistream.pipelines.demo import synth

    synth.write_media(
        add("video-only.mp4", "video without audio", "either"),
        frames=synth.no_face_frames(25, size=(64, 48)),
        fps=25,
    )
    synth.write_media(
        add("tall.mp4", "frame over the pixel limit (4160x4096)", "dead"),
        frames=[np.zeros((4096, 4160, 3), np.uint8)],
        fps=1,
    )
    mp3 = add("tone.mp3", "mp3 audio", "either")
    synth.write_media(mp3, frames=None, audio=rng.normal(0, 0.1, 16_000).astype(np.float32))
    add("folder.mp4", "directory named .mp4", "dead").mkdir()
    os.symlink(media / "missing.mp4", add("dangling.mp4", "dangling symlink", "dead"))
    os.symlink(media / "loop.mp4", add("loop.mp4", "symlink loop", "dead"))
    os.mkfifo(add("fifo.mp4", "FIFO named .mp4 (would block a reader)", "dead"))
    add(b"bad-\xff\xfe-name.mp4", "file name not valid UTF-8", "rows").write_bytes(data)
    add("ünïcødé 名前 🎥.mp4", "unicode file name", "rows").write_bytes(data)
    add("spaces 'and' \"quotes\".mp4", "spaces and quotes in the name", "rows").write_bytes(data)
    (outside / "seg.ts").write_bytes(data)
    add("evil.m3u8", "HLS playlist reading outside its folder", "dead").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n../outside/seg.ts\n#EXT-X-ENDLIST\n"
    )
    add("evil-playlist.mp4", "playlist named .mp4", "dead").write_text(
        "#EXTM3U\n#EXTINF:2,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n"
    )
    add("list.ffconcat", "ffconcat list of an outside file", "dead").write_text(
        f"ffconcat version 1.0\nfile '{outside / 'seg.ts'}'\n"
    )
    add("subs.srt.mkv", "subtitle text named .mkv", "dead").write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nhi\n"
    )
    with open(add("sparse.mp4", "9 GiB sparse file (over max_bytes)", "dead"), "wb") as f:
        f.truncate(9 << 30)
    # Permission errors: refused for a job that runs as an ordinary user (--as-user);
    # root reads them anyway, so for root either fate is right.
    locked = add("mode000.mp4", "file without read permission", "dead-unprivileged")
    locked.write_bytes(data)
    locked.chmod(0)
    shut = media / "shut"
    shut.mkdir()
    (shut / "inside.mp4").write_bytes(data)
    shut.chmod(0)
    # (globbed as shut/*.mp4: an ordinary user cannot list it, so the glob is the input)
    g[str(shut / "*.mp4")] = ("folder without permission", "dead-unprivileged")
    # Good media with bad sidecars: the media is scored (VAD), the caption is a dead letter.
    for name, body, kind in (
        ("garbage-vtt", rng.bytes(3000), "binary garbage captions"),
        (
            "latin1-vtt",
            "WEBVTT\n\n00:00.000 --> 00:01.000\ncaf\xe9\n".encode("latin-1"),
            "captions not UTF-8",
        ),
        ("badtime-vtt", b"WEBVTT\n\n00:00.000 --> 00:0x.000\nhello\n", "malformed cue timing"),
        (
            "manycues-vtt",
            (
                "WEBVTT\n\n"
                + "".join(
                    f"00:00:{i // 1000:02d}.{i % 1000:03d} --> "
                    f"00:00:{i // 1000:02d}.{i % 1000:03d}\nx\n\n"
                    for i in range(25_000)
                )
            ).encode(),
            "25,000 cues (over the cue limit)",
        ),
    ):
        clip = add(f"{name}.mp4", f"good media, {kind}", "rows")
        clip.write_bytes(data)
        (media / f"{name}.vtt").write_bytes(body)
    (media / "dupcue.vtt").write_text(
        "WEBVTT\n\n00:00.000 --> 00:01.000\nfirst\n\n00:00.000 --> 00:01.000\nsecond\n"
    )
    add("dupcue.mp4", "two cues with the same timing", "rows").write_bytes(data)
    # The manifest: good lines and bad ones, each accounted for by its line number.
    copy = root / "good-copy.mp4"
    copy.write_bytes(data)
    lines = [
        ({"uri": str(good), "video_id": "m-good"}, "manifest: good line", "rows"),
        ({"uri": 5}, "manifest: uri a number", "dead"),
        ({"uri": None}, "manifest: uri null", "dead"),
        ({"uri": str(good), "video_id": {"a": 1}}, "manifest: video_id an object", "dead"),
        (
            {"uri": str(good), "video_id": "m-roles", "channel_roles": "agent,customer"},
            "manifest: channel_roles a string",
            "dead",
        ),
        (
            {"uri": str(good), "video_id": "m-ints", "channel_roles": [1, 2]},
            "manifest: channel_roles ints",
            "dead",
        ),
        (
            {"uri": str(root / "nope.mp4"), "video_id": "m-missing"},
            "manifest: missing file",
            "dead",
        ),
        ({"uri": str(media / "folder.mp4"), "video_id": "m-dir"}, "manifest: a directory", "dead"),
        ({"uri": str(copy), "video_id": "m-good"}, "manifest: video_id used twice", "dead"),
        (
            {"uri": str(good), "video_id": "m-cap", "caption_uri": str(secret)},
            "manifest: caption_uri at a secrets file",
            "rows",
        ),
        (
            {
                "uri": str(good),
                "video_id": "m-meta",
                "metadata": {f"k{i}": "v" * 1000 for i in range(900)},
            },
            "manifest: 900 KB of metadata",
            "rows",
        ),
        ({"uri": str(good), "video_id": "m-int-id"}, "manifest: good line 2", "rows"),
        (
            {"uri": "s3://bucket/key.mp4", "video_id": "m-s3"},
            "manifest: s3 without its extra",
            "dead",
        ),
        (
            {"uri": str(good), "video_id": "m-sur\udcff"},
            "manifest: lone surrogate in video_id",
            "either",
        ),
    ]
    raw = [json.dumps(obj, ensure_ascii=True) for obj, _, _ in lines]
    extra = [
        ("[" * 100_000, "manifest: 100 KB of nested brackets"),
        ("not json at all", "manifest: not JSON"),
        ('{"uri": "/a.mp4"', "manifest: truncated JSON"),
        ("[1, 2, 3]", "manifest: JSON array"),
    ]
    body = b"\n".join(r.encode() for r in raw + [e for e, _ in extra])
    body += b"\n" + b'{"uri": "/\xff\xfe.mp4"}' + b"\n"
    corpus.manifest.write_bytes(body)
    for n, (_, kind, want) in enumerate(lines, 1):
        corpus.lines[n] = (kind, want)
    for k, (_, kind) in enumerate(extra, len(lines) + 1):
        corpus.lines[k] = (kind, "dead")
    corpus.lines[len(lines) + len(extra) + 1] = ("manifest: line not UTF-8", "dead")
    return corpus


def run_job(corpus: Corpus, out: Path, timeout_s: float = 1200, user: str | None = None) -> dict:
    """``sentistream run`` over the corpus in a child process (as ``user`` via ``runuser``
    when given: permission errors are real only for an ordinary user); its exit code,
    time, peak memory and output."""
    cmd = [
        sys.executable, "-m", "sentistream.pipelines.cli", "run",
        "--input", str(corpus.media / "*"), "--input", str(corpus.media / "shut" / "*.mp4"),
        "--manifest", str(corpus.manifest), "--output", str(out),
    ]  # fmt: skip
    env = dict(os.environ)
    if user:
        home = corpus.root / "home"
        home.mkdir(exist_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        for folder in (home, out):
            folder.chmod(0o777)
        cmd = ["runuser", "-u", user, "--", *cmd]
        env["HOME"] = str(home)
    corpus.unprivileged = bool(user)
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "returncode": proc.returncode,
        "wall_s": round(time.monotonic() - start, 1),
        "peak_rss_mb": round(peak_kb / 1024),
        "stderr_tail": proc.stderr[-3000:],
    }


def _line(corpus: Corpus, n: int) -> dict:
    """Manifest line ``n`` as a dict, or {} when it is not a JSON object."""
    try:
        obj = json.loads(corpus.manifest.read_bytes().split(b"\n")[n - 1])
    except (ValueError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


def account(corpus: Corpus, out: Path) -> dict:
    """Every input's fate: rows, dead letters, or lost; a summary and the problems."""
    import pyarrow.parquet as pq

    from sentistream.transforms.schema import safe_text

    def read(sub: str) -> list[dict]:
        files = sorted((out / sub).rglob("*.parquet"))
        return [r for f in files for r in pq.read_table(f).to_pylist()]

    rows, dead = read("scores"), read("dead_letters")
    row_uris = {r["source_uri"] for r in rows}
    row_ids = {r["video_id"] for r in rows}
    dead_uris = {d["source_uri"] for d in dead}
    dead_ids = {d["video_id"] for d in dead}
    problems, fates = [], {}
    for path, (kind, want) in corpus.globbed.items():
        if want == "dead-unprivileged":
            want = "dead" if corpus.unprivileged else "either"
        uri = safe_text(path)
        if glob.has_magic(path):  # a glob input: what it expanded to, or its dead letter
            hits = {u for u in row_uris | dead_uris if fnmatch.fnmatch(u, uri)} | {uri}
            fate = "rows" if hits & row_uris else "dead" if hits & dead_uris else "lost"
        else:
            fate = "rows" if uri in row_uris else "dead" if uri in dead_uris else "lost"
        fates[kind] = fate
        if fate == "lost" or (want != "either" and fate != want):
            problems.append(f"{kind} ({path!r}): {fate}, expected {want}")
    manifest = str(corpus.manifest)
    parsed = {n: _line(corpus, n) for n in corpus.lines}
    vids = [v.get("video_id") for v in parsed.values()]
    for n, (kind, want) in corpus.lines.items():
        named = any(d["error"].startswith(f"{manifest}:{n}:") for d in dead)
        vid, uri = parsed[n].get("video_id"), parsed[n].get("uri")
        fate = "lost"
        if named:
            fate = "dead"
        elif isinstance(vid, str) and vids.count(vid) == 1:
            vid = safe_text(vid)
            fate = "rows" if vid in row_ids else "dead" if vid in dead_ids else "lost"
        elif isinstance(uri, str):
            uri = safe_text(uri)
            fate = "rows" if uri in row_uris else "dead" if uri in dead_uris else "lost"
        fates[kind] = fate
        if fate == "lost" or (want != "either" and fate != want):
            problems.append(f"{kind} (line {n}): {fate}, expected {want}")
    leaks = [d["error"] for d in dead if "do-not-leak" in (d["error"] + (d["payload"] or ""))]
    problems += [f"secret content in a dead letter: {e[:120]}" for e in leaks]
    ids = [r["segment_id"] for r in rows]
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} duplicate segment_id(s)")
    counts = {f: sum(v == f for v in fates.values()) for f in ("rows", "dead", "lost")}
    return {"kinds": corpus.kinds, **counts, "score_rows": len(rows),
            "dead_letters": len(dead), "fates": fates, "problems": problems}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/sentistream-bad-inputs"))
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--as-user", help="run the job as this user (e.g. nobody; needs root)")
    args = parser.parse_args(argv)
    if args.out.exists():
        subprocess.run(["rm", "-rf", str(args.out)], check=True)
    corpus = build_corpus(args.out / "corpus")
    job = run_job(corpus, args.out / "run", user=args.as_user)
    report = {**account(corpus, args.out / "run"), **job, "crashed": int(job["returncode"] != 0)}
    text = json.dumps({k: v for k, v in report.items() if k != "stderr_tail"}, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if not report["problems"] and not report["crashed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""How fast the dashboard answers on a large output: 10,000 recordings by default.

    python benchmarks/dashboard_speed.py                      # 10,000 recordings
    python benchmarks/dashboard_speed.py --recordings 2000 --json dash.json
    python benchmarks/dashboard_speed.py --recordings 40 --screenshots docs/img

Generates an output root (``write_synthetic_output``): stereo calls of 2-12 minutes over
30 days, agent and customer segments every few seconds with random scores, reasons and
transcripts, their call rows made by the pipeline's own ``transforms/calls.summarize``,
written with the pipeline's schemas into the batch layout (one file per day and kind).
Then, per view, the time from asking the page in headless Chromium until its numbers are
drawn (the overview's KPIs, the filtered call list, one call's summary and timeline),
and the DuckDB time of the queries behind it. Needs the Debian ``chromium`` and
``chromium-driver`` packages for the browser figures (``--no-browser``: queries only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sentistream.pipelines.dashboard.queries import CallFilter, OutputStore
from sentistream.pipelines.resume import scored_video_ids
from sentistream.transforms.calls import summarize
from sentistream.transforms.fusion import label_for
from sentistream.transforms.io.parquet_stream import KINDS, partition_dir
from sentistream.transforms.records import RecordingEnd, VideoRef, make_segment_id
from sentistream.transforms.schema import (
    SCHEMA_VERSION,
    CallRow,
    DeadLetterRow,
    ScoreRow,
    to_dict,
)

WORDS = "thanks calling help waiting weeks nobody sorry look great appreciate bill refund"
WORDS = WORDS.split()
REASONS = {
    "face": ("no_face", "disabled_by_policy"),
    "voice": ("silence", "too_short"),
    "text": ("no_transcript",),
}
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()


def _segment(
    rng: random.Random, video: str, ch: int, role: str, start: float, end: float, day_t: float
) -> ScoreRow:
    values: dict[str, float | None] = {}
    present: dict[str, bool] = {}
    for m in ("face", "voice", "text"):
        present[m] = not (role == "agent" and m != "text") and rng.random() > 0.15
        values[m] = round(rng.uniform(-1, 1), 3) if present[m] else None
    scored = [v for v in values.values() if v is not None]
    fused = round(sum(scored) / len(scored), 4) if scored else None
    words = (
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) if present["text"] else None
    )
    return ScoreRow(
        schema_version=SCHEMA_VERSION,
        video_id=video,
        source_uri=f"s3://calls/{video}.mp4",
        segment_id=make_segment_id(video, ch, start, "seg-v3"),
        channel=ch,
        speaker=role,
        role=role,
        start_s=round(start, 3),
        end_s=round(end, 3),
        segmenter="vad",
        partial=False,
        speech_level_dbfs=round(rng.uniform(-35, -15), 2),
        transcript=words,
        transcript_source="asr" if words else "none",
        asr_confidence=0.9 if words else None,
        face_present=present["face"],
        face_valence=values["face"],
        face_confidence=0.8 if present["face"] else None,
        face_expression=None,
        face_id="face_0" if present["face"] else None,
        face_reason=None
        if present["face"]
        else ("disabled_by_policy" if role == "agent" else "no_face"),
        voice_present=present["voice"],
        voice_valence=values["voice"],
        voice_arousal=None,
        voice_confidence=0.6 if present["voice"] else None,
        voice_reason=None
        if present["voice"]
        else ("disabled_by_policy" if role == "agent" else "silence"),
        text_present=present["text"],
        text_valence=values["text"],
        text_confidence=0.7 if present["text"] else None,
        text_reason=None if present["text"] else "no_transcript",
        fused_valence=fused,
        fused_label=label_for(fused, 0.2),
        fused_confidence=0.5 if scored else 0.0,
        modalities_present=",".join(m for m in present if present[m]),
        modalities_enabled="text" if role == "agent" else "face,voice,text",
        policy_id="eu-workplace",
        policy_rule=f"role:{role}",
        face_model_id=None if role == "agent" else "face-fer2013-minixception-ft@2+644b13ed",
        voice_model_id=None if role == "agent" else "voice-whisper-tiny-v3@3+70461b34",
        text_model_id="text-minilm-ft@1",
        fusion_model_id="fusion-fixed-confweighted@2",
        detail_json="{}",
        metadata_json="{}",
        event_time=None,
        processed_at=day_t + start,
    )


def synthetic_recording(
    rng: random.Random, index: int, day_t: float
) -> tuple[list[ScoreRow], list[CallRow]]:
    """One generated stereo call: its segment rows and, by ``summarize``, its call rows."""
    video = f"call-{index:06d}"
    duration = rng.uniform(120, 720)
    rows: list[ScoreRow] = []
    for ch, role in enumerate(("agent", "customer")):
        t = rng.uniform(0, 3)
        while t < duration - 1:
            length = min(rng.uniform(1.5, 12), duration - t)
            rows.append(_segment(rng, video, ch, role, t, t + length, day_t))
            t += length + rng.uniform(0.3, 9)
    end = RecordingEnd(
        VideoRef(uri=f"s3://calls/{video}.mp4", video_id=video), round(duration, 3), len(rows), 2
    )
    return rows, summarize(rows, end, neutral_band=0.2, processed_at=day_t + duration)


def write_synthetic_output(
    root: Path,
    recordings: int,
    seed: int = 0,
    days: int = 30,
    first_id: int = 0,
    name: str = "run-synthetic",
) -> dict:
    """Write ``recordings`` generated calls (ids from ``first_id``) into ``root``, one file
    ``<name>.parquet`` per day and kind."""
    rng = random.Random(seed)
    counts = {"recordings": recordings, "segments": 0, "calls": 0, "dead_letters": 0}
    per_day = max(1, -(-recordings // days))
    for day in range(days):
        first = day * per_day
        if first >= recordings:
            break
        day_t = T0 + day * 86400
        rows: dict[type, list[dict]] = {ScoreRow: [], CallRow: [], DeadLetterRow: []}
        for i in range(first, min(recordings, first + per_day)):
            segs, calls = synthetic_recording(rng, first_id + i, day_t)
            rows[ScoreRow] += [to_dict(r) for r in segs]
            rows[CallRow] += [to_dict(r) for r in calls]
            if i % 97 == 0:
                rows[DeadLetterRow].append(
                    to_dict(
                        DeadLetterRow(
                            SCHEMA_VERSION,
                            f"bad-{i}",
                            f"s3://calls/bad-{i}.mp4",
                            None,
                            "decode",
                            "MediaDecodeError",
                            "no audio or video stream",
                            None,
                            day_t,
                        )
                    )
                )
        iso = dt.datetime.fromtimestamp(day_t, dt.UTC).date().isoformat()
        for kind, (folder, schema) in KINDS.items():
            if rows[kind]:
                path = Path(partition_dir(str(root), folder, iso))
                path.mkdir(parents=True, exist_ok=True)
                pq.write_table(
                    pa.Table.from_pylist(rows[kind], schema=schema), path / f"{name}.parquet"
                )
        counts["segments"] += len(rows[ScoreRow])
        counts["calls"] += len(rows[CallRow])
        counts["dead_letters"] += len(rows[DeadLetterRow])
    return counts


def timed(fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - start, 3)


def query_times(root: Path) -> dict[str, float]:
    """DuckDB seconds of the queries behind each view (a fresh connection)."""
    store = OutputStore(str(root))
    video = store.latest_video() or ""
    overview = (
        store.totals,
        store.recordings_by_day,
        store.sentiment_by_role,
        store.coverage,
        store.missing_reasons,
        store.model_versions,
    )
    filters = CallFilter(roles=("customer",), labels=("negative",))
    ids = {
        "text": "text-minilm-ft@1",
        "face": "face-fer2013-minixception-ft@2+644b13ed",
        "voice": "voice-whisper-tiny-v3@3+70461b34",
    }
    done, resume_s = timed(
        lambda: scored_video_ids(str(root), "eu-workplace", ids, "fusion-fixed-confweighted@2")
    )
    assert len(done) == len({r["video_id"] for r in store.calls(CallFilter(limit=10**9))})
    return {
        "resume_check": resume_s,
        "overview": timed(lambda: [q() for q in overview])[1],
        "calls": timed(lambda: (store.choices(), store.calls(filters), store.count_calls(filters)))[
            1
        ],
        "call": timed(
            lambda: (store.call(video), store.segments(video), store.dead_letters_of(video))
        )[1],
    }


def browser_times(root: Path, screenshots: Path | None) -> dict[str, dict[str, float]]:
    """Seconds from asking each page in headless Chromium until its numbers are drawn.

    After one visit of every page (so the browser has Dash's scripts, as a user's has
    after the first page), every file's time is touched, as when new rows arrive: ``cold``
    is then the first visit of each page (all its queries run), ``warm`` a second one
    (answered from the cache of an unchanged output, as a refresh is)."""
    from browser import chromium, serve_dashboard, wait_for

    store = OutputStore(str(root))
    video = store.latest_video()
    out: dict[str, dict[str, float]] = {"cold": {}, "warm": {}}
    with serve_dashboard(str(root)) as url, chromium() as driver:
        pages = {
            "overview": ("/", "#kpi-recordings", lambda t: t not in ("", "-")),
            "calls": ("/calls", "#calls-count", lambda t: "match" in t),
            "call": (f"/call/{video}", "#call-summary td[data-column='fused_valence']", bool),
        }
        for visit, (name, (path, selector, ready)) in [
            (v, page) for v in ("first", "cold", "warm") for page in pages.items()
        ]:
            if visit == "cold" and name == "overview":
                for f in root.glob("*/date=*/*.parquet"):
                    os.utime(f)
            start = time.perf_counter()
            driver.get(url + path)
            wait_for(driver, selector, ready)
            if name == "call":
                wait_for(driver, "#call-timeline .scatterlayer .trace", lambda t: True)
            out.setdefault(visit, {})[name] = round(time.perf_counter() - start, 3)
            if screenshots is not None and visit == "warm":
                time.sleep(1.0)  # let the charts finish their transition
                screenshots.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(screenshots / f"dashboard-{name}.png"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recordings", type=int, default=10_000)
    parser.add_argument("--output", default=None, help="reuse/keep the generated root here")
    parser.add_argument("--screenshots", type=Path, default=None, help="save page screenshots")
    parser.add_argument("--no-browser", action="store_true", help="DuckDB timings only")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    root = Path(args.output or tempfile.mkdtemp(prefix="sentistream-dash-"))
    if not (root / "calls").exists():
        counts, seconds = timed(lambda: write_synthetic_output(root, args.recordings))
        print(f"generated {counts} into {root} in {seconds:.1f} s", flush=True)
    report = {"recordings": args.recordings, "root": str(root), "query_s": query_times(root)}
    if not args.no_browser:
        report["browser_s"] = browser_times(root, args.screenshots)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

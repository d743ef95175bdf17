"""Read a run's Parquet back and print a short, human summary of it (``sentistream run``
prints it at the end)."""

from __future__ import annotations

import glob

import pyarrow as pa
import pyarrow.parquet as pq

from sentistream.pipelines.layout import OutputPaths


def read_rows(prefix: str) -> pa.Table | None:
    files = sorted(glob.glob(prefix + "*.parquet"))
    if not files:
        return None
    return pa.concat_tables(pq.read_table(f) for f in files)


def _fmt(value: float | None) -> str:
    return "   -" if value is None else f"{value:+.2f}"


def summarize(paths: OutputPaths, max_rows: int = 20) -> str:
    """A table of the first segments and the dead letters of one run (local output only)."""
    scores = read_rows(paths.scores_prefix)
    calls = read_rows(paths.calls_prefix)
    dead = read_rows(paths.dead_letters_prefix)
    n_scores = 0 if scores is None else scores.num_rows
    n_dead = 0 if dead is None else dead.num_rows
    lines = [
        f"{n_scores} segment rows -> {paths.scores_prefix}*.parquet",
        f"{0 if calls is None else calls.num_rows} call rows -> {paths.calls_prefix}*.parquet",
        f"{n_dead} dead letters -> {paths.dead_letters_prefix}*.parquet",
    ]
    if scores is not None and n_scores:
        rows = sorted(scores.to_pylist(), key=lambda r: (r["video_id"], r["start_s"], r["channel"]))
        lines.append("")
        lines.append(
            f"{'video':<16} {'time':>13} {'speaker':<9} {'face':>5} {'voice':>5} "
            f"{'text':>5} {'fused':>5} {'label':<8} transcript"
        )
        for r in rows[:max_rows]:
            text = (r["transcript"] or f"({r['text_reason']})")[:48]
            lines.append(
                f"{r['video_id'][:16]:<16} {r['start_s']:6.1f}-{r['end_s']:6.1f} "
                f"{r['speaker'][:9]:<9} {_fmt(r['face_valence'])} {_fmt(r['voice_valence'])} "
                f"{_fmt(r['text_valence'])} {_fmt(r['fused_valence'])} {r['fused_label']:<8} {text}"
            )
        if n_scores > max_rows:
            lines.append(f"... {n_scores - max_rows} more")
    if calls is not None and calls.num_rows:
        lines += ["", f"{'video':<16} {'speaker':<9} {'label':<8} {'fused':>5} {'trend':>5} "
                  f"{'talk s':>7} {'wpm':>5} {'interrupts':>10}"]  # fmt: skip
        rows = sorted(calls.to_pylist(), key=lambda r: (r["video_id"], r["channel"], r["speaker"]))
        for r in rows[:max_rows]:
            wpm = "-" if r["talk_speed_wpm"] is None else f"{r['talk_speed_wpm']:.0f}"
            interrupts = "-" if r["interruptions"] is None else str(r["interruptions"])
            lines.append(
                f"{r['video_id'][:16]:<16} {r['speaker'][:9]:<9} {r['fused_label']:<8} "
                f"{_fmt(r['fused_valence'])} {_fmt(r['trend'])} {r['talk_time_s']:7.1f} "
                f"{wpm:>5} {interrupts:>10}"
            )
    if dead is not None:
        for r in dead.to_pylist()[:max_rows]:
            lines.append(
                f"DEAD LETTER {r['source_uri']} [{r['stage']}] {r['error_type']}: "
                f"{r['error'][:160]}"
            )
    return "\n".join(lines)

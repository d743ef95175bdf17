"""``sentistream report VIDEO_ID --output OUT``: one recording as a file to share.

Writes ``OUT/reports/<video_id>.html``: self-contained (Plotly's JavaScript is inlined:
it opens offline, with no dashboard and no server), with the call-level summary, the
timeline of ``figures.timeline`` (interactive: transcript on hover) and the transcript;
and ``<video_id>.png``: the same timeline drawn by Matplotlib, for a mail or a ticket.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from sentistream.pipelines.dashboard import figures
from sentistream.pipelines.dashboard.app import SUMMARY_COLUMNS, show
from sentistream.pipelines.dashboard.queries import OutputStore

REPORTS_DIR = "reports"


def _safe_name(video_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", video_id)[:120] or "recording"


def _summary_html(calls: Sequence[dict]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in SUMMARY_COLUMNS)
    cells = [
        "".join(
            f'<td data-column="{c}">{html.escape(show(c, r.get(c)))}</td>'
            for c, _ in SUMMARY_COLUMNS
        )
        for r in calls
    ]
    body = "".join(f"<tr>{row}</tr>" for row in cells)
    return f'<table class="summary"><tr>{head}</tr>{body}</table>'


def _transcript_html(segments: Sequence[dict]) -> str:
    lines = [
        f"<tr><td>{s['start_s']:.1f}-{s['end_s']:.1f} s</td><td>{html.escape(s['speaker'])}</td>"
        f"<td>{html.escape(show('fused_valence', s['fused_valence']))} {s['fused_label']}</td>"
        f"<td>{html.escape(s['transcript'] or '')}</td></tr>"
        for s in segments
    ]
    return "<table class='transcript'>" + "".join(lines) + "</table>"


def report_html(video_id: str, calls: Sequence[dict], segments: Sequence[dict]) -> str:
    figure = figures.timeline(segments, title="Valence over time, per speaker")
    chart = figure.to_html(full_html=False, include_plotlyjs=True)
    first = calls[0] if calls else {}
    facts = (
        f"{html.escape(str(first.get('source_uri', '')))} - "
        f"{first.get('recording_duration_s', 0):.1f} s, {len(calls)} speaker(s), policy "
        f"{html.escape(str(first.get('policy_id', '')))}, fusion "
        f"{html.escape(str(first.get('fusion_model_id', '')))}"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sentistream report {html.escape(video_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ddd;padding:3px 6px}} .transcript td{{vertical-align:top}}</style>
</head><body>
<h2>Recording {html.escape(video_id)}</h2>
<p>{facts}</p>
<h3>Per speaker</h3>
{_summary_html(calls)}
<h3>Timeline</h3>
{chart}
<h3>Transcript</h3>
{_transcript_html(segments)}
<p style="color:#777">Valence is in [-1, 1]; how the columns are computed: README
"Call-level columns". Made by sentistream from the Parquet output.</p>
</body></html>
"""


def timeline_png(segments: Sequence[dict], path: Path, title: str) -> None:
    """The timeline of ``figures.timeline``, drawn by Matplotlib (no browser needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lanes = figures.lanes_of(segments) or [((0, "none"), [])]
    fig, axes = plt.subplots(len(lanes), 1, figsize=(11, 2.6 * len(lanes) + 0.8), sharex=True)
    axes = [axes] if len(lanes) == 1 else list(axes)
    for ax, (key, rows) in zip(axes, lanes, strict=True):
        for series in figures.SERIES:
            drawn = figures.spans(rows, series)
            if drawn:
                ax.hlines(
                    [v for _, _, v in drawn],
                    [s for s, _, _ in drawn],
                    [e for _, e, _ in drawn],
                    color=figures.COLORS[series],
                    linewidth=4 if series == "fused" else 1.5,
                    label=series,
                )
        for m, y in figures.MISSING_Y.items():
            xs = [(r["start_s"] + r["end_s"]) / 2 for r in rows if not r[f"{m}_present"]]
            if xs:
                ax.scatter(
                    xs,
                    [y] * len(xs),
                    marker="x",
                    color=figures.COLORS[m],
                    alpha=0.5,
                    label=f"no {m}",
                )
        ax.axhline(0, color="#bbb", linewidth=0.8)
        ax.set_ylim(-1.6, 1.1)
        ax.set_yticks([-1, -0.5, 0, 0.5, 1])
        ax.set_title(figures.lane_name(key), fontsize=10, loc="left")
        ax.legend(loc="upper right", fontsize=7, ncol=7)
    axes[-1].set_xlabel("seconds")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(root: str, video_id: str, folder: str | None = None) -> tuple[Path, Path]:
    """Write the HTML and PNG report of ``video_id`` from the output root ``root``;
    returns their paths. Raises ValueError when the root has no rows for it."""
    store = OutputStore(root)
    calls = store.call(video_id)
    segments = store.segments(video_id)
    if not calls and not segments:
        raise ValueError(f"no rows for recording {video_id!r} under {root}")
    out = Path(folder) if folder else Path(root) / REPORTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    name = _safe_name(video_id)
    html_path, png_path = out / f"{name}.html", out / f"{name}.png"
    html_path.write_text(report_html(video_id, calls, segments), encoding="utf-8")
    timeline_png(segments, png_path, f"Recording {video_id}: valence per speaker")
    return html_path, png_path

"""The dashboard's charts, as Plotly figures built from the rows ``queries.py`` returns
(the per-call report draws the same timeline).

The timeline has one lane per speaker. In each lane the fused valence and each
modality's valence are drawn as a bar over the segment's time span; hovering a segment's
midpoint shows its times, transcript and scores. A segment where a modality has no score
gets a grey cross below the axis in that modality's row, with the reason on hover, so a
missing modality is visible rather than a gap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

SERIES = ("fused", "face", "voice", "text")
COLORS = {"fused": "#222222", "face": "#1f77b4", "voice": "#2ca02c", "text": "#d62728"}
LABEL_COLORS = {
    "negative": "#d62728",
    "neutral": "#9e9e9e",
    "positive": "#2ca02c",
    "unknown": "#cccccc",
}
MISSING_Y = {"face": -1.2, "voice": -1.35, "text": -1.5}  # crosses below the valence axis
Row = Mapping[str, Any]


def lane_key(row: Row) -> tuple[int, str]:
    return (row["channel"], row["speaker"])


def lane_name(key: tuple[int, str]) -> str:
    return f"{key[1]} (channel {key[0]})"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def hover_text(row: Row) -> str:
    """A segment's hover: time, transcript, scores and the reasons for missing ones."""
    lines = [
        f"<b>{row['start_s']:.1f}-{row['end_s']:.1f} s</b> {row['segmenter']}",
        (row.get("transcript") or "<i>(no words)</i>")[:200],
        f"fused {_fmt(row['fused_valence'])} {row['fused_label']} "
        f"(confidence {row['fused_confidence']:.2f})",
    ]
    for m in ("face", "voice", "text"):
        if row[f"{m}_present"]:
            lines.append(f"{m} {_fmt(row[f'{m}_valence'])}")
        else:
            lines.append(f"{m}: none ({row[f'{m}_reason']})")
    return "<br>".join(lines)


def lanes_of(segments: Sequence[Row]) -> list[tuple[tuple[int, str], list[Row]]]:
    """(lane key, its segments) per speaker, in lane order."""
    keys = sorted({lane_key(r) for r in segments})
    return [(k, [r for r in segments if lane_key(r) == k]) for k in keys]


def spans(rows: Sequence[Row], series: str) -> list[tuple[float, float, float]]:
    """(start, end, valence) of the segments where ``series`` has a score."""
    column = f"{series}_valence"
    return [
        (r["start_s"], r["end_s"], r[column])
        for r in rows
        if r[column] is not None and (series == "fused" or r[f"{series}_present"])
    ]


def timeline(segments: Sequence[Row], title: str = "") -> go.Figure:
    """One lane per speaker; see the module docstring."""
    lanes = lanes_of(segments)
    fig = make_subplots(
        rows=max(1, len(lanes)),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[lane_name(k) for k, _ in lanes] or ["no segments"],
    )
    for i, (_, rows) in enumerate(lanes, start=1):
        for series in SERIES:
            xs: list[float | None] = []
            ys: list[float | None] = []
            for start, end, value in spans(rows, series):
                xs += [start, end, None]
                ys += [value, value, None]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=series,
                    legendgroup=series,
                    showlegend=i == 1,
                    hoverinfo="skip",
                    line={"color": COLORS[series], "width": 5 if series == "fused" else 2},
                ),
                row=i,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=[(r["start_s"] + r["end_s"]) / 2 for r in rows],
                y=[r["fused_valence"] if r["fused_valence"] is not None else 0 for r in rows],
                mode="markers",
                name="segment",
                showlegend=False,
                marker={"color": [LABEL_COLORS[r["fused_label"]] for r in rows], "size": 9},
                hovertext=[hover_text(r) for r in rows],
                hoverinfo="text",
            ),
            row=i,
            col=1,
        )
        for m, y in MISSING_Y.items():
            missing = [r for r in rows if not r[f"{m}_present"]]
            fig.add_trace(
                go.Scatter(
                    x=[(r["start_s"] + r["end_s"]) / 2 for r in missing],
                    y=[y] * len(missing),
                    mode="markers",
                    name=f"no {m}",
                    legendgroup=f"no {m}",
                    showlegend=i == 1 and bool(missing),
                    marker={"symbol": "x", "color": COLORS[m], "opacity": 0.5, "size": 8},
                    hovertext=[f"no {m} score: {r[f'{m}_reason']}" for r in missing],
                    hoverinfo="text",
                ),
                row=i,
                col=1,
            )
        fig.update_yaxes(range=[-1.6, 1.1], tickvals=[-1, -0.5, 0, 0.5, 1], row=i, col=1)
    fig.update_xaxes(title_text="seconds", row=max(1, len(lanes)), col=1)
    fig.update_layout(
        title=title,
        height=max(320, 260 * len(lanes) + 80),
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.12},
        template="plotly_white",
    )
    return fig


def bar(rows: Sequence[Row], x: str, y: str, title: str, color: str | None = None) -> go.Figure:
    """A bar chart of ``y`` over ``x``; ``color``: one bar group per value of that column."""
    fig = go.Figure()
    groups = sorted({r[color] for r in rows}) if color else [None]
    for group in groups:
        part = [r for r in rows if color is None or r[color] == group]
        fig.add_trace(
            go.Bar(
                x=[r[x] for r in part],
                y=[r[y] for r in part],
                name=str(group) if group is not None else y,
                marker_color=LABEL_COLORS.get(str(group)) if color else None,
            )
        )
    fig.update_layout(
        title=title,
        barmode="stack",
        height=320,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
        showlegend=color is not None,
    )
    return fig

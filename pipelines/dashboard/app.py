"""``sentistream dashboard OUT``: a local web app over an output root.

Built on Plotly Dash: the charts are Plotly figures, the tables AG Grid (dash-ag-grid,
Dash's maintained grid), the pages Dash components, the server Flask; every number comes
from a DuckDB query (``queries.py``) run on the server, so the browser only draws.
Chosen over Streamlit (which reruns the whole script per interaction, and whose pages
are harder to drive from a test browser) and Panel (a larger stack for what is here);
Dash serves its JavaScript from the installed package, so it works offline. Pages:

- ``/``: overview: recordings per day, sentiment by role, modality coverage and the
  reasons scores are missing, model versions, dead letters;
- ``/calls``: the call-level rows, filtered by date, role, label, policy and model;
- ``/call/<video_id>``: one recording: its call rows, a timeline per speaker (fused and
  per-modality valence, transcript on hover, missing modalities marked) and the
  transcript.

Every page re-queries every ``refresh_s`` seconds, so it follows a running stream.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Any

import dash_ag_grid as dag
from dash import Dash, Input, Output, State, dcc, html

from sentistream.pipelines.dashboard import figures
from sentistream.pipelines.dashboard.queries import CallFilter, OutputStore

#: The call-level columns the per-call page shows, with their headings.
SUMMARY_COLUMNS = (
    ("speaker", "speaker"),
    ("fused_label", "label"),
    ("fused_valence", "valence"),
    ("fused_confidence", "confidence"),
    ("trend", "trend (Q4-Q1)"),
    ("valence_q1", "Q1"),
    ("valence_q2", "Q2"),
    ("valence_q3", "Q3"),
    ("valence_q4", "Q4"),
    ("face_valence", "face"),
    ("voice_valence", "voice"),
    ("text_valence", "words"),
    ("talk_time_s", "talk s"),
    ("non_talk_time_s", "non-talk s"),
    ("talk_speed_wpm", "words/min"),
    ("interruptions", "interruptions"),
    ("loudness_dbfs", "loudness dBFS"),
    ("face_coverage", "face cov."),
    ("voice_coverage", "voice cov."),
    ("text_coverage", "words cov."),
)
LIST_COLUMNS = (
    ("date", "date"),
    ("video_id", "recording"),
    ("speaker", "speaker"),
    ("role", "role"),
    ("fused_label", "label"),
    ("fused_valence", "valence"),
    ("trend", "trend"),
    ("talk_time_s", "talk s"),
    ("talk_speed_wpm", "words/min"),
    ("interruptions", "interruptions"),
    ("policy_id", "policy"),
)
SIGNED = {
    "fused_valence",
    "trend",
    "valence_q1",
    "valence_q2",
    "valence_q3",
    "valence_q4",
    "face_valence",
    "voice_valence",
    "text_valence",
}


def show(column: str, value: Any) -> str:
    """A value as the pages print it (the browser test reads these strings)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.3f}" if column in SIGNED else f"{value:.3f}"
    return str(value)


def _kpi(label: str, ident: str) -> html.Div:
    return html.Div(
        [
            html.Div(label, style={"color": "#666", "fontSize": 13}),
            html.Div("-", id=ident, style={"fontSize": 26, "fontWeight": "bold"}),
        ],
        style={"display": "inline-block", "marginRight": "2.5em"},
    )


def grid(
    ident: str, columns: Sequence[dict], rows: Sequence[dict] = (), page: int = 15
) -> dag.AgGrid:
    """A paged, sortable AG Grid of ``rows`` (every row of a page drawn, for reading)."""
    return dag.AgGrid(
        id=ident,
        rowData=list(rows),
        columnDefs=list(columns),
        defaultColDef={"sortable": True, "resizable": True},
        columnSize="sizeToFit",
        dashGridOptions={"domLayout": "autoHeight", "pagination": True, "paginationPageSize": page},
        style={"height": None, "fontSize": 13},
    )


def _table(rows: Sequence[dict], columns: Sequence[str], ident: str) -> dag.AgGrid:
    data = [{c: show(c, r.get(c)) for c in columns} for r in rows]
    return grid(ident, [{"field": c} for c in columns], data)


def overview_page() -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    _kpi("recordings", "kpi-recordings"),
                    _kpi("call rows (recording x speaker)", "kpi-call-rows"),
                    _kpi("hours of media", "kpi-media-hours"),
                    _kpi("segments", "kpi-segments"),
                    _kpi("dead letters", "kpi-dead-letters"),
                ]
            ),
            html.Div(
                [
                    dcc.Graph(id="fig-days", style={"width": "49%", "display": "inline-block"}),
                    dcc.Graph(id="fig-roles", style={"width": "49%", "display": "inline-block"}),
                ]
            ),
            html.Div(
                [
                    dcc.Graph(id="fig-coverage", style={"width": "49%", "display": "inline-block"}),
                    html.Div(
                        [html.H4("Why scores are missing"), html.Div(id="missing")],
                        style={"width": "49%", "display": "inline-block", "verticalAlign": "top"},
                    ),
                ]
            ),
            html.H4("Model versions"),
            html.Div(id="models"),
        ]
    )


def calls_page(store: OutputStore) -> html.Div:
    choices = store.choices()  # empty lists while there is no call row yet

    def pick(ident: str, key: str, placeholder: str) -> dcc.Dropdown:
        return dcc.Dropdown(
            id=ident,
            options=choices.get(key) or [],
            multi=True,
            placeholder=placeholder,
            style={"width": "14em", "display": "inline-block", "marginRight": "0.5em"},
        )

    return html.Div(
        [
            html.Div(
                [
                    dcc.DatePickerRange(
                        id="f-dates",
                        start_date=choices.get("first_day"),
                        end_date=choices.get("last_day"),
                        display_format="YYYY-MM-DD",
                    ),
                    pick("f-roles", "roles", "role"),
                    pick("f-labels", "labels", "label"),
                    pick("f-policies", "policies", "policy"),
                    pick("f-models", "models", "model"),
                    dcc.Input(id="f-video", placeholder="recording id contains", debounce=True),
                ]
            ),
            html.P(id="calls-count"),
            grid(
                "calls-table",
                [
                    {"field": c, "headerName": h}
                    | ({"cellRenderer": "markdown"} if c == "video_id" else {})
                    for c, h in LIST_COLUMNS
                ],
                page=25,
            ),
        ]
    )


def call_page(video_id: str) -> html.Div:
    return html.Div(
        [
            html.H3(f"Recording {video_id}", id="call-title"),
            html.Div(id="call-summary"),
            dcc.Graph(id="call-timeline"),
            html.H4("Transcript"),
            html.Div(id="call-transcript"),
            html.Div(id="call-dead"),
        ],
        **{"data-video": video_id},
    )


def summary_table(calls: Sequence[dict]) -> html.Table:
    """The call rows of one recording: one table row per speaker; each cell carries its
    column name and speaker (``data-column``, ``data-speaker``)."""
    head = html.Tr([html.Th(h) for _, h in SUMMARY_COLUMNS])
    body = [
        html.Tr(
            [
                html.Td(show(c, r.get(c)), **{"data-column": c, "data-speaker": r["speaker"]})
                for c, _ in SUMMARY_COLUMNS
            ]
        )
        for r in calls
    ]
    return html.Table([head, *body], className="summary", style={"fontSize": 13})


def transcript_lines(segments: Sequence[dict]) -> list[html.Div]:
    return [
        html.Div(
            f"{s['start_s']:7.1f}s  {s['speaker']:<10} {show('fused_valence', s['fused_valence'])}"
            f"  {s['transcript']}",
            style={"fontFamily": "monospace", "whiteSpace": "pre-wrap"},
        )
        for s in segments
        if s.get("transcript")
    ]


def build_app(root: str, refresh_s: float = 10.0) -> Dash:
    """The Dash app over the output root ``root``."""
    store = OutputStore(root)
    app = Dash(__name__, title="sentistream", suppress_callback_exceptions=True)
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            dcc.Interval(id="tick", interval=int(refresh_s * 1000)),
            html.Div(
                [
                    html.B("sentistream", style={"fontSize": 22, "marginRight": "1.5em"}),
                    dcc.Link("Overview", href="/", style={"marginRight": "1em"}),
                    dcc.Link("Calls", href="/calls", style={"marginRight": "1em"}),
                    html.Span(f"output: {root}", style={"color": "#777"}),
                ],
                style={"padding": "8px 0", "borderBottom": "1px solid #ddd"},
            ),
            html.Div(id="page"),
        ],
        style={"fontFamily": "sans-serif", "margin": "0 2em"},
    )

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def route(pathname: str | None) -> html.Div:
        path = pathname or "/"
        if path.startswith("/call/"):
            return call_page(urllib.parse.unquote(path[len("/call/") :]))
        if path.startswith("/calls"):
            return calls_page(store)
        return overview_page()

    @app.callback(
        Output("kpi-recordings", "children"),
        Output("kpi-call-rows", "children"),
        Output("kpi-media-hours", "children"),
        Output("kpi-segments", "children"),
        Output("kpi-dead-letters", "children"),
        Output("fig-days", "figure"),
        Output("fig-roles", "figure"),
        Output("fig-coverage", "figure"),
        Output("missing", "children"),
        Output("models", "children"),
        Input("tick", "n_intervals"),
        Input("url", "pathname"),
    )
    def overview(_tick: int | None, _path: str | None) -> tuple:
        totals = store.totals()
        reasons = store.missing_reasons()
        models = store.model_versions()
        return (
            str(totals["recordings"]),
            str(totals["call_rows"]),
            f"{totals['media_hours']:.2f}",
            str(totals["segments"]),
            str(totals["dead_letters"]),
            figures.bar(store.recordings_by_day(), "day", "recordings", "Recordings per day"),
            figures.bar(
                store.sentiment_by_role(), "role", "calls", "Call label by role", color="label"
            ),
            figures.bar(store.coverage(), "modality", "coverage", "Share of speech with a score"),
            _table(reasons, ("modality", "reason", "segments", "hours"), "missing-table"),
            _table(
                models,
                (
                    "step",
                    "model_id",
                    "policy_id",
                    "recordings",
                    "first_day",
                    "last_day",
                ),
                "models-table",
            ),
        )

    @app.callback(
        Output("calls-table", "rowData"),
        Output("calls-count", "children"),
        Input("f-dates", "start_date"),
        Input("f-dates", "end_date"),
        Input("f-roles", "value"),
        Input("f-labels", "value"),
        Input("f-policies", "value"),
        Input("f-models", "value"),
        Input("f-video", "value"),
        Input("tick", "n_intervals"),
    )
    def calls(start, end, roles, labels, policies, models, video, _tick) -> tuple:
        filters = CallFilter(
            date_from=start,
            date_to=end,
            roles=roles or (),
            labels=labels or (),
            policies=policies or (),
            models=models or (),
            video=video or None,
        )
        rows = store.calls(filters)
        total = store.count_calls(filters)
        data = [
            {c: show(c, r[c]) for c, _ in LIST_COLUMNS}
            | {"video_id": f"[{r['video_id']}](/call/{urllib.parse.quote(r['video_id'])})"}
            for r in rows
        ]
        shown = f" (the newest {len(rows)} shown)" if total > len(rows) else ""
        return data, f"{total} call rows match{shown}"

    @app.callback(
        Output("call-summary", "children"),
        Output("call-timeline", "figure"),
        Output("call-transcript", "children"),
        Output("call-dead", "children"),
        Input("tick", "n_intervals"),
        State("url", "pathname"),
    )
    def call(_tick: int | None, pathname: str | None) -> tuple:
        video_id = urllib.parse.unquote((pathname or "")[len("/call/") :])
        segments = store.segments(video_id)
        dead = store.dead_letters_of(video_id)
        return (
            summary_table(store.call(video_id)),
            figures.timeline(segments, title="Valence over time, per speaker"),
            transcript_lines(segments) or html.I("no transcript"),
            [html.H4("Dead letters"), _table(dead, ("stage", "error_type", "error"), "dead")]
            if dead
            else [],
        )

    return app


def serve(root: str, host: str = "127.0.0.1", port: int = 8050, refresh_s: float = 10.0) -> None:
    """Serve the dashboard until interrupted."""
    app = build_app(root, refresh_s)
    print(f"sentistream dashboard over {root}: http://{host}:{port}/  (Ctrl-C stops it)")
    app.run(host=host, port=port, debug=False)

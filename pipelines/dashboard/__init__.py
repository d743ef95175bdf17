"""Reading the output: the browser dashboard (``app.py``), the per-call report
(``report.py``), both over the DuckDB queries of ``queries.py``. Needs the ``dashboard``
extra (Plotly Dash, Matplotlib)."""

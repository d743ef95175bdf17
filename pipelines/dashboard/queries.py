"""Every question the dashboard and the per-call report ask of an output root, in DuckDB.

``OutputStore(root)`` reads ``ROOT/{scores,calls,dead_letters}/date=*/*.parquet`` (the
layout of ``pipelines/layout.py``) as three views. The views re-read the folders on every
query, so files a running ``sentistream stream`` adds show up on the next refresh; a
result is cached until the folders' files change (names, sizes, times), so a refresh of
an unchanged output costs a directory listing. A row can be there twice (a restarted
stream's at-least-once delivery, or a ``--rescore`` run), so each view keeps one row per
``segment_id`` / ``summary_id``: the last processed (the deduplication only runs when
a kind's files hold a key twice: it is the costly part of a query). Results are plain
lists of dicts (JSON-ready).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sentistream.transforms.io.parquet_stream import CALLS_DIR, DEAD_LETTERS_DIR, SCORES_DIR

_KEYS = {SCORES_DIR: "segment_id", CALLS_DIR: "summary_id", DEAD_LETTERS_DIR: None}
MODALITY_COLUMNS = ("face", "voice", "text")


@dataclass(frozen=True)
class CallFilter:
    """The call list's filters; None or empty: any."""

    date_from: str | None = None
    date_to: str | None = None
    roles: Sequence[str] = ()
    labels: Sequence[str] = ()
    policies: Sequence[str] = ()
    models: Sequence[str] = ()
    video: str | None = None
    limit: int = 500

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters."""
        parts, params = ["TRUE"], []
        if self.date_from:
            parts.append("date >= ?")
            params.append(dt.date.fromisoformat(self.date_from))
        if self.date_to:
            parts.append("date <= ?")
            params.append(dt.date.fromisoformat(self.date_to))
        for column, values in (
            ("role", self.roles),
            ("fused_label", self.labels),
            ("policy_id", self.policies),
        ):
            if values:
                parts.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        if self.models:
            marks = ", ".join("?" * len(self.models))
            ids = ("face_model_id", "voice_model_id", "text_model_id", "fusion_model_id")
            parts.append("(" + " OR ".join(f"{c} IN ({marks})" for c in ids) + ")")
            params.extend(list(self.models) * len(ids))
        if self.video:
            parts.append("contains(video_id, ?)")
            params.append(self.video)
        return " AND ".join(parts), params


@dataclass
class OutputStore:
    """DuckDB over one output root (a local folder)."""

    root: str
    _con: duckdb.DuckDBPyConnection = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _cache: dict[tuple, list[dict[str, Any]]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._con = duckdb.connect()
        self._con.execute("SET threads TO 2")

    def _glob(self, kind: str) -> str:
        """The kind's files as a SQL string literal's content (quotes doubled)."""
        return str(Path(self.root) / kind / "date=*" / "*.parquet").replace("'", "''")

    def _files(self, kind: str) -> tuple[tuple[str, int, int], ...]:
        out = []
        for path in sorted((Path(self.root) / kind).glob("date=*/*.parquet")):
            try:
                st = path.stat()
            except OSError:  # renamed or removed while listed
                continue
            out.append((str(path), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _read(self, kind: str) -> str:
        return f"read_parquet('{self._glob(kind)}', hive_partitioning = true, union_by_name = true)"

    def _has_duplicates(self, kind: str, files: tuple) -> bool:
        """Whether ``kind``'s files hold a row key twice (cached per file listing)."""
        key = ("duplicates", kind, files)
        if key not in self._cache:
            column = _KEYS[kind]
            sql = f"SELECT count(*) > count(DISTINCT {column}) FROM {self._read(kind)}"
            self._cache[key] = [{"dup": self._con.execute(sql).fetchall()[0][0]}]
        return bool(self._cache[key][0]["dup"])

    def _source(self, kind: str, where: str, files: tuple) -> str:
        """A ``FROM`` source of the ``kind`` rows matching ``where``, one per key (the filter
        comes first, so one recording's rows are found without sorting every row)."""
        read = self._read(kind)
        key = _KEYS[kind]
        if key is None or not self._has_duplicates(kind, files):
            return f"(SELECT * FROM {read} WHERE {where})"
        return (
            f"(SELECT * FROM {read} WHERE {where} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY processed_at DESC) = 1)"
        )

    def query(
        self, sql: str, params: Sequence[Any] = (), where: str = "TRUE"
    ) -> list[dict[str, Any]]:
        """``sql`` with ``{scores}``, ``{calls}``, ``{dead_letters}`` standing for the row
        kinds, each filtered by ``where`` before deduplication (its ``?`` s come first in
        ``params``, once per source); [] when a kind it reads has no file yet."""
        kinds = [k for k in _KEYS if "{" + k + "}" in sql]
        files = tuple(self._files(k) for k in kinds)
        if not all(files):
            return []
        key = (sql, tuple(params), where, files)
        with self._lock:  # one connection, used from the web server's threads
            if key not in self._cache:
                sources = {k: self._source(k, where, f) for k, f in zip(kinds, files, strict=True)}
                text = sql.format(**sources)
                cur = self._con.execute(text, list(params))
                names = [d[0] for d in cur.description]
                if len(self._cache) > 256:
                    self._cache.clear()
                self._cache[key] = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            return self._cache[key]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    # ---------------------------------------------------------------- overview

    def totals(self) -> dict[str, Any]:
        """Recordings, call rows, hours of media, segments and dead letters."""
        calls = self.query(
            "SELECT count(DISTINCT video_id) AS recordings, count(*) AS call_rows FROM {calls}"
        )
        hours = self.scalar(
            "SELECT sum(d) / 3600 FROM (SELECT max(recording_duration_s) AS d FROM {calls} "
            "GROUP BY video_id)"
        )
        return {
            "recordings": calls[0]["recordings"] if calls else 0,
            "call_rows": calls[0]["call_rows"] if calls else 0,
            "media_hours": round(hours or 0.0, 2),
            "segments": self.scalar("SELECT count(*) FROM {scores}") or 0,
            "dead_letters": self.scalar("SELECT count(*) FROM {dead_letters}") or 0,
        }

    def recordings_by_day(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT CAST(date AS VARCHAR) AS day, count(DISTINCT video_id) AS recordings, "
            "round(sum(talk_time_s) / 3600, 3) AS talk_hours FROM {calls} GROUP BY day ORDER BY day"
        )

    def sentiment_by_role(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT role, fused_label AS label, count(*) AS calls, "
            "round(avg(fused_valence), 4) AS mean_valence FROM {calls} "
            "GROUP BY role, label ORDER BY role, label"
        )

    def coverage(self) -> list[dict[str, Any]]:
        """Per modality: the talk-time-weighted share of speech with a score."""
        parts = [
            f"SELECT '{m}' AS modality, round(sum({m}_coverage * talk_time_s) / "
            f"nullif(sum(talk_time_s), 0), 4) AS coverage FROM {{calls}}"
            for m in MODALITY_COLUMNS
        ]
        return self.query(" UNION ALL ".join(parts))

    def missing_reasons(self) -> list[dict[str, Any]]:
        """Per modality and reason: segments without that score, and their hours."""
        columns = ", ".join(f"{m}_present, {m}_reason" for m in MODALITY_COLUMNS)
        parts = [
            f"SELECT '{m}' AS modality, {m}_reason AS reason, count(*) AS segments, "
            f"round(sum(d) / 3600, 4) AS hours FROM s WHERE NOT {m}_present GROUP BY reason"
            for m in MODALITY_COLUMNS
        ]
        return self.query(
            f"WITH s AS MATERIALIZED (SELECT end_s - start_s AS d, {columns} FROM {{scores}}) "
            + " UNION ALL ".join(parts)
            + " ORDER BY modality, segments DESC"
        )

    def model_versions(self) -> list[dict[str, Any]]:
        """Per model (and the policy it ran under): recordings and first / last day."""
        parts = [
            f"SELECT '{m}' AS step, {m}_model_id AS model_id, policy_id, video_id, date "
            f"FROM {{calls}} WHERE {m}_model_id IS NOT NULL"
            for m in (*MODALITY_COLUMNS, "fusion")
        ]
        return self.query(
            "SELECT step, model_id, policy_id, count(DISTINCT video_id) AS recordings, "
            "CAST(min(date) AS VARCHAR) AS first_day, CAST(max(date) AS VARCHAR) AS last_day "
            f"FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL ORDER BY step, last_day DESC"
        )

    def choices(self) -> dict[str, list[str]]:
        """The values the call list can be filtered by."""
        rows = self.query(
            "SELECT list(DISTINCT role ORDER BY role) AS roles, "
            "list(DISTINCT fused_label ORDER BY fused_label) AS labels, "
            "list(DISTINCT policy_id ORDER BY policy_id) AS policies, "
            "CAST(min(date) AS VARCHAR) AS first_day, CAST(max(date) AS VARCHAR) AS last_day "
            "FROM {calls}"
        )
        models = self.query(
            "SELECT DISTINCT m FROM (SELECT unnest([face_model_id, voice_model_id, "
            "text_model_id, fusion_model_id]) AS m FROM {calls}) WHERE m IS NOT NULL ORDER BY m"
        )
        out = dict(rows[0]) if rows else {"roles": [], "labels": [], "policies": []}
        out["models"] = [r["m"] for r in models]
        return out

    # ---------------------------------------------------------------- calls

    def calls(self, filters: CallFilter = CallFilter()) -> list[dict[str, Any]]:
        """Call rows matching ``filters``, newest first (at most ``filters.limit``)."""
        where, params = filters.where()
        return self.query(
            "SELECT CAST(date AS VARCHAR) AS date, video_id, speaker, role, fused_label, "
            "fused_valence, fused_confidence, trend, recording_duration_s, talk_time_s, "
            "talk_speed_wpm, interruptions, face_coverage, voice_coverage, text_coverage, "
            "policy_id, fusion_model_id, summary_id FROM {calls} "
            f"WHERE {where} ORDER BY processed_at DESC, video_id, channel "
            f"LIMIT {int(filters.limit)}",
            params,
        )

    def count_calls(self, filters: CallFilter = CallFilter()) -> int:
        where, params = filters.where()
        return self.scalar(f"SELECT count(*) FROM {{calls}} WHERE {where}", params) or 0

    def call(self, video_id: str) -> list[dict[str, Any]]:
        """The call rows of one recording, one per speaker."""
        return self.query(
            "SELECT * EXCLUDE (date) FROM {calls} ORDER BY channel, speaker",
            [video_id],
            where="video_id = ?",
        )

    def segments(self, video_id: str) -> list[dict[str, Any]]:
        """The segment rows of one recording, in time order."""
        return self.query(
            "SELECT * EXCLUDE (date) FROM {scores} ORDER BY start_s, channel, speaker",
            [video_id],
            where="video_id = ?",
        )

    def dead_letters_of(self, video_id: str) -> list[dict[str, Any]]:
        return self.query(
            "SELECT stage, error_type, error FROM {dead_letters}", [video_id], where="video_id = ?"
        )

    def latest_video(self) -> str | None:
        return self.scalar("SELECT video_id FROM {calls} ORDER BY processed_at DESC LIMIT 1")

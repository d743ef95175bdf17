"""Optional: a windowed per-video aggregate of the fused valence, for live dashboards.

    rows | AggregateValence(AggregateConfig(window_s=60, early_s=5, allowed_lateness_s=600))

Each ``ScoreRow`` is placed in event time at ``event_time + start_s`` (the moment in the
call it describes; ``processed_at`` when the event had no time), keyed by video id and
windowed in fixed windows of ``window_s``. A window fires early every ``early_s`` of
processing time while it fills, once when the watermark passes its end, and again for
each late row up to ``allowed_lateness_s``; panes accumulate, so every pane is the
window's whole aggregate so far and the last one wins. Output: ``ValenceAggregate``.

This step groups (a GroupByKey inside the combine), so it runs on Dataflow and Flink, and
in tests on ``BundleBasedDirectRunner`` with ``TestStream``; on the local FnApiRunner in
streaming mode a grouping step emits nothing until the source ends (docs/streaming.md),
which is why the local stream does not include it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration

from sentistream.transforms.schema import ScoreRow


@dataclass(frozen=True)
class AggregateConfig:
    """Windowing of ``AggregateValence``.

    Attributes:
        window_s: fixed event-time window length, seconds.
        early_s: early panes every this many seconds of processing time (None: none).
        allowed_lateness_s: rows later than this behind the watermark are dropped.
        neutral_band: |weighted valence| below this is labelled ``neutral``.
    """

    window_s: float = 60.0
    early_s: float | None = 5.0
    allowed_lateness_s: float = 600.0
    neutral_band: float = 0.2

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s!r}")
        if self.early_s is not None and not self.early_s > 0:
            raise ValueError(f"early_s must be > 0 or None, got {self.early_s!r}")
        if self.allowed_lateness_s < 0:
            raise ValueError(f"allowed_lateness_s must be >= 0, got {self.allowed_lateness_s!r}")


class ValenceAggregate(NamedTuple):
    """One pane of one video's window.

    ``segments`` counts rows, ``scored`` those with a fused valence; ``mean_valence`` is
    their plain mean and ``weighted_valence`` the mean weighted by fused confidence (None
    when nothing was scored). ``timing`` is the pane's ``EARLY`` / ``ON_TIME`` / ``LATE``.
    """

    video_id: str
    window_start: float
    window_end: float
    segments: int
    scored: int
    mean_valence: float | None
    weighted_valence: float | None
    min_valence: float | None
    max_valence: float | None
    label: str
    timing: str
    is_last: bool


def segment_time(row: ScoreRow) -> float:
    """Event time of a segment: the event's time plus the segment's start in the media."""
    return (row.event_time + row.start_s) if row.event_time is not None else row.processed_at


class _Acc(NamedTuple):
    segments: int = 0
    scored: int = 0
    sum_v: float = 0.0
    sum_wv: float = 0.0
    sum_w: float = 0.0
    min_v: float | None = None
    max_v: float | None = None


class ValenceCombineFn(beam.CombineFn):
    """ScoreRow -> _Acc; associative and commutative (merge order does not matter)."""

    def create_accumulator(self) -> _Acc:
        return _Acc()

    def add_input(self, acc: _Acc, row: ScoreRow) -> _Acc:
        v = row.fused_valence
        if v is None:
            return acc._replace(segments=acc.segments + 1)
        w = max(row.fused_confidence, 0.0)
        return _Acc(
            segments=acc.segments + 1,
            scored=acc.scored + 1,
            sum_v=acc.sum_v + v,
            sum_wv=acc.sum_wv + w * v,
            sum_w=acc.sum_w + w,
            min_v=v if acc.min_v is None else min(acc.min_v, v),
            max_v=v if acc.max_v is None else max(acc.max_v, v),
        )

    def merge_accumulators(self, accs: Any) -> _Acc:
        out = _Acc()
        for a in accs:
            mins = [x for x in (out.min_v, a.min_v) if x is not None]
            maxs = [x for x in (out.max_v, a.max_v) if x is not None]
            out = _Acc(
                segments=out.segments + a.segments,
                scored=out.scored + a.scored,
                sum_v=out.sum_v + a.sum_v,
                sum_wv=out.sum_wv + a.sum_wv,
                sum_w=out.sum_w + a.sum_w,
                min_v=min(mins) if mins else None,
                max_v=max(maxs) if maxs else None,
            )
        return out

    def extract_output(self, acc: _Acc) -> _Acc:
        return acc


def valence_label(valence: float | None, neutral_band: float) -> str:
    if valence is None:
        return "unknown"
    if abs(valence) < neutral_band:
        return "neutral"
    return "positive" if valence > 0 else "negative"


class _ToAggregate(beam.DoFn):
    def __init__(self, neutral_band: float) -> None:
        self._neutral_band = neutral_band

    def process(
        self,
        kv: tuple[str, _Acc],
        win: Any = beam.DoFn.WindowParam,
        pane: Any = beam.DoFn.PaneInfoParam,
    ) -> Any:
        video_id, acc = kv
        mean = acc.sum_v / acc.scored if acc.scored else None
        weighted = acc.sum_wv / acc.sum_w if acc.sum_w > 0 else mean
        timing = {0: "EARLY", 1: "ON_TIME", 2: "LATE"}.get(pane.timing, "UNKNOWN")
        yield ValenceAggregate(
            video_id=video_id,
            window_start=float(win.start),
            window_end=float(win.end),
            segments=acc.segments,
            scored=acc.scored,
            mean_valence=mean,
            weighted_valence=weighted,
            min_valence=acc.min_v,
            max_valence=acc.max_v,
            label=valence_label(weighted, self._neutral_band),
            timing=timing,
            is_last=bool(pane.is_last),
        )


class AggregateValence(beam.PTransform):
    """PCollection[ScoreRow] -> PCollection[ValenceAggregate] (see the module docstring)."""

    def __init__(self, config: AggregateConfig | None = None) -> None:
        super().__init__()
        self._config = config or AggregateConfig()

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        cfg = self._config
        early = trigger.AfterProcessingTime(cfg.early_s) if cfg.early_s else None
        return (
            rows
            | "OnlyScores" >> beam.Filter(lambda r: isinstance(r, ScoreRow))
            | "AtSegmentTime" >> beam.Map(lambda r: window.TimestampedValue(r, segment_time(r)))
            | "Window"
            >> beam.WindowInto(
                window.FixedWindows(cfg.window_s),
                trigger=trigger.AfterWatermark(early=early, late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
                allowed_lateness=Duration.of(cfg.allowed_lateness_s),
            )
            | "ByVideo" >> beam.Map(lambda r: (r.video_id, r))
            | "Combine" >> beam.CombinePerKey(ValenceCombineFn())
            | "ToAggregate" >> beam.ParDo(_ToAggregate(cfg.neutral_band))
        )

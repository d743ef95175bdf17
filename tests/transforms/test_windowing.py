"""Windowing, triggers and late data of the per-video valence aggregate, with TestStream.

TestStream needs ``BundleBasedDirectRunner`` in streaming mode (FnApiRunner cannot run
it; see docs/streaming.md).
"""

from __future__ import annotations

import dataclasses
import typing

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to

from sentistream.transforms.aggregate import (
    AggregateConfig,
    AggregateValence,
    ValenceCombineFn,
    segment_time,
)
from sentistream.transforms.schema import SCHEMA_VERSION, ScoreRow

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a multiple of 60


_BLANK = {str: "", int: 0, float: 0.0, bool: False}


def row(video: str, start_s: float, valence: float | None, conf: float = 1.0) -> ScoreRow:
    """A ScoreRow with only what the aggregate reads set; the rest blank (or None)."""
    hints = typing.get_type_hints(ScoreRow)
    blank = {f.name: _BLANK.get(hints[f.name]) for f in dataclasses.fields(ScoreRow)}
    return dataclasses.replace(
        ScoreRow(**blank),
        schema_version=SCHEMA_VERSION,
        video_id=video,
        segment_id=f"{video}-{start_s}",
        start_s=start_s,
        end_s=start_s + 2.0,
        text_present=valence is not None,
        fused_valence=valence,
        fused_confidence=conf if valence is not None else 0.0,
        event_time=T0,
        processed_at=T0 + 100.0,
    )


def stamped(r: ScoreRow) -> beam.window.TimestampedValue:
    return beam.window.TimestampedValue(r, segment_time(r))


def summary(agg) -> tuple:
    w = None if agg.weighted_valence is None else round(agg.weighted_valence, 3)
    return (agg.video_id, agg.window_start - T0, agg.timing, agg.segments, agg.scored, w)


def run_stream(
    stream: test_stream.TestStream, config: AggregateConfig, expected: list[tuple]
) -> None:
    options = PipelineOptions(["--runner=BundleBasedDirectRunner"])
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as p:
        out = p | stream | AggregateValence(config) | beam.Map(summary)
        assert_that(out, equal_to(expected))


def test_on_time_pane_per_video_and_window():
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(T0)
        .add_elements([stamped(row("a", 1, 0.5, 1.0)), stamped(row("a", 10, -0.1, 3.0))])
        .add_elements([stamped(row("b", 5, 0.9)), stamped(row("a", 70, 0.2))])
        .add_elements([stamped(row("a", 20, None))])  # no fused score: counted, not averaged
        .advance_watermark_to(T0 + 130)
        .advance_watermark_to_infinity()
    )
    run_stream(
        stream,
        AggregateConfig(window_s=60, early_s=None),
        [
            ("a", 0.0, "ON_TIME", 3, 2, 0.05),  # (0.5*1 - 0.1*3) / 4
            ("b", 0.0, "ON_TIME", 1, 1, 0.9),
            ("a", 60.0, "ON_TIME", 1, 1, 0.2),
        ],
    )


def test_early_panes_then_on_time_accumulate():
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(T0)
        .add_elements([stamped(row("a", 1, 0.4))])
        .advance_processing_time(6)  # past early_s: an early pane with what arrived
        .add_elements([stamped(row("a", 30, 0.8))])
        .advance_watermark_to(T0 + 61)
        .advance_watermark_to_infinity()
    )
    run_stream(
        stream,
        AggregateConfig(window_s=60, early_s=5),
        [("a", 0.0, "EARLY", 1, 1, 0.4), ("a", 0.0, "ON_TIME", 2, 2, 0.6)],
    )


def test_late_rows_update_the_window_until_allowed_lateness():
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(T0)
        .add_elements([stamped(row("a", 1, 1.0))])
        .advance_watermark_to(T0 + 90)  # window [0, 60) fires on time
        .add_elements([stamped(row("a", 50, 0.0))])  # late, within the 120 s allowed
        .advance_watermark_to(T0 + 200)  # the window is now past end + lateness
        .add_elements([stamped(row("a", 55, -1.0))])  # too late: dropped
        .advance_watermark_to_infinity()
    )
    run_stream(
        stream,
        AggregateConfig(window_s=60, early_s=None, allowed_lateness_s=120),
        [("a", 0.0, "ON_TIME", 1, 1, 1.0), ("a", 0.0, "LATE", 2, 2, 0.5)],
    )


def test_combine_is_order_free():
    fn = ValenceCombineFn()
    rows = [row("a", i, v, c) for i, (v, c) in enumerate([(0.5, 1.0), (None, 0), (-0.5, 0.5)])]
    one = fn.create_accumulator()
    for r in rows:
        one = fn.add_input(one, r)
    parts = [fn.add_input(fn.create_accumulator(), r) for r in rows]
    assert fn.merge_accumulators(reversed(parts)) == one
    assert (one.segments, one.scored, one.min_v, one.max_v) == (3, 2, -0.5, 0.5)


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="window_s"):
        AggregateConfig(window_s=0)
    with pytest.raises(ValueError, match="allowed_lateness_s"):
        AggregateConfig(allowed_lateness_s=-1)

"""A stand-in for the models: sleeps ``$BENCH_FAKE_COST_S`` per event and emits a row per
5 s of a ``$BENCH_CLIP_S`` clip, built by the pipeline's own row builder
(``transforms.score.to_score_row``) with every modality off. It measures the runtime's
own overhead and memory. The stream loads it by path: ``--scorer fake_scorer.py:FakeScore``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

SEGMENT_S = 5.0


class _FakeScoreFn(beam.DoFn):
    def __init__(self, cost_s: float, clip_s: float) -> None:
        self._cost_s = cost_s
        self._clip_s = clip_s

    def setup(self) -> None:
        from sentistream.transforms.config import PipelineConfig

        self._config = PipelineConfig()

    def process(self, ref: Any) -> Iterator[Any]:
        from sentistream.transforms.policy import apply_policy
        from sentistream.transforms.records import SegmentRecord
        from sentistream.transforms.rows import to_score_row

        vid = ref.resolved_id
        n = max(1, int(self._clip_s // SEGMENT_S))
        config = dataclasses.replace(self._config.policy, policy_id="fake", rules=(("*", ()),))
        for i in range(n):
            time.sleep(self._cost_s / n)
            record = SegmentRecord(
                ref=ref,
                segment_id=f"{vid}-{i}",
                channel=0,
                speaker="unknown",
                start_s=SEGMENT_S * i,
                end_s=SEGMENT_S * (i + 1),
                segmenter="window",
                has_video=False,
                has_audio=False,
            )
            yield to_score_row(apply_policy(record, config), self._config, processed_at=time.time())


def FakeScore(config: Any) -> beam.PTransform:  # noqa: N802 - a transform factory
    cost = float(os.environ.get("BENCH_FAKE_COST_S", "0.2"))
    clip_s = float(os.environ.get("BENCH_CLIP_S", "30"))
    return beam.ParDo(_FakeScoreFn(cost, clip_s))

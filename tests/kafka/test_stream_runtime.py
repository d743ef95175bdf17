"""The local streaming runtime's own behaviour, with a stand-in scorer (no models): runs
are recycled without losing or repeating events; the loop runtime matches."""

from __future__ import annotations

import threading
import time

import apache_beam as beam
import pytest
from kafkatools import committed, consume, produce, score_row, settings_for

from sentistream.pipelines.stream.graph import StreamJob
from sentistream.pipelines.stream.loop import run_loop
from sentistream.pipelines.stream.runtime import run_streaming
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.io.events import encode_event

pytestmark = pytest.mark.kafka


class _OneRowPerEvent(beam.DoFn):
    def process(self, ref):
        yield score_row(f"{ref.video_id}-0", video_id=ref.video_id, processed_at=time.time())


def one_row_scorer(config: PipelineConfig) -> beam.PTransform:
    return beam.ParDo(_OneRowPerEvent())


def _settings(topics, tmp_path, **changes):
    return settings_for(topics, tmp_path / "out", check_exists=False, **changes)


@pytest.mark.slow
@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "forked"])
def test_streaming_runs_are_recycled_without_loss_or_repeats(topics, tmp_path, isolate):
    videos = [f"v{i}" for i in range(12)]

    def publish() -> None:
        for v in videos:
            produce(topics.bootstrap, topics.events, [encode_event(f"/m/{v}.mp4", video_id=v)])
            time.sleep(0.4)

    producer = threading.Thread(target=publish)
    producer.start()
    settings = _settings(topics, tmp_path, max_run_s=1.5, idle_timeout_s=1.2, isolate_runs=isolate)
    runs = run_streaming(StreamJob(settings, scorer=one_row_scorer))
    producer.join()
    assert runs >= 2
    rows = consume(topics.bootstrap, topics.scores, expect=len(videos) + 1, timeout_s=3)
    assert sorted(row["video_id"] for _, row in rows) == sorted(videos)
    assert committed(topics.bootstrap, topics.events, topics.group) == len(videos)


def test_loop_runtime_commits_each_batch_and_stops_when_idle(topics, tmp_path):
    videos = [f"v{i}" for i in range(5)]
    produce(
        topics.bootstrap, topics.events, [encode_event(f"/{v}.mp4", video_id=v) for v in videos]
    )
    settings = _settings(topics, tmp_path, runtime="loop", batch_events=2, idle_timeout_s=0.5)
    stats = run_loop(StreamJob(settings, scorer=one_row_scorer))
    assert (stats.events, stats.runs) == (5, 3)
    rows = consume(topics.bootstrap, topics.scores, expect=len(videos))
    assert sorted(row["video_id"] for _, row in rows) == videos
    assert committed(topics.bootstrap, topics.events, topics.group) == 5


class _FailsOnPoison(beam.DoFn):
    """A scoring step that raises (uncaught) for one event: a poison pill."""

    def process(self, ref):
        if "poison" in ref.uri:
            raise RuntimeError("boom: this event always breaks its run")
        yield score_row(f"{ref.video_id}-0", video_id=ref.video_id, processed_at=time.time())


def poison_scorer(config: PipelineConfig) -> beam.PTransform:
    return beam.ParDo(_FailsOnPoison())


def _poison_events() -> tuple[list[str], list[bytes]]:
    videos = ["v0", "v1", "bad", "v3", "v4"]
    events = [encode_event(f"/m/{'poison' if v == 'bad' else v}.mp4", video_id=v) for v in videos]
    return [v for v in videos if v != "bad"], events


def _check_poison_dead_lettered(topics, good: list[str]) -> None:
    rows = consume(topics.bootstrap, topics.scores, expect=len(good), timeout_s=5)
    assert sorted({row["video_id"] for _, row in rows}) == good  # retried runs may repeat
    (dead,) = [row for _, row in consume(topics.bootstrap, topics.dead_letters, expect=1)]
    assert dead["error_type"] == "poison_event" and dead["stage"] == "stream"
    assert dead["video_id"] == "bad" and "RuntimeError: boom" in dead["error"]
    assert "offset 2" in dead["error"] and "poison.mp4" in dead["payload"]
    assert committed(topics.bootstrap, topics.events, topics.group) == 5


def test_loop_runtime_dead_letters_a_poison_event_and_moves_on(topics, tmp_path):
    good, events = _poison_events()
    produce(topics.bootstrap, topics.events, events)
    settings = _settings(topics, tmp_path, runtime="loop", batch_events=2, idle_timeout_s=0.5)
    stats = run_loop(StreamJob(settings, scorer=poison_scorer))
    assert stats.events == 5
    _check_poison_dead_lettered(topics, good)


@pytest.mark.slow
def test_streaming_runtime_dead_letters_a_poison_event_after_bounded_restarts(topics, tmp_path):
    good, events = _poison_events()
    produce(topics.bootstrap, topics.events, events)
    settings = _settings(
        topics, tmp_path, max_run_s=3.0, idle_timeout_s=2.0, isolate_runs=False, batch_events=5
    )
    run_streaming(StreamJob(settings, scorer=poison_scorer))
    _check_poison_dead_lettered(topics, good)

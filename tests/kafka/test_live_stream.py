"""Live calls through the real stream job and a real broker: a live HLS playlist played
out in real time on a loopback HTTP server (FFmpeg's HLS muxer and demuxer, in PyAV),
and calls sent as chunk events. Rows must arrive while the call is still going on, with
partial rows replaced by final rows of the same ``segment_id``; a stalled or broken source
ends as a dead letter without hurting the other call."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from kafkatools import settings_for
from test_stream_e2e import stream_config

from sentistream.pipelines.demo.live import HlsPublisher, TopicTail, serve_folder
from sentistream.pipelines.stream.graph import StreamJob
from sentistream.pipelines.stream.runtime import run
from sentistream.transforms.config import LiveConfig, SegmentConfig
from sentistream.transforms.io.events import encode_event
from sentistream.transforms.io.live_events import encode_live_event

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SENTENCES = [
    "Hello, thank you for calling, I am happy to help you today.",
    "This is the third time I call and nothing works, I am really upset.",
]


def live_config(**live):
    config = stream_config()
    return dataclasses.replace(
        config,
        segment=SegmentConfig(prefer_captions=False),
        live=LiveConfig(allowed_hosts=("127.0.0.1",), stall_timeout_s=4.0, **live),
    )


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory) -> Path:
    """16 s of talking head with speech, a keyframe every second (HLS cuts at them)."""
    from sentistream.pipelines.demo.clips import spoken_clip

    path = tmp_path_factory.mktemp("live") / "call.mp4"
    spoken_clip(path, SENTENCES, duration_s=16.0, repeat=True, size=(320, 180), fps=10,
                captions=False, keyframe_s=1.0)  # fmt: skip
    return path


def _stream(topics, out, config) -> threading.Thread:
    settings = settings_for(
        topics, out, runtime="streaming", idle_timeout_s=3.0, isolate_runs=False
    )
    thread = threading.Thread(target=run, args=(StreamJob(settings, config),), daemon=True)
    thread.start()
    return thread


def test_live_hls_rows_arrive_during_the_call_and_a_stall_is_a_dead_letter(
    topics, live_clip, tmp_path
):
    from kafkatools import produce

    folder = tmp_path / "www"
    scores = TopicTail(topics.bootstrap, topics.scores)
    calls = TopicTail(topics.bootstrap, topics.calls)
    dead = TopicTail(topics.bootstrap, topics.dead_letters)
    stream = _stream(topics, tmp_path / "out", live_config())
    # A finished recording first: once its rows are out, the models are loaded.
    produce(topics.bootstrap, topics.events, [encode_event(str(live_clip), video_id="warm")])
    scores.wait_for(lambda row: row["video_id"] == "warm", timeout_s=180)
    with (
        serve_folder(folder) as base,
        HlsPublisher(live_clip, folder / "good") as good,
        HlsPublisher(live_clip, folder / "stalls", stall_after_s=6.0) as stalls,
    ):
        events = [
            encode_live_event(f"{base}/good/index.m3u8", video_id="good"),
            encode_live_event(f"{base}/stalls/index.m3u8", video_id="stalls"),
            encode_live_event("http://192.0.2.1/not-allowed.m3u8", video_id="refused"),
        ]
        produce(topics.bootstrap, topics.events, events)
        good.wait(60)
        ended_at = time.time()
        stream.join(timeout=120)
        assert stalls.error is None and good.error is None
    assert not stream.is_alive()
    rows = scores.stop()
    by_call = {vid: [r for r in rows if r[1]["video_id"] == vid] for vid in ("good", "stalls")}
    good_rows = by_call["good"]
    assert good_rows, "no rows for the live call"
    # Rows came while the call was on: the first one long before it ended.
    assert good_rows[0][0] < ended_at - 8.0
    final = [r for _, r in good_rows if not r["partial"]]
    partial = [r for _, r in good_rows if r["partial"]]
    assert partial, "no partial row for a turn still open"
    final_ids = [r["segment_id"] for r in final]
    assert len(final_ids) == len(set(final_ids))
    assert {r["segment_id"] for r in partial} <= set(final_ids)
    order = [(r["segment_id"], r["partial"]) for _, r in good_rows]
    for p in partial:  # a partial row is on the topic before its final row
        key = p["segment_id"]
        assert order.index((key, True)) < order.index((key, False))
    assert all(r["transcript"] for r in final if r["segmenter"] == "vad")
    # The stalled call: rows up to the stall, then a dead letter saying it stalled.
    assert by_call["stalls"]
    assert max(r["end_s"] for _, r in by_call["stalls"]) < 8.0
    letters = {r["video_id"]: r for _, r in dead.stop()}
    assert "stalled" in letters["stalls"]["error"]
    assert "not one of the allowed live hosts" in letters["refused"]["error"]
    assert "good" not in letters
    summaries = {r["video_id"]: r for _, r in calls.stop()}
    assert summaries["good"]["complete"] is True
    assert summaries["stalls"]["complete"] is False
    assert summaries["good"]["talk_time_s"] > 8.0

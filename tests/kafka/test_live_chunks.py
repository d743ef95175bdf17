"""Calls sent as chunk events through the real broker: reassembled in order (a chunk sent
twice, two swapped), a garbage chunk and a missing chunk recorded as dead letters and
gaps while the call goes on, and a stream job killed mid-call and restarted: it reads the
open call again from its first chunk, so no segment is lost and the repeated rows
collapse by ``segment_id``."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from kafkatools import committed, consume, settings_for
from test_live_stream import live_config
from test_stream_e2e import _stream_process

from sentistream.pipelines.demo.live import TopicTail, chunk_recording, publish_chunks
from sentistream.pipelines.stream.graph import StreamJob
from sentistream.pipelines.stream.runtime import run
from sentistream.transforms.config import DecodeConfig, LiveConfig, PolicyConfig, SegmentConfig
from sentistream.transforms.io.chunks import CallChunk
from sentistream.transforms.io.live_holds import LiveHolds
from sentistream.transforms.live import LiveCalls
from sentistream.transforms.records import SegmentRecord

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
CHUNK_S = 2.0


@pytest.fixture(scope="module")
def chunks(tmp_path_factory) -> list[bytes]:
    from kafkatools import make_clip
    from test_live_stream import SENTENCES

    folder = tmp_path_factory.mktemp("chunks")
    clip = make_clip(folder / "call.mp4", SENTENCES * 2, duration_s=20.0)
    return chunk_recording(clip, CHUNK_S)


def _producer(bootstrap: str):
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap, acks="all")


def test_chunked_calls_reassembled_with_gaps_recorded(topics, chunks, tmp_path):
    config = live_config(gap_timeout_s=2.0)
    scores = TopicTail(topics.bootstrap, topics.scores)
    calls = TopicTail(topics.bootstrap, topics.calls)
    dead = TopicTail(topics.bootstrap, topics.dead_letters)
    settings = settings_for(
        topics, tmp_path / "out", runtime="streaming", idle_timeout_s=4.0, isolate_runs=False
    )
    stream = threading.Thread(target=run, args=(StreamJob(settings, config),), daemon=True)
    stream.start()
    n = len(chunks)
    swapped = [0, 1, 3, 2, 4, 4, *range(5, n)]  # 4 twice, 2 and 3 swapped
    spoiled = list(chunks)
    spoiled[3] = np.random.default_rng(1).bytes(len(chunks[3]))  # garbage mid-call
    lossy = [s for s in range(n) if s != 6]  # chunk 6 never comes
    producer = _producer(topics.bootstrap)
    senders = [
        threading.Thread(
            target=publish_chunks,
            args=(producer, topics.events, call_id, media),
            kwargs={"chunk_s": CHUNK_S, "order": order},
        )
        for call_id, media, order in (("clean", chunks, swapped), ("lossy", spoiled, lossy))
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    stream.join(timeout=120)
    producer.close()
    assert not stream.is_alive()

    rows = [r for _, r in scores.stop()]
    final = {
        vid: [r for r in rows if r["video_id"] == vid and not r["partial"]]
        for vid in ("clean", "lossy")
    }
    expected = _reference(chunks, "clean", config.live)
    assert [r["segment_id"] for r in final["clean"]] == [s.segment_id for s in expected]
    assert [(r["start_s"], r["end_s"]) for r in final["clean"]] == [
        (s.start_s, s.end_s) for s in expected
    ]
    letters = [r for _, r in dead.stop()]
    assert {r["video_id"] for r in letters} == {"lossy"}
    reasons = sorted(r["error"] for r in letters)
    assert any("chunk 3 " in e and "cannot be used" in e for e in reasons), reasons
    assert any("chunk 6 " in e and "never arrived" in e for e in reasons), reasons
    # No row of the lossy call covers the missing stretches (chunks 3 and 6).
    for r in final["lossy"]:
        for seq in (3, 6):
            assert r["end_s"] <= seq * CHUNK_S + 0.05 or r["start_s"] >= (seq + 1) * CHUNK_S - 0.05
    summaries = {r["video_id"]: r for _, r in calls.stop()}
    assert summaries["clean"]["complete"] is True
    assert summaries["lossy"]["complete"] is False


def _reference(chunks: list[bytes], call_id: str, live: LiveConfig) -> list[SegmentRecord]:
    """The final records of the call decoded in one go, in order (no Beam, no broker),
    with the decode settings of ``stream_config`` and of the CLI in ``_stream_process``."""
    calls = LiveCalls(
        DecodeConfig(fps=1.0, max_side=320),
        SegmentConfig(prefer_captions=False),
        PolicyConfig(),
        live,
        holds=LiveHolds(),
    )
    out = []
    for seq, data in enumerate(chunks):
        chunk = CallChunk(call_id, seq, data=data, final=seq == len(chunks) - 1)
        out += calls.add_chunk(chunk)
    return [r for r in out if isinstance(r, SegmentRecord) and not r.partial]


def test_killed_mid_call_the_restarted_job_reads_the_call_again(topics, chunks, tmp_path):
    out = tmp_path / "out"
    producer = _producer(topics.bootstrap)
    sender = threading.Thread(
        target=publish_chunks,
        args=(producer, topics.events, "call", chunks),
        kwargs={"chunk_s": CHUNK_S},
    )
    first = _stream_process(topics, out, "--no-captions")
    try:
        sender.start()
        time.sleep(1.0)
        deadline = time.monotonic() + 120
        while len(consume(topics.bootstrap, topics.scores, expect=3, timeout_s=1)) < 3:
            assert time.monotonic() < deadline, "no rows within 120 s"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # mid-call: no flush, no commit
        first.wait(timeout=30)
    before = {
        r["segment_id"]
        for _, r in consume(topics.bootstrap, topics.scores, expect=10**6, timeout_s=2)
    }
    assert committed(topics.bootstrap, topics.events, topics.group) in (None, 0)  # held
    second = _stream_process(topics, out, "--no-captions", "--idle-timeout", "4")
    sender.join()
    assert second.wait(timeout=300) == 0
    producer.close()

    rows = [r for _, r in consume(topics.bootstrap, topics.scores, expect=10**6, timeout_s=3)]
    latest = {r["segment_id"]: r for r in rows}  # what a compacted topic keeps
    final_ids = {k for k, r in latest.items() if not r["partial"]}
    expected = {s.segment_id for s in _reference(chunks, "call", LiveConfig())}
    assert final_ids == expected  # no segment lost, none invented
    assert before & expected  # rows from before the kill came again, under the same ids
    assert len(rows) > len(latest)
    assert committed(topics.bootstrap, topics.events, topics.group) == len(chunks)


def test_the_loop_runtime_dead_letters_live_events(topics, chunks, tmp_path):
    from kafkatools import produce

    from sentistream.transforms.io.live_events import encode_chunk_event, encode_live_event

    events = [
        encode_live_event("http://127.0.0.1:9/live.m3u8", video_id="url-call"),
        encode_chunk_event("chunk-call", 0, data=chunks[0]),
    ]
    produce(topics.bootstrap, topics.events, events)
    settings = settings_for(topics, tmp_path / "out", runtime="loop", max_events=2)
    run(StreamJob(settings, live_config()))
    letters = [row for _, row in consume(topics.bootstrap, topics.dead_letters, expect=2)]
    assert sorted(r["video_id"] for r in letters) == ["chunk-call", "url-call"]
    assert {r["error_type"] for r in letters} == {"live_needs_streaming"}
    assert committed(topics.bootstrap, topics.events, topics.group) == 2

"""The pure parts of live calls: partial rows under their final row's id, gaps that
close turns without inventing media, the commit holds, live event parsing and the
live-host allowlist."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from sentistream.models.audio import SAMPLE_RATE as RATE
from sentistream.pipelines.demo import synth
from sentistream.transforms.config import LiveConfig, PolicyConfig, SegmentConfig
from sentistream.transforms.io.chunks import CallChunk
from sentistream.transforms.io.events import EventError, parse_event
from sentistream.transforms.io.live_events import encode_chunk_event, encode_live_event
from sentistream.transforms.io.live_holds import LiveHolds
from sentistream.transforms.media.decoding import MediaChunk, MediaInfo
from sentistream.transforms.media.limits import MediaLimitError, check_live_uri
from sentistream.transforms.recording import RecordingSegments
from sentistream.transforms.records import VideoRef

INFO = MediaInfo(False, True, 1, None, None, None, None, "wav")


@pytest.fixture(scope="module")
def talk() -> np.ndarray:
    """12 s: a long sentence from 1 s, a pause, another from about 8 s."""
    track = np.zeros(12 * RATE, np.float32)
    for text, start in (
        (
            "I have been waiting for my refund for three weeks now and "
            "nobody ever calls me back about it.",
            1.0,
        ),
        ("Thank you.", 9.0),
    ):
        audio, rate = synth.tts(text)
        piece = synth.resample(synth.trim_silence(audio), rate, RATE)[: 7 * RATE]
        i = round(start * RATE)
        track[i : i + piece.size] = piece[: track.size - i]
    return track


def feed(recording: RecordingSegments, audio: np.ndarray, chunk_s: float, *, final=True):
    out = []
    n = round(audio.size / RATE / chunk_s)
    for k in range(n):
        a, b = k * chunk_s, (k + 1) * chunk_s
        piece = audio[None, round(a * RATE) : round(b * RATE)]
        out += recording.feed(MediaChunk(a, b, piece, (), final=final and k == n - 1))
    return out


def segments(partial_every_s: float = 1.0) -> RecordingSegments:
    ref = VideoRef(uri="chunks:c", video_id="c", live=True)
    cfg = SegmentConfig(prefer_captions=False)
    return RecordingSegments(ref, INFO, cfg, PolicyConfig(), partial_every_s=partial_every_s)


def test_partial_rows_share_the_id_of_their_final_row(talk):
    records = feed(segments(), talk, 0.5)
    partial = [r for r in records if r.partial]
    final = [r for r in records if not r.partial]
    assert len(partial) >= 3  # a 6 s turn, a partial row every second of it
    final_ids = {r.segment_id for r in final}
    assert {r.segment_id for r in partial} <= final_ids
    for p in partial:
        f = next(r for r in final if r.segment_id == p.segment_id)
        # A partial row covers the audio so far: at most the silence that closes the turn
        # (min_silence_ms + speech_pad_ms, plus a VAD window) past the final end.
        assert abs(p.start_s - f.start_s) < 0.5 and p.end_s <= f.end_s + 0.6
        assert p.audio is not None and p.audio.size == round((p.end_s - p.start_s) * RATE)
    ends = [p.end_s for p in partial if p.segment_id == partial[0].segment_id]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)  # it grows
    # The final rows are those of a recording without partials.
    plain = [r for r in feed(segments(0.0), talk, 0.5) if not r.partial]
    assert [(r.start_s, r.end_s) for r in plain] == [(r.start_s, r.end_s) for r in final]


def test_a_gap_closes_the_turn_and_no_row_covers_it(talk):
    recording = segments(0.0)
    records = feed(recording, talk[: 4 * RATE], 0.5, final=False)  # mid-sentence
    records += recording.gap(4.0, 6.0)
    rest = talk[6 * RATE :]
    for k in range(12):
        a = 6.0 + k * 0.5
        piece = rest[None, round(k * 0.5 * RATE) : round((k + 1) * 0.5 * RATE)]
        records += recording.feed(MediaChunk(a, a + 0.5, piece, (), final=k == 11))
    assert records
    for r in records:
        assert r.end_s <= 4.0 + 1e-6 or r.start_s >= 6.0 - 1e-6, (r.start_s, r.end_s)
    assert any(r.end_s == pytest.approx(4.0, abs=0.05) for r in records)  # closed at the gap
    end = recording.end()
    assert end.complete is False and end.duration_s == pytest.approx(12.0)


def test_commit_point_never_passes_an_open_call_nor_splits_a_closed_one():
    holds = LiveHolds()
    holds.hold("a", ("t", 0, 0))
    holds.hold("b", ("t", 0, 5))
    for offset in (6, 7, 8):
        holds.hold("a", ("t", 0, offset))
    assert holds.active()
    assert holds.commit_point("t", 0, 12) == 0  # a is open from 0
    holds.release("a")
    # b is open from 5, and a (closed) has chunks at 6..8: a restart at 5 would read a's
    # tail without its start, so the point stays at a's first chunk.
    assert holds.commit_point("t", 0, 12) == 0
    holds.release("b")
    assert not holds.active()
    assert holds.commit_point("t", 0, 12) == 12
    assert holds.commit_point("t", 1, 3) == 3  # other partitions are not held
    holds.hold("c", None)  # not from Kafka: nothing to hold
    assert not holds.active()


def test_live_events_parse_and_bad_ones_say_why():
    ref = parse_event(encode_live_event("https://cdn.example/c7/index.m3u8", video_id="c7"))
    assert isinstance(ref, VideoRef) and ref.live and ref.resolved_id == "c7"
    legacy = parse_event(json.dumps({"uri": "rtsp://cam.example/1", "live": True}))
    assert isinstance(legacy, VideoRef) and legacy.live
    data = b"RIFF....WAVE"
    chunk = parse_event(encode_chunk_event("c8", 3, data=data, start_s=6.0, final=True,
                                           channel_roles=("agent", "customer")))  # fmt: skip
    assert isinstance(chunk, CallChunk)
    assert (chunk.call_id, chunk.seq, chunk.data, chunk.final, chunk.start_s) == (
        "c8", 3, data, True, 6.0
    )  # fmt: skip
    assert chunk.ref is not None and chunk.ref.channel_roles == ("agent", "customer")
    bad = {
        '{"live_uri": "/local/file.mp4"}': "not a live protocol",
        '{"call_id": "c", "seq": -1, "chunk_uri": "/x.wav"}': "seq must be",
        '{"call_id": "c", "seq": 0}': "exactly one of chunk_uri, chunk_b64",
        '{"call_id": "c", "seq": 0, "chunk_b64": "not base64!"}': "base64",
        '{"call_id": "c", "seq": 0, "chunk_uri": "/x.wav", "final": "yes"}': "final must",
        '{"call_id": "c", "seq": 0, "chunk_uri": "/x.wav", "start_s": -2}': "start_s must",
    }
    for raw, why in bad.items():
        with pytest.raises(EventError, match=why):
            parse_event(raw)
    assert base64.b64decode(json.loads(encode_chunk_event("c", 0, data=data))["chunk_b64"]) == data


def test_live_urls_are_refused_unless_their_host_is_allowed():
    with pytest.raises(MediaLimitError, match="live URLs are off"):
        check_live_uri("https://cdn.example/a.m3u8", LiveConfig().allowed_hosts)
    with pytest.raises(MediaLimitError, match="not one of the allowed live hosts"):
        check_live_uri("https://cdn.example/a.m3u8", ("127.0.0.1",))
    with pytest.raises(MediaLimitError, match="not a live protocol"):
        check_live_uri("file:///etc/passwd", ("*",))
    check_live_uri("https://CDN.example/a.m3u8", ("cdn.example",))
    check_live_uri("srt://10.0.0.9:9000", ("*",))


def test_a_chunked_call_without_its_final_chunk_ends_when_idle(talk):
    from sentistream.pipelines.demo.live import wav_bytes
    from sentistream.transforms.config import DecodeConfig
    from sentistream.transforms.live import LiveCalls
    from sentistream.transforms.records import DeadLetter, RecordingEnd

    now = [0.0]
    live = LiveConfig(idle_timeout_s=30.0, max_calls=1)
    calls = LiveCalls(DecodeConfig(fps=0), SegmentConfig(prefer_captions=False),
                      PolicyConfig(), live, holds=LiveHolds(), clock=lambda: now[0])  # fmt: skip
    out = []
    for seq in range(3):  # 6 s of the call, then the producer goes away
        data = wav_bytes(talk[None, seq * 2 * RATE : (seq + 1) * 2 * RATE])
        out += calls.add_chunk(CallChunk("gone", seq, data=data))
        now[0] += 2.0
    other = calls.add_chunk(CallChunk("other", 0, data=wav_bytes(talk[None, :RATE])))
    assert len(other) == 1 and "max_calls" in other[0].error  # one call per worker here
    assert calls.poll() == []  # not idle yet
    now[0] += 31.0
    ended = calls.poll()
    letters = [e for e in ended if isinstance(e, DeadLetter)]
    assert len(letters) == 1 and "no final chunk" in letters[0].error
    end = ended[-1]
    assert isinstance(end, RecordingEnd) and end.complete is False
    assert end.duration_s == pytest.approx(6.0, abs=0.01)
    assert calls.open_calls == 0


def test_a_chunked_call_over_the_length_limit_is_cut(talk):
    from sentistream.pipelines.demo.live import wav_bytes
    from sentistream.transforms.config import DecodeConfig
    from sentistream.transforms.live import LiveCalls
    from sentistream.transforms.records import DeadLetter, RecordingEnd

    calls = LiveCalls(DecodeConfig(fps=0), SegmentConfig(prefer_captions=False),
                      PolicyConfig(), LiveConfig(max_s=3.0), holds=LiveHolds())  # fmt: skip
    out = []
    for seq in range(4):
        data = wav_bytes(talk[None, seq * 2 * RATE : (seq + 1) * 2 * RATE])
        out.append(calls.add_chunk(CallChunk("long", seq, data=data)))
    cut = out[1]
    assert any(isinstance(e, DeadLetter) and "max_s limit" in e.error for e in cut)
    assert isinstance(cut[-1], RecordingEnd) and cut[-1].complete is False
    assert out[2] == out[3] == [] and calls.open_calls == 0  # later chunks are ignored

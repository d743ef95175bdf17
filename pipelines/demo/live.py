"""Live sources to try the live path with (and to test and benchmark it): a recording
played out in real time as a live HLS playlist on a loopback HTTP server, and a call
published as numbered chunk events, the producer side of ``transforms/io/live_events.py``.

    with serve_folder(folder) as base_url:
        with HlsPublisher(recording, folder / "call") as hls:   # starts playing out
            url = f"{base_url}/call/index.m3u8"                  # -> a live_uri event

``HlsPublisher`` remuxes the recording's packets (no re-encoding: give it video with a
keyframe every second or so, e.g. ``write_media(..., video_options={"g": "25"})``) into
``hls_time``-second MPEG-TS segments, each written when the wall clock reaches its media
time, into an ``EVENT`` playlist (every segment stays listed). ``stall_after_s`` stops
writing without ending the playlist (a stalled source); ``loops`` plays the recording
over again (a long stream from a short clip); ``speed`` > 1 plays faster than real time.

``chunk_recording`` cuts a recording into WAV chunks and ``publish_chunks`` sends them as
chunk events, in real time or as fast as asked: what a SIP/RTP recorder or a microphone
capture would do (docs/live.md has a microphone example).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from sentistream.models.audio import SAMPLE_RATE


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@contextlib.contextmanager
def serve_folder(folder: str | Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) while in the block; yields
    the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="hls-http")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class HlsPublisher:
    """Play ``source`` out as a live HLS playlist ``folder/index.m3u8`` in real time (a
    thread); see the module docstring. ``started_at``: the wall-clock time of media t = 0
    (``time.time()``), so a reader can tell when each word was spoken; ``offsets``: the
    media time each play of the recording starts at."""

    def __init__(
        self,
        source: str | Path,
        folder: str | Path,
        *,
        hls_time: float = 1.0,
        stall_after_s: float | None = None,
        speed: float = 1.0,
        loops: int = 1,
    ) -> None:
        self.source, self.folder = str(source), Path(folder)
        self.hls_time, self.speed, self.loops = hls_time, speed, loops
        self.stall_after_s = stall_after_s
        self.started_at: float | None = None
        self.offsets: list[float] = []  # where each play of the recording starts
        self._stalled: Any = None
        self._streams: dict[int, Any] = {}
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hls-publisher")

    @property
    def playlist(self) -> Path:
        return self.folder / "index.m3u8"

    def __enter__(self) -> HlsPublisher:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        while self.started_at is None and self._thread.is_alive():
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait(self, timeout: float | None = None) -> None:
        """Until the whole recording was played out (or it stalled or failed)."""
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._play()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            self.error = exc

    def _play(self) -> None:
        options = {
            "hls_time": str(self.hls_time),
            "hls_list_size": "0",
            "hls_playlist_type": "event",
            "hls_segment_filename": str(self.folder / "seg%05d.ts"),
        }
        out = av.open(str(self.playlist), "w", format="hls", options=options)
        ended, offset = True, 0.0
        for _ in range(self.loops):
            self.offsets.append(offset)
            with av.open(self.source) as inp:
                ended, length = self._play_once(inp, out, offset)
            if not ended:
                break
            offset += length
        if ended:
            out.close()  # writes #EXT-X-ENDLIST
        else:
            self._stalled = out  # never closed, never collected: no ENDLIST

    def _play_once(self, inp: Any, out: Any, offset: float) -> tuple[bool, float]:
        """Mux ``inp``'s packets at ``offset`` s, each when its time comes; (whether it
        played to its end, how far the next play must be shifted: past its last packet,
        and past its first decoding time, which B-frames put before 0)."""
        if not self._streams:
            self._streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
            self.started_at = time.time()
        end, first = 0.0, 0.0
        for packet in inp.demux():
            if packet.dts is None or self._stop.is_set():
                continue
            base = packet.time_base
            t = float(packet.pts * base) if packet.pts is not None else 0.0
            if self.stall_after_s is not None and offset + t >= self.stall_after_s:
                return False, end - first  # stop writing, leave the playlist open: a stall
            assert self.started_at is not None
            wait = self.started_at + (offset + t) / self.speed - time.time()
            if wait > 0:
                time.sleep(wait)
            end = max(end, t + float((packet.duration or 0) * base))
            first = min(first, float(packet.dts * base))
            shift = round(offset / base)
            packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
            packet.stream = self._streams[packet.stream.index]
            out.mux(packet)
        return True, end - first


class TopicTail:
    """Reads ``topic`` (partition 0) from its start in a thread and keeps each record as
    (arrival time, JSON value): the consumer side, for watching rows arrive live."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.rows: list[tuple[float, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(bootstrap, topic), daemon=True, name=f"tail-{topic}"
        )
        self._thread.start()

    def _run(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        try:
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=50).values():
                    now = time.time()
                    self.rows.extend((now, json.loads(r.value)) for r in records)
        finally:
            consumer.close(autocommit=False)

    def wait_for(self, match: Any, timeout_s: float) -> None:
        """Until a row with ``match(row)`` arrived; ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not any(match(row) for _, row in self.rows):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching row within {timeout_s:.0f} s")
            time.sleep(0.1)

    def stop(self, linger_s: float = 1.0) -> list[tuple[float, dict[str, Any]]]:
        """Read for ``linger_s`` more, stop, and return the rows."""
        time.sleep(linger_s)
        self._stop.set()
        self._thread.join(timeout=10)
        return self.rows


def chunk_recording(source: str | Path, chunk_s: float = 2.0) -> list[bytes]:
    """The audio of ``source`` as 16 kHz WAV files of ``chunk_s`` seconds (every
    channel kept), in order: the chunks a recorder would publish."""
    from sentistream.transforms.config import DecodeConfig
    from sentistream.transforms.media.decoding import MediaChunk, iter_chunks

    pieces: list[np.ndarray] = []
    with open(source, "rb") as f:
        for chunk in iter_chunks(f, DecodeConfig(fps=0, chunk_s=chunk_s)):
            if isinstance(chunk, MediaChunk) and chunk.audio is not None:
                pieces.append(chunk.audio)
    return [wav_bytes(p) for p in pieces if p.shape[1]]


def wav_bytes(audio: np.ndarray) -> bytes:
    """(channels, samples) float32 at 16 kHz -> the bytes of a 16-bit WAV file."""
    buf = io.BytesIO()
    buf.name = "chunk.wav"
    with av.open(buf, "w", format="wav") as out:
        layout = "mono" if audio.shape[0] == 1 else "stereo"
        stream = out.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(audio, np.float32), format="fltp", layout=layout
        )
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def publish_chunks(
    producer: Any,
    topic: str,
    call_id: str,
    chunks: Sequence[bytes],
    *,
    chunk_s: float,
    realtime: bool = True,
    channel_roles: tuple[str, ...] | None = None,
    order: Sequence[int] | None = None,
) -> list[float]:
    """Send ``chunks`` of a call as chunk events (inline) on ``topic``, keyed by the call
    id; each when its media has been "spoken" if ``realtime``. ``order``: the seqs in the
    order to send them (default 0, 1, ...; repeats and omissions allowed, for tests).
    Returns the wall-clock time each chunk was sent."""
    from sentistream.transforms.io.live_events import encode_chunk_event

    sent: list[float] = []
    started = time.time()
    last = len(chunks) - 1
    for i in order if order is not None else range(len(chunks)):
        if realtime:
            time.sleep(max(0.0, started + (i + 1) * chunk_s - time.time()))
        event = encode_chunk_event(
            call_id, i, data=chunks[i], final=i == last, channel_roles=channel_roles
        )
        producer.send(topic, key=call_id.encode(), value=event)
        producer.flush()
        sent.append(time.time())
    return sent

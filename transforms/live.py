"""Live calls inside the decode step: rows while the call is still going on.

Two kinds of live input reach the decode step (``DecodeAndSegmentFn``) as elements:

* a ``VideoRef`` with ``live=True``: a stream URL (HLS, RTSP, RTMP, SRT, ...). A reader
  thread per call decodes it as it arrives (``iter_live_chunks``) and segments it
  (``RecordingSegments``), and puts the records on a bounded queue;
* a ``CallChunk``: one numbered chunk of a call's media from a chunk event. The chunks
  of each call go through a ``ChunkAssembler`` (in order, once each, gaps recorded) and
  are decoded and segmented where they arrive.

``LiveCalls.poll`` hands over what is ready, and the decode step calls it for every
element and at every bundle end, so the rows of a turn leave at the next bundle end after
it closes (the Kafka source ends bundles every ``LIVE_BUNDLE_S`` while calls are open).
A turn still open gets ``partial`` records every ``LiveConfig.partial_every_s``.

Every call ends with its ``RecordingEnd`` (the call-level rows), after a ``DeadLetter``
when it ended badly: a stall, garbage, a missing stretch, a limit; the rows so far stand
and the other calls go on. Each open call holds back the Kafka commit of its first event
(``transforms/io/live_holds.py``), so a restarted job reads it again from its start.

Memory per call: the assembler's held chunks (``max_held``), the reader's queue
(``QUEUE_RECORDS``) and the segmenter's longest open turn; none of it grows with the
call's length.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from apache_beam.io.filesystems import FileSystems

from sentistream.transforms.config import (
    DecodeConfig,
    LiveConfig,
    PolicyConfig,
    SegmentConfig,
)
from sentistream.transforms.io.chunks import CallChunk, CallEnd, ChunkAssembler, Gap
from sentistream.transforms.io.live_holds import HOLDS, LiveHolds
from sentistream.transforms.media.decoding import MediaChunk, MediaInfo, iter_chunks
from sentistream.transforms.media.limits import check_allowed
from sentistream.transforms.media.live import iter_live_chunks
from sentistream.transforms.recording import RecordingSegments
from sentistream.transforms.records import INPUTS, DeadLetter, Element, VideoRef

_LOG = logging.getLogger(__name__)

STAGE_LIVE = "live"
#: Records a URL call's reader may have waiting; past this the reader waits (and falls
#: behind the live edge) instead of growing memory.
QUEUE_RECORDS = 64
#: A chunk starting later than this after the previous one ended leaves a recorded gap.
HOLE_TOLERANCE_S = 0.05
#: Largest chunk of a chunked call, by reference or inline.
MAX_CHUNK_BYTES = 64 << 20


class LiveError(ValueError):
    """Why a live call (or part of it) could not be used; the message says what to fix."""


@dataclass
class _UrlCall:
    ref: VideoRef
    records: queue.Queue[Element | None] = field(default_factory=lambda: queue.Queue(QUEUE_RECORDS))
    thread: threading.Thread | None = None


@dataclass
class _ChunkCall:
    ref: VideoRef
    segments: RecordingSegments | None = None
    at_s: float = 0.0  # where the next chunk starts in the call
    chunks: int = 0  # decoded so far, and their total length: the estimate of a gap
    chunks_s: float = 0.0


class LiveCalls:
    """The open live calls of one decode step instance; see the module docstring.

    Args:
        decode_cfg / segment_cfg / policy_cfg / live_cfg: the pipeline's configuration.
        carry: the inputs the records carry (``transforms/plan.py``).
        holds: the process's commit holds (``HOLDS``; tests pass their own).
        clock: monotonic seconds, for the chunk timeouts.
    """

    def __init__(
        self,
        decode_cfg: DecodeConfig,
        segment_cfg: SegmentConfig,
        policy_cfg: PolicyConfig,
        live_cfg: LiveConfig,
        carry: Iterable[str] = tuple(INPUTS),
        *,
        holds: LiveHolds = HOLDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._decode_cfg, self._segment_cfg = decode_cfg, segment_cfg
        self._policy_cfg, self._live = policy_cfg, live_cfg
        # Chunks and live URLs are cut in the short live pieces.
        self._chunk_decode = dataclasses.replace(decode_cfg, chunk_s=live_cfg.chunk_s)
        self._carry = tuple(carry)
        self._holds, self._clock = holds, clock
        self._urls: dict[str, _UrlCall] = {}
        self._chunked: dict[str, _ChunkCall] = {}
        self._assembler = ChunkAssembler(
            live_cfg.gap_timeout_s, live_cfg.idle_timeout_s, live_cfg.max_held
        )
        self._stop = threading.Event()

    @property
    def open_calls(self) -> int:
        return len(self._urls) + len(self._chunked)

    # ------------------------------------------------------------ live URLs

    def start_url(self, ref: VideoRef) -> list[Element]:
        """Start reading a live URL in its own thread; a dead letter if it is refused."""
        call_id = ref.resolved_id
        if call_id in self._urls:
            return []  # the same event again (a retried produce): the call already runs
        refused = self._refuse(ref)
        if refused is not None:
            return [refused]
        call = _UrlCall(ref)
        call.thread = threading.Thread(
            target=self._read_url, args=(call,), name=f"live-{call_id}", daemon=True
        )
        self._urls[call_id] = call
        self._holds.hold(call_id, ref.origin)
        call.thread.start()
        return []

    def _refuse(self, ref: VideoRef) -> DeadLetter | None:
        if self.open_calls >= self._live.max_calls:
            error = LiveError(
                f"{self.open_calls} live calls are open on this worker, the max_calls limit "
                "(--live-max-calls); run more workers or raise it"
            )
            return DeadLetter.from_error(ref, STAGE_LIVE, error)
        return None

    def _read_url(self, call: _UrlCall) -> None:
        """The reader thread: decode, segment, queue; always ends with the call's end."""
        ref = call.ref
        segments: RecordingSegments | None = None
        ended_well = False
        try:
            chunks = iter_live_chunks(ref.uri, self._decode_cfg, self._live)
            info = next(chunks)
            assert isinstance(info, MediaInfo)
            segments = self._segments(ref, info)
            for chunk in chunks:
                assert isinstance(chunk, MediaChunk)
                for record in segments.feed(chunk):
                    self._put(call, record)
                if self._stop.is_set():
                    return
            ended_well = True
        except Exception as exc:  # noqa: BLE001 - any failure ends this call alone
            _LOG.warning("live call %s ended by %s: %s", ref.resolved_id, type(exc).__name__, exc)
            done = segments.emitted if segments is not None else 0
            detail = f" after {done} segments; the rows so far stand" if done else ""
            self._put(call, DeadLetter.from_error(ref, STAGE_LIVE, exc, detail=detail))
        if segments is not None:
            for record in segments.flush():  # the turns still open end where media did
                self._put(call, record)
            if segments.emitted:
                self._put(call, segments.end(complete=ended_well))
        self._put(call, None)  # the reader is done

    def _put(self, call: _UrlCall, item: Element | None) -> None:
        while not self._stop.is_set():
            try:
                call.records.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _drain_urls(self) -> list[Element]:
        out: list[Element] = []
        for call_id, call in list(self._urls.items()):
            while True:
                try:
                    item = call.records.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    del self._urls[call_id]
                    self._holds.release(call_id)
                    break
                out.append(item)
        return out

    # ------------------------------------------------------------ chunked calls

    def add_chunk(self, chunk: CallChunk) -> list[Element]:
        """One chunk event: what it (and anything it unblocked) makes ready."""
        ref = chunk.ref or VideoRef(uri=f"chunks:{chunk.call_id}", video_id=chunk.call_id)
        if chunk.call_id not in self._chunked and self._assembler.is_new(chunk.call_id):
            refused = self._refuse(ref)
            if refused is not None:
                return [refused]
            self._chunked[chunk.call_id] = _ChunkCall(dataclasses.replace(ref, live=True))
        if chunk.call_id in self._chunked:
            self._holds.hold(chunk.call_id, chunk.origin)
        return self._released(self._assembler.add(chunk, self._clock()))

    def _released(self, items: Iterable[CallChunk | Gap | CallEnd]) -> list[Element]:
        out: list[Element] = []
        for item in items:
            call = self._chunked.get(item.call_id)
            if call is None:
                continue
            if isinstance(item, CallChunk):
                out += self._decode_chunk(call, item)
            elif isinstance(item, Gap):
                out += self._gap(call, item.first_seq, item.last_seq, "never arrived")
            else:
                out += self._end_chunked(item)
        return out

    def _decode_chunk(self, call: _ChunkCall, chunk: CallChunk) -> list[Element]:
        """Decode one chunk and feed it at the call's clock; a chunk that cannot be used
        is a dead letter and a gap of its estimated length."""
        try:
            data = self._chunk_bytes(chunk)
            pieces = iter_chunks(io.BytesIO(data), self._chunk_decode)
            info = next(pieces)
            assert isinstance(info, MediaInfo)
            if call.segments is None:
                call.segments = self._segments(call.ref, info)
            elif info.channels != call.segments.info.channels:
                raise LiveError(
                    f"chunk has {info.channels} audio channels, the call's first chunk "
                    f"{call.segments.info.channels}"
                )
            decoded = [p for p in pieces if isinstance(p, MediaChunk)]
        except Exception as exc:  # noqa: BLE001 - a bad chunk is a dead letter, not a crash
            return self._gap(call, chunk.seq, chunk.seq, f"cannot be used ({exc})")
        start = call.at_s if chunk.start_s is None else max(call.at_s, chunk.start_s)
        out: list[Element] = []
        if start > call.at_s + HOLE_TOLERANCE_S:  # the producer says media is missing
            why = f"chunk {chunk.seq} starts at {start:.2f} s"
            out += self._missing(call, why, start - call.at_s)
        for piece in decoded:
            shifted = dataclasses.replace(
                piece,
                start_s=start + piece.start_s,
                end_s=start + piece.end_s,
                frames=tuple(dataclasses.replace(f, t=start + f.t) for f in piece.frames),
                final=False,
            )
            out += call.segments.feed(shifted)
        length = decoded[-1].end_s if decoded else 0.0
        call.chunks, call.chunks_s = call.chunks + 1, call.chunks_s + length
        call.at_s = start + length
        if call.at_s > self._live.max_s:  # the call is cut; its later chunks are ignored
            error = LiveError(
                f"call {call.ref.resolved_id!r} is over the max_s limit of "
                f"{self._live.max_s:.0f} s (--live-max-duration): cut at {call.at_s:.0f} s"
            )
            out.append(DeadLetter.from_error(call.ref, STAGE_LIVE, error))
            out += self._end_chunked(CallEnd(call.ref.resolved_id, call.chunks, "limit"))
        return out

    def _chunk_bytes(self, chunk: CallChunk) -> bytes:
        if chunk.data is not None:
            return chunk.data
        assert chunk.uri is not None
        check_allowed(chunk.uri, self._decode_cfg, "chunk")
        with FileSystems.open(chunk.uri) as f:
            data = f.read(MAX_CHUNK_BYTES + 1)
        if len(data) > MAX_CHUNK_BYTES:
            raise LiveError(f"chunk {chunk.uri!r} is over the {MAX_CHUNK_BYTES} byte limit")
        return data

    def _gap(self, call: _ChunkCall, first: int, last: int, why: str) -> list[Element]:
        """Chunks ``first``..``last`` are missing: their length is estimated from the
        chunks so far."""
        each = call.chunks_s / call.chunks if call.chunks else 0.0
        span = f"chunk {first}" if first == last else f"chunks {first}..{last}"
        return self._missing(call, f"{span} {why}", each * (last - first + 1))

    def _missing(self, call: _ChunkCall, what: str, missing_s: float) -> list[Element]:
        """``missing_s`` of the call from where it got to never came: a dead letter, the
        open turns close there, and the call's clock moves on (nothing is invented)."""
        error = LiveError(
            f"call {call.ref.resolved_id!r}: {what}; about {missing_s:.1f} s from "
            f"{call.at_s:.1f} s have no rows (a recorded gap)"
        )
        out: list[Element] = [DeadLetter.from_error(call.ref, STAGE_LIVE, error)]
        if call.segments is not None:
            out += call.segments.gap(call.at_s, call.at_s + missing_s)
        call.at_s += missing_s
        return out

    def _end_chunked(self, end: CallEnd) -> list[Element]:
        call = self._chunked.pop(end.call_id)
        self._holds.release(end.call_id)
        out: list[Element] = []
        if end.ended_by == "idle":
            error = LiveError(
                f"call {end.call_id!r} sent no chunk for {self._live.idle_timeout_s:.0f} s "
                "and no final chunk: it is taken as ended (idle_timeout_s)"
            )
            out.append(DeadLetter.from_error(call.ref, STAGE_LIVE, error))
        if call.segments is not None:
            out += call.segments.flush()
            if call.segments.emitted:
                out.append(call.segments.end(complete=end.ended_by == "final"))
        return out

    # ------------------------------------------------------------ both

    def start_or_add(self, element: VideoRef | CallChunk) -> list[Element]:
        """A live element (``is_live``): a URL call starts, a chunk is added."""
        if isinstance(element, CallChunk):
            return self.add_chunk(element)
        return self.start_url(element)

    def _segments(self, ref: VideoRef, info: MediaInfo) -> RecordingSegments:
        return RecordingSegments(
            ref,
            info,
            self._segment_cfg,
            self._policy_cfg,
            carry=self._carry,
            partial_every_s=self._live.partial_every_s,
        )

    def poll(self) -> list[Element]:
        """Everything ready now: URL calls' records, chunk calls whose waits ran out."""
        return self._drain_urls() + self._released(self._assembler.expire(self._clock()))

    def close(self) -> None:
        """Stop the reader threads (the calls' holds stay: a restart reads them again)."""
        self._stop.set()
        for call in self._urls.values():
            if call.thread is not None:
                call.thread.join(timeout=self._live.stall_timeout_s + 1)
        self._urls.clear()
        self._chunked.clear()


def is_live(element: object) -> bool:
    """Whether the decode step hands ``element`` to ``LiveCalls``."""
    return isinstance(element, CallChunk) or (isinstance(element, VideoRef) and element.live)

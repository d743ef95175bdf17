"""Putting a live call's media chunks back in order (pure; no Beam, no I/O).

For sources that cannot expose a stream URL, a producer sends a call as numbered chunks
(a few seconds of media each, by reference or inline): ``CallChunk(call_id, seq, ...)``.
Kafka keeps order within a partition, but producers retry (duplicates), restart (a chunk
again, or an old one late) and may send from several threads (out of order). One
``ChunkAssembler`` per worker turns what arrives into, per call, the chunks in ``seq``
order, each exactly once, with a recorded ``Gap`` where chunks never came:

* a chunk whose ``seq`` was already released, or is already held, is a duplicate and is
  dropped (counted);
* a chunk ahead of the next expected one is held until the missing ones arrive; when the
  oldest held chunk has waited ``gap_timeout_s`` (or more than ``max_held`` chunks are
  held for the call), the missing ``seq`` s are given up as a ``Gap`` and the held chunks
  are released: a gap is recorded, never invented over;
* a chunk older than what was released (it arrived after its gap was recorded) is late:
  dropped and counted, since the media after it has been used already;
* ``final=True`` marks the call's last chunk; once everything up to it is released the
  call is closed (``CallEnd``) and its state freed; a call without news for
  ``idle_timeout_s`` is closed the same way, with ``ended_by="idle"``.

Memory is bounded by ``max_held`` chunks per open call and the open calls themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sentistream.transforms.records import VideoRef


@dataclass(frozen=True)
class CallChunk:
    """One chunk of a live call: ``seq`` counts from 0; the media is at ``uri`` or inline
    in ``data``; ``final`` marks the last chunk of the call. ``start_s``: where the chunk
    starts in the call, if the producer says (used after a gap; otherwise the chunks'
    decoded lengths add up). ``ref``: the call as a recording (roles, metadata), from the
    event. ``origin``: the Kafka record it came from (for the commit holds)."""

    call_id: str
    seq: int
    uri: str | None = None
    data: bytes | None = None
    final: bool = False
    event_time: float | None = None
    start_s: float | None = None
    ref: VideoRef | None = None
    origin: tuple[str, int, int] | None = None

    def __post_init__(self) -> None:
        if self.seq < 0:
            raise ValueError(f"seq must be >= 0, got {self.seq!r}")
        if (self.uri is None) == (self.data is None):
            raise ValueError("a chunk carries its media either by uri or inline, not both")


@dataclass(frozen=True)
class Gap:
    """Chunks ``first_seq`` .. ``last_seq`` of a call never arrived in time."""

    call_id: str
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class CallEnd:
    """A call is over: its final chunk was released (``ended_by="final"``) or nothing
    came for the idle timeout (``"idle"``); ``chunks`` were released in all."""

    call_id: str
    chunks: int
    ended_by: str


Released = CallChunk | Gap | CallEnd


@dataclass
class _Call:
    next_seq: int = 0
    held: dict[int, tuple[CallChunk, float]] = field(
        default_factory=dict
    )  # seq -> (chunk, arrived)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    last_news: float = 0.0
    final_seq: int | None = None
    released: int = 0

    def oldest_wait(self, now: float) -> float:
        return now - min(arrived for _, arrived in self.held.values()) if self.held else 0.0

    def in_gap(self, seq: int) -> bool:
        return any(lo <= seq <= hi for lo, hi in self.gaps)


@dataclass
class AssemblerStats:
    duplicates: int = 0
    late: int = 0
    gaps: int = 0
    missing_chunks: int = 0


#: How many closed calls are remembered, so a chunk arriving after its call ended is
#: counted as late rather than opening the call again.
REMEMBER_CLOSED = 10_000


class ChunkAssembler:
    """See the module docstring. ``add`` and ``expire`` return what is ready, in order."""

    def __init__(
        self, gap_timeout_s: float = 5.0, idle_timeout_s: float = 60.0, max_held: int = 64
    ) -> None:
        if not gap_timeout_s > 0 or not idle_timeout_s > 0 or max_held < 1:
            raise ValueError("timeouts must be > 0 and max_held >= 1")
        self.gap_timeout_s = gap_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_held = max_held
        self.stats = AssemblerStats()
        self._calls: dict[str, _Call] = {}
        self._closed: dict[str, None] = {}  # insertion-ordered: the oldest go first

    @property
    def open_calls(self) -> int:
        return len(self._calls)

    def is_new(self, call_id: str) -> bool:
        """Neither open nor recently closed: a chunk of it would open a new call."""
        return call_id not in self._calls and call_id not in self._closed

    def add(self, chunk: CallChunk, now: float) -> list[Released]:
        """Take one arriving chunk at time ``now``; returns what it makes ready."""
        if chunk.call_id in self._closed:
            self.stats.late += 1
            return []
        call = self._calls.setdefault(chunk.call_id, _Call(last_news=now))
        call.last_news = now
        if chunk.seq < call.next_seq:  # released already, or given up as a gap
            if call.in_gap(chunk.seq):
                self.stats.late += 1
            else:
                self.stats.duplicates += 1
            return []
        if chunk.seq in call.held:
            self.stats.duplicates += 1
            return []
        if chunk.final:
            call.final_seq = chunk.seq
        call.held[chunk.seq] = (chunk, now)
        out = self._release(chunk.call_id, call)
        if len(call.held) > self.max_held:
            out += self._give_up_gap(chunk.call_id, call)
        return out

    def expire(self, now: float) -> list[Released]:
        """Gaps whose wait is over and calls idle for too long, at time ``now``."""
        out: list[Released] = []
        for call_id, call in list(self._calls.items()):
            if call.held and call.oldest_wait(now) >= self.gap_timeout_s:
                out += self._give_up_gap(call_id, call)
            if call_id in self._calls and now - call.last_news >= self.idle_timeout_s:
                while call.held:
                    out += self._give_up_gap(call_id, call)
                if call_id in self._calls:
                    out.append(self._close(call_id, call, "idle"))
        return out

    def _release(self, call_id: str, call: _Call) -> list[Released]:
        out: list[Released] = []
        while call.next_seq in call.held:
            out.append(call.held.pop(call.next_seq)[0])
            call.next_seq += 1
            call.released += 1
        if call.final_seq is not None and call.next_seq > call.final_seq:
            out.append(self._close(call_id, call, "final"))
        return out

    def _give_up_gap(self, call_id: str, call: _Call) -> list[Released]:
        first_held = min(call.held)
        gap = Gap(call_id, call.next_seq, first_held - 1)
        call.gaps.append((gap.first_seq, gap.last_seq))
        self.stats.gaps += 1
        self.stats.missing_chunks += first_held - call.next_seq
        call.next_seq = first_held
        return [gap, *self._release(call_id, call)]

    def _close(self, call_id: str, call: _Call, ended_by: str) -> CallEnd:
        del self._calls[call_id]
        self._closed[call_id] = None
        if len(self._closed) > REMEMBER_CLOSED:
            del self._closed[next(iter(self._closed))]
        return CallEnd(call_id, call.released, ended_by)


def released_seqs(items: Iterable[Released]) -> list[int]:
    """The chunk numbers in ``items`` (for tests and logs)."""
    return [i.seq for i in items if isinstance(i, CallChunk)]

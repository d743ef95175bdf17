"""Commit holds of open live calls: the Kafka source must not commit past them.

A live call is decoded across many bundles, so the bundle that read its event (or its
first chunk) completes long before the call does. If the source committed that offset and
the job then died, the restarted job would never see the call's start again. So the live
step registers, per call, the offsets of its first and latest event; the source commits,
per partition, no further than

* the first offset of every open call, and
* the first offset of every closed call that has an event at or after the commit point:
  so that after a restart each call is read again from its first event, whole, never
  from its middle (its rows come out again under the same ``segment_id`` s).

A call is released in the bundle that emitted its last rows; the source commits in that
bundle's finalization, after the sinks flushed. Both run in one worker process, which
holds for the local runtimes (FnApiRunner, each recycled run in its forked child); the
holds are process-wide for that reason. On runners whose Kafka source is another process
(Java KafkaIO on Flink or Dataflow) the holds are not seen: see docs/live.md.

While any call is open the source also ends its bundles every ``LIVE_BUNDLE_S`` (rows of
live calls leave at bundle ends) and does not stop for idleness or a run's time limit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: Bundle length of the Kafka source while live calls are open.
LIVE_BUNDLE_S = 0.25


@dataclass
class _Span:
    first: int
    last: int
    open: bool = True


class LiveHolds:
    """Per (topic, partition): call id -> the offsets of its first and latest event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: dict[tuple[str, int], dict[str, _Span]] = {}

    def hold(self, call_id: str, origin: tuple[str, int, int] | None) -> None:
        """An event of ``call_id`` at ``origin`` (topic, partition, offset): held."""
        if origin is None:
            return
        topic, partition, offset = origin
        with self._lock:
            spans = self._spans.setdefault((topic, partition), {})
            span = spans.get(call_id)
            if span is None or not span.open:
                spans[call_id] = _Span(offset, offset)
            else:
                span.first, span.last = min(span.first, offset), max(span.last, offset)

    def release(self, call_id: str) -> None:
        """``call_id`` is over (its last rows are in this bundle)."""
        with self._lock:
            for spans in self._spans.values():
                if call_id in spans:
                    spans[call_id].open = False

    def active(self) -> bool:
        """Whether any call is open."""
        with self._lock:
            return any(s.open for spans in self._spans.values() for s in spans.values())

    def commit_point(self, topic: str, partition: int, done: int) -> int:
        """The offset the source may commit after reading up to ``done`` (see the module
        docstring); closed calls wholly before it are forgotten."""
        with self._lock:
            spans = self._spans.get((topic, partition), {})
            point = min([done, *(s.first for s in spans.values() if s.open)])
            moved = True
            while moved:  # a closed call straddling the point pulls it back to its start
                moved = False
                for s in spans.values():
                    if not s.open and s.first < point <= s.last:
                        point, moved = s.first, True
            for call_id in [c for c, s in spans.items() if not s.open and s.last < point]:
                del spans[call_id]
            return point

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()


#: The worker process's holds (shared by the live step and the Kafka source).
HOLDS = LiveHolds()

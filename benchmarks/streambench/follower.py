"""Following the stream under test from outside: rows on the output topic, commits of
the input offsets, and the stream process's memory."""

from __future__ import annotations

import json
import threading
import time


class Follower(threading.Thread):
    """Records when each video's rows arrive on the output topic, and when its event's
    offset is committed (= every row of it written)."""

    def __init__(self, bootstrap: str, topic: str, events_topic: str, group: str) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.done_at: dict[int, float] = {}  # event offset -> when its commit was seen
        self._halt = threading.Event()
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        self._consumer.assign([tp])
        self._consumer.seek(tp, 0)
        self._committed = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        self._events_tp = TopicPartition(events_topic, 0)
        self._last_check = 0.0
        self._seen_commit = 0

    def run(self) -> None:
        while not self._halt.is_set():
            for records in self._consumer.poll(timeout_ms=20).values():
                now = time.time()
                for r in records:
                    vid = json.loads(r.value)["video_id"]
                    self.first.setdefault(vid, now)
                    self.last[vid] = now
                    self.rows[vid] = self.rows.get(vid, 0) + 1
            if time.monotonic() - self._last_check > 0.05:
                self._last_check = time.monotonic()
                self._note_commits()

    def _note_commits(self) -> None:
        committed = self._committed.committed(self._events_tp) or 0
        now = time.time()
        for off in range(self._seen_commit, committed):
            self.done_at[off] = now
        self._seen_commit = max(self._seen_commit, committed)

    def completed(self) -> int:
        return self._seen_commit

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self._consumer.close(autocommit=False)
        self._committed.close(autocommit=False)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
    return total / 1024.0

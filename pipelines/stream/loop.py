"""The ``loop`` runtime: poll a batch of events, run the bounded pipeline on it, commit
its offsets, repeat. Models load again for every bounded run; no run outlives its batch,
so memory cannot grow (docs/streaming.md compares it with the streaming runtime)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam

from sentistream.pipelines.runner import beam_options
from sentistream.pipelines.stream.graph import StreamJob, attach_outputs
from sentistream.transforms.io.kafka_config import KafkaRecord
from sentistream.transforms.io.kafka_offsets import commit_offset, new_consumer, partition_starts


@dataclasses.dataclass
class LoopStats:
    """What the loop runtime did: events and bounded runs, and seconds per run."""

    events: int = 0
    runs: int = 0
    run_seconds: list[float] = dataclasses.field(default_factory=list)


def run_loop(job: StreamJob, stop: threading.Event | None = None) -> LoopStats:
    """Poll a batch, run the bounded pipeline on it, commit its offsets, repeat.

    Stops at ``max_events``, after ``idle_timeout_s`` without events, or when ``stop``
    is set; a failed run raises before its offsets are committed.
    """
    settings = job.settings
    read = settings.read_config()
    consumer = new_consumer(read)
    stats = LoopStats()
    try:
        _assign_from_committed(consumer, read)
        last_event = time.monotonic()
        while stop is None or not stop.is_set():
            want = settings.batch_events
            if settings.max_events is not None:
                want = min(want, settings.max_events - stats.events)
                if want <= 0:
                    break
            batch = _poll(consumer, want)
            if not batch:
                idle = time.monotonic() - last_event
                if settings.idle_timeout_s is not None and idle > settings.idle_timeout_s:
                    break
                continue
            started = time.monotonic()
            with beam.Pipeline(options=beam_options(job.beam_args)) as p:
                records = p | "Events" >> beam.Create(batch, reshuffle=False)
                attach_outputs(records, job)
            _commit_after(consumer, batch)
            stats.events += len(batch)
            stats.runs += 1
            stats.run_seconds.append(time.monotonic() - started)
            last_event = time.monotonic()
    finally:
        consumer.close(autocommit=False)
    return stats


def _assign_from_committed(consumer: Any, read: Any) -> None:
    """Assign every input partition to ``consumer``, at the group's committed offset."""
    from kafka import TopicPartition

    starts = partition_starts(consumer, read)
    tps = [TopicPartition(s.topic, s.partition) for s in starts]
    consumer.assign(tps)
    for s, tp in zip(starts, tps, strict=True):
        consumer.seek(tp, s.start_offset)


def _poll(consumer: Any, most: int) -> list[KafkaRecord]:
    polled = consumer.poll(timeout_ms=100, max_records=most)
    return [
        KafkaRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
        for records in polled.values()
        for r in records
    ]


def _commit_after(consumer: Any, batch: Sequence[KafkaRecord]) -> None:
    """Commit, per partition, the offset after the last record of ``batch``."""
    next_offsets: dict[tuple[str, int], int] = {}
    for r in batch:
        key = (r.topic, r.partition)
        next_offsets[key] = max(next_offsets.get(key, 0), r.offset + 1)
    for (topic, partition), offset in next_offsets.items():
        commit_offset(consumer, topic, partition, offset)

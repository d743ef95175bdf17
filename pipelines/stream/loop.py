"""The ``loop`` runtime: poll a batch of events, run the bounded pipeline on it, commit
its offsets, repeat. Models load again for every bounded run; no run outlives its batch,
so memory cannot grow (docs/streaming.md compares it with the streaming runtime)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam

from sentistream.pipelines.runner import beam_options
from sentistream.pipelines.stream.graph import StreamJob, attach_outputs, attach_sinks
from sentistream.transforms.io.events import EventError, event_dead_letter, load_json
from sentistream.transforms.io.kafka_config import KafkaRecord
from sentistream.transforms.io.kafka_offsets import commit_offset, new_consumer, partition_starts
from sentistream.transforms.io.live_events import is_live_event
from sentistream.transforms.schema import DeadLetterRow

_LOG = logging.getLogger(__name__)
STAGE_STREAM = "stream"
ERR_POISON = "poison_event"
ERR_LIVE_NEEDS_STREAMING = "live_needs_streaming"


@dataclasses.dataclass
class LoopStats:
    """What the loop runtime did: events and bounded runs, and seconds per run."""

    events: int = 0
    runs: int = 0
    run_seconds: list[float] = dataclasses.field(default_factory=list)


def run_loop(job: StreamJob, stop: threading.Event | None = None) -> LoopStats:
    """Poll a batch, run the bounded pipeline on it, commit its offsets, repeat.

    Stops at ``max_events``, after ``idle_timeout_s`` without events, or when ``stop``
    is set. A run that fails is retried, then its events run one at a time and those that
    still fail are dead letters (``run_batch_isolating_failures``); offsets are committed
    only after every event of the batch ended as rows or a dead letter.
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
            scored = refuse_live_events(job, batch)
            if scored:
                run_batch_isolating_failures(job, scored)
            _commit_after(consumer, batch)
            stats.events += len(batch)
            stats.runs += 1
            stats.run_seconds.append(time.monotonic() - started)
            last_event = time.monotonic()
    finally:
        consumer.close(autocommit=False)
    return stats


def _run_batch(job: StreamJob, batch: Sequence[KafkaRecord]) -> None:
    with beam.Pipeline(options=beam_options(job.beam_args)) as p:
        records = p | "Events" >> beam.Create(list(batch), reshuffle=False)
        attach_outputs(records, job)


def run_batch_isolating_failures(job: StreamJob, batch: Sequence[KafkaRecord]) -> int:
    """Run the bounded pipeline on ``batch``; if it fails ``max_attempts`` times, run each
    event alone (``max_attempts`` tries each) and dead-letter the ones that still fail.

    Returns how many events were dead-lettered this way. Raises only when writing those
    dead letters fails too (the sinks are down: nothing may be committed then).
    """
    attempts = job.settings.max_attempts
    error = _try(job, batch, attempts)
    if error is None:
        return 0
    _LOG.warning(
        "a run of %d event(s) failed %d times (%s); running them one at a time",
        len(batch),
        attempts,
        error,
    )
    if len(batch) == 1:  # already run alone
        poison = [(batch[0], error)]
    else:
        alone = [(record, _try(job, [record], attempts)) for record in batch]
        poison = [(record, failed) for record, failed in alone if failed is not None]
    if poison:
        _write_dead_letters(job, [poison_dead_letter(r, e, attempts) for r, e in poison], "Poison")
    return len(poison)


def refuse_live_events(job: StreamJob, batch: Sequence[KafkaRecord]) -> list[KafkaRecord]:
    """The events of ``batch`` that are not live; the live ones (a live URL or a chunk,
    docs/live.md) become dead letters: a bounded run ends long before a live call does,
    so only the streaming runtime takes them."""
    keep, refused = [], []
    for record in batch:
        try:
            event = load_json(record.value or b"")
        except EventError:
            event = None
        if isinstance(event, dict) and is_live_event(event):
            err = EventError(
                ERR_LIVE_NEEDS_STREAMING,
                "live events need the streaming runtime (--runtime streaming); the loop "
                "runtime runs bounded batches, which end before a live call does",
            )
            refused.append(event_dead_letter(record.value or b"", err, now=time.time()))
        else:
            keep.append(record)
    if refused:
        _write_dead_letters(job, refused, "LiveRefused")
    return keep


def _write_dead_letters(job: StreamJob, rows: Sequence[DeadLetterRow], label: str) -> None:
    with beam.Pipeline(options=beam_options(job.beam_args)) as p:
        pcoll = p | label >> beam.Create(list(rows))
        attach_sinks(pcoll, job.settings, f"{label}DeadLetters")


def _try(job: StreamJob, batch: Sequence[KafkaRecord], attempts: int) -> Exception | None:
    error: Exception | None = None
    for _ in range(attempts):
        try:
            _run_batch(job, batch)
            return None
        except Exception as exc:  # noqa: BLE001 - any failure: retried, then isolated
            error = exc
    return error


def poison_dead_letter(record: KafkaRecord, error: Exception, attempts: int) -> DeadLetterRow:
    """The dead letter of an event whose run failed ``attempts`` times on its own."""
    reason = f"{type(error).__name__}: {str(error)[:500]}"
    err = EventError(
        ERR_POISON,
        f"the event's run failed {attempts} times ({reason}); dead-lettered so the stream "
        f"moves on (topic {record.topic}, partition {record.partition}, offset {record.offset})",
    )
    raw = record.value if record.value is not None else b""
    return event_dead_letter(raw, err, now=time.time(), stage=STAGE_STREAM)


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

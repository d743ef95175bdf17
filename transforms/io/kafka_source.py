"""The Kafka source, in pure Python (kafka-python), on any Beam runner.

Source (``ReadFromKafkaPy``)::

    Impulse -> ListPartitions (partitions, committed offsets) -> ReadPartition (splittable)

``ReadPartition`` is a splittable DoFn whose restriction is an offset range of one
partition. It assigns itself the partition (it never joins the consumer group, so there
is no rebalancing: the group id must belong to this pipeline alone), seeks to the
restriction's start, and polls in short polls. Each output is a ``KafkaRecord`` stamped
with the record's timestamp (event time). Unbounded reads hand the rest of the range
back to the runner (``defer_remainder``) every ``max_bundle_s``; a manual watermark
estimator follows the record timestamps minus ``watermark_lag_s`` and, when a poll finds
the partition idle, advances to wall-clock time minus the lag, so windows downstream
close on idle partitions. Bounded reads (``max_records_per_partition``) never defer:
they loop to their stop offset (FnApiRunner with several workers drops a deferred
remainder of a bounded read, see docs/streaming.md).

Offsets are committed (to ``group_id``) only once the bundle that read them has
completed, i.e. after every fused step downstream, sinks included, has flushed in its
``finish_bundle``: from a bundle-finalization callback, and again when a checkpointed
remainder resumes (the runner schedules a remainder only after its bundle committed).
So delivery is at least once; a restart resumes from the committed offsets. Open live
calls hold the commit back to their first event, shorten bundles and keep the read from
stopping (``live_holds``).

The configuration and records are in ``kafka_config``, the consumer, start offsets and
commits in ``kafka_offsets``; the sink (rows -> JSON keyed by segment id, flushed in
``finish_bundle``) in ``kafka_sink``.

``io="xlang"`` selects Beam's cross-language ``ReadFromKafka`` / ``WriteToKafka`` (Java
KafkaIO through an expansion service) for Dataflow and Flink; it needs Java and the
expansion-service jar (downloaded from Maven at pipeline construction), so it cannot run
offline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp

from sentistream.transforms.io.kafka_config import (
    IO_CHOICES,
    IO_PYTHON,
    IO_XLANG,
    KafkaReadConfig,
    KafkaRecord,
    PartitionStart,
)
from sentistream.transforms.io.kafka_offsets import commit_offset, new_consumer, partition_starts
from sentistream.transforms.io.live_holds import HOLDS, LIVE_BUNDLE_S

_LOG = logging.getLogger(__name__)


class _ListPartitionsFn(beam.DoFn):
    def __init__(self, config: KafkaReadConfig) -> None:
        self._config = config

    def process(self, _: Any) -> Iterator[PartitionStart]:
        consumer = new_consumer(self._config)
        try:
            starts = partition_starts(consumer, self._config)
        finally:
            consumer.close(autocommit=False)
        for start in starts:
            _LOG.info("kafka read %s[%d] from offset %d", *start[:3])
            yield start


class _PartitionRestrictionProvider(RestrictionProvider):
    def initial_restriction(self, element: PartitionStart) -> OffsetRange:
        return OffsetRange(element.start_offset, element.stop_offset)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def split(self, element: PartitionStart, restriction: OffsetRange) -> Iterable[OffsetRange]:
        yield restriction  # a partition is read in order, by one reader

    def restriction_size(self, element: PartitionStart, restriction: OffsetRange) -> int:
        return min(restriction.size(), 1 << 30)


_RESTRICTION_PARAM = beam.DoFn.RestrictionParam(_PartitionRestrictionProvider())
_WATERMARK_PARAM = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


class _ReadPartitionFn(beam.DoFn):
    """Reads one partition's offset range; see the module docstring.

    Args:
        config: what to read.
        clock: wall-clock seconds (for the idle watermark), injectable for tests.
    """

    checkpoints = False  # bounded: loop to the stop offset, never defer

    def __init__(self, config: KafkaReadConfig, clock: Callable[[], float] = time.time):
        self._config = config
        self._clock = clock
        self._consumer: Any = None
        self._committed: dict[tuple[str, int], int] = {}
        self._last_record: dict[tuple[str, int], float] = {}

    def setup(self) -> None:
        self._consumer = new_consumer(self._config)

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None

    def _commit(self, topic: str, partition: int, offset: int) -> None:
        offset = HOLDS.commit_point(topic, partition, offset)  # never past an open live call
        if not self._config.commit or self._committed.get((topic, partition), -1) >= offset:
            return
        commit_offset(self._consumer, topic, partition, offset)
        self._committed[(topic, partition)] = offset
        _LOG.debug("committed %s[%d] at %d", topic, partition, offset)

    def _advance_watermark(self, estimator: ManualWatermarkEstimator, seconds: float) -> None:
        target = Timestamp.of(seconds - self._config.watermark_lag_s)
        current = estimator.current_watermark()
        if current is None or target > current:
            estimator.set_watermark(target)

    def process(
        self,
        element: PartitionStart,
        finalizer: Any = beam.DoFn.BundleFinalizerParam,  # before the tracker: Beam passes
        tracker: OffsetRestrictionTracker = _RESTRICTION_PARAM,  # it by position, these two
        estimator: ManualWatermarkEstimator = _WATERMARK_PARAM,  # by name
    ) -> Iterator[Any]:
        from kafka import TopicPartition

        cfg = self._config
        restriction = tracker.current_restriction()
        key = (element.topic, element.partition)
        tp = TopicPartition(element.topic, element.partition)
        if restriction.start > element.start_offset:
            # A checkpointed remainder runs only after the bundle before it completed.
            self._commit(element.topic, element.partition, restriction.start)
        self._consumer.assign([tp])
        self._consumer.seek(tp, restriction.start)
        started = time.monotonic()
        self._last_record.setdefault(key, started)
        next_offset = restriction.start
        stop = restriction.stop
        while next_offset < stop:
            live = HOLDS.active()  # open live calls: short bundles, no stopping
            if cfg.stop_at is not None and time.time() >= cfg.stop_at and not live:
                _LOG.info("kafka read %s[%d]: stop time, stopping at %d", *key, next_offset)
                tracker.try_claim(stop - 1)  # ends the restriction; the rest is read next run
                break
            polled = self._consumer.poll(
                timeout_ms=cfg.poll_timeout_ms, max_records=cfg.max_poll_records
            ).get(tp, [])
            now = time.monotonic()
            if not polled:
                self._advance_watermark(estimator, self._clock())
                idle = now - self._last_record[key]
                if live:
                    self._last_record[key] = now
                elif cfg.idle_stop_s is not None and idle > cfg.idle_stop_s:
                    _LOG.info("kafka read %s[%d]: idle, stopping at %d", *key, next_offset)
                    tracker.try_claim(stop - 1)  # ends the restriction: nothing more to read
                    break
            stop_now = False
            for rec in polled:
                if not tracker.try_claim(rec.offset):
                    stop_now = True  # past the stop offset, or the runner split the range
                    break
                ts_ms = rec.timestamp if rec.timestamp is not None else -1
                seconds = ts_ms / 1000.0 if ts_ms >= 0 else self._clock()
                self._advance_watermark(estimator, seconds)
                next_offset = rec.offset + 1
                self._last_record[key] = time.monotonic()
                yield TimestampedValue(
                    KafkaRecord(rec.topic, rec.partition, rec.offset, ts_ms, rec.key, rec.value),
                    seconds,
                )
                # Downstream ran inside that yield: once the bundle is old enough, end it
                # so its rows are flushed and its offsets committed; the rest of this poll
                # is fetched again by the remainder.
                if self.checkpoints and time.monotonic() - started > cfg.max_bundle_s:
                    break
            if stop_now:
                break
            if self.checkpoints:
                age = time.monotonic() - started
                emitted = next_offset > restriction.start
                if (
                    age > cfg.idle_bundle_s
                    or (emitted and age > cfg.max_bundle_s)
                    or (live and age > LIVE_BUNDLE_S)
                ):
                    tracker.defer_remainder(Duration.of(0))
                    break
        done = next_offset
        if cfg.commit and done > restriction.start:
            topic, partition = element.topic, element.partition
            finalizer.register(lambda: self._commit(topic, partition, done))


@beam.DoFn.unbounded_per_element()
class _UnboundedReadPartitionFn(_ReadPartitionFn):
    """The same reader, declared unbounded (checkpoints every ``max_bundle_s``)."""

    checkpoints = True


class ReadFromKafkaPy(beam.PTransform):
    """PBegin -> PCollection[KafkaRecord], event-timestamped; see the module docstring.

    Args:
        config: what and how to read.
        unbounded: declare the read unbounded (checkpoint every ``max_bundle_s``, run with
            ``--streaming``). Default: unbounded unless ``max_records_per_partition`` is
            set. An unbounded read with a stop offset (or ``idle_stop_s``) still ends.
        clock: wall-clock seconds, injectable for tests.
    """

    def __init__(
        self,
        config: KafkaReadConfig,
        *,
        unbounded: bool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._config = config
        self._unbounded = not config.bounded if unbounded is None else unbounded
        self._clock = clock

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        cfg = self._config
        reader_cls = _UnboundedReadPartitionFn if self._unbounded else _ReadPartitionFn
        return (
            pbegin
            | "Impulse" >> beam.Impulse()
            | "ListPartitions" >> beam.ParDo(_ListPartitionsFn(cfg))
            | "ReadPartition" >> beam.ParDo(reader_cls(cfg, self._clock))
        )


class _FromXlangRow(beam.DoFn):
    def process(self, row: Any) -> Iterator[Any]:
        ts = int(row.timestamp)
        yield TimestampedValue(
            KafkaRecord(row.topic, int(row.partition), int(row.offset), ts, row.key, row.value),
            ts / 1000.0,
        )


def read_kafka(
    config: KafkaReadConfig, io: str = IO_PYTHON, *, unbounded: bool | None = None
) -> beam.PTransform:
    """The source by flag: ``python`` (``ReadFromKafkaPy``, runs anywhere) or ``xlang``
    (Java KafkaIO via an expansion service, for Dataflow / Flink; commits in bundle
    finalization, CreateTime event time). Both yield ``KafkaRecord`` s."""
    if io == IO_PYTHON:
        return ReadFromKafkaPy(config, unbounded=unbounded)
    if io != IO_XLANG:
        raise ValueError(f"io must be one of {IO_CHOICES}, got {io!r}")
    from apache_beam.io.kafka import ReadFromKafka

    consumer = {
        "bootstrap.servers": config.bootstrap,
        "group.id": config.group_id,
        "auto.offset.reset": config.start,
        "enable.auto.commit": "false",
    }
    read = ReadFromKafka(
        consumer_config=consumer,
        topics=list(config.topics),
        with_metadata=True,
        commit_offset_in_finalize=config.commit,
        timestamp_policy=ReadFromKafka.create_time_policy,
        max_num_records=config.max_records_per_partition,
    )
    return _XlangRead(read)


class _XlangRead(beam.PTransform):
    def __init__(self, read: beam.PTransform) -> None:
        super().__init__()
        self._read = read

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return pbegin | "ReadFromKafka" >> self._read | "ToRecord" >> beam.ParDo(_FromXlangRow())

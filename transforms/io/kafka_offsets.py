"""Partitions, start offsets and commits, through a kafka-python consumer that never joins
its group (no rebalancing: the group id must belong to this pipeline alone)."""

from __future__ import annotations

import time
from typing import Any

from sentistream.transforms.io.kafka_config import UNBOUNDED_STOP, KafkaReadConfig, PartitionStart


def new_consumer(config: KafkaReadConfig) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(**config.consumer_kwargs())


def commit_offset(consumer: Any, topic: str, partition: int, offset: int) -> None:
    """Commit ``offset`` (the next record to read) without joining the group."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)})


def partition_starts(
    consumer: Any, config: KafkaReadConfig, timeout_s: float = 30.0
) -> list[PartitionStart]:
    """Every partition of ``config.topics`` with its start offset.

    Waits up to ``timeout_s`` for topic metadata (a topic created a moment ago may not
    be listed yet). ``latest`` uses ListOffsets(latest), which the local Tansu broker
    answers wrongly (docs/streaming.md); prefer ``earliest`` there.
    """
    from kafka import TopicPartition

    starts: list[PartitionStart] = []
    for topic in config.topics:
        wait_until = time.monotonic() + timeout_s
        parts = consumer.partitions_for_topic(topic)
        while not parts:
            if time.monotonic() > wait_until:
                raise ValueError(f"topic {topic!r} has no partitions at {config.bootstrap}")
            time.sleep(0.2)
            consumer.poll(timeout_ms=0)  # nudges a metadata refresh
            parts = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        missing = [tp for tp in tps if consumer.committed(tp) is None]
        if config.start == "earliest":
            fallback = consumer.beginning_offsets(missing) if missing else {}
        else:
            fallback = consumer.end_offsets(missing) if missing else {}
        for tp in tps:
            committed = consumer.committed(tp)
            offset = int(committed if committed is not None else fallback[tp])
            n = config.max_records_per_partition
            stop = UNBOUNDED_STOP if n is None else offset + n
            starts.append(PartitionStart(tp.topic, tp.partition, offset, stop))
    return starts

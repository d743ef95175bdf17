"""What a Kafka read is: its configuration, the records it yields, the partitions it reads.

Shared by the source (``kafka_source``), the offset helpers (``kafka_offsets``) and the
sink (``kafka_sink``, which reads ``IO_CHOICES``). No Beam, no broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# ``python``: kafka-python DoFns, on any runner; ``xlang``: Beam's cross-language Java
# KafkaIO (Dataflow / Flink; needs Java and the expansion-service jar).
IO_PYTHON = "python"
IO_XLANG = "xlang"
IO_CHOICES = (IO_PYTHON, IO_XLANG)
START_CHOICES = ("earliest", "latest")
UNBOUNDED_STOP = 2**63 - 1


class KafkaRecord(NamedTuple):
    """One consumed Kafka record. ``timestamp_ms`` is -1 when the record has none."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class KafkaReadConfig:
    """What and how to read.

    Attributes:
        bootstrap: ``host:port[,host:port]`` of the brokers.
        topics: topics to read (every partition of each, listed when the pipeline starts).
        group_id: consumer group whose committed offsets are the start points and receive
            the commits. Must belong to this pipeline alone (the reader never joins it).
        start: where a partition without a committed offset starts: ``earliest`` or
            ``latest``.
        poll_timeout_ms: longest single poll; bounds how long a record waits once
            produced.
        max_bundle_s: an unbounded read ends its bundle (checkpoints, and so commits and
            flushes the sinks) after the first record once the bundle is this old.
        idle_bundle_s: ... and after this long when no record comes (fewer bundles while
            idle: FnApiRunner's memory grows with each bundle, see docs/streaming.md).
        max_poll_records: records fetched per poll.
        watermark_lag_s: the watermark trails record (or, when idle, wall-clock) time by
            this much; records older than that arrive late.
        max_records_per_partition: bounded read: stop at offset ``start + n``.
        idle_stop_s: stop reading a partition after this long without a record (tests
            and demos; None reads forever).
        stop_at: stop reading at this wall-clock time (epoch seconds); the local runtime
            ends and restarts its streaming run this way (docs/streaming.md). None: never.
        commit: commit offsets to ``group_id`` (False: read without side effects).
        consumer_config: extra kafka-python ``KafkaConsumer`` settings (security, ...).
    """

    bootstrap: str
    topics: tuple[str, ...]
    group_id: str
    start: str = "earliest"
    poll_timeout_ms: int = 100
    max_bundle_s: float = 1.0
    idle_bundle_s: float = 10.0
    max_poll_records: int = 100
    watermark_lag_s: float = 1.0
    max_records_per_partition: int | None = None
    idle_stop_s: float | None = None
    stop_at: float | None = None
    commit: bool = True
    consumer_config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ValueError("bootstrap must name at least one broker, got ''")
        if isinstance(self.topics, str) or not self.topics or not all(self.topics):
            raise ValueError(f"topics must be a non-empty tuple of names, got {self.topics!r}")
        if not self.group_id:
            raise ValueError("group_id must be non-empty (offsets are committed to it)")
        if self.start not in START_CHOICES:
            raise ValueError(f"start must be one of {START_CHOICES}, got {self.start!r}")
        if self.poll_timeout_ms < 1:
            raise ValueError(f"poll_timeout_ms must be >= 1, got {self.poll_timeout_ms!r}")
        if not 0 < self.max_bundle_s <= self.idle_bundle_s:
            raise ValueError(
                f"need 0 < max_bundle_s <= idle_bundle_s, got {self.max_bundle_s!r}, "
                f"{self.idle_bundle_s!r}"
            )
        if self.max_records_per_partition is not None and self.max_records_per_partition < 0:
            raise ValueError(
                f"max_records_per_partition must be >= 0, got {self.max_records_per_partition!r}"
            )
        if self.idle_stop_s is not None and not self.idle_stop_s > 0:
            raise ValueError(f"idle_stop_s must be > 0 or None, got {self.idle_stop_s!r}")

    @property
    def bounded(self) -> bool:
        return self.max_records_per_partition is not None

    def consumer_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap.split(","),
            "group_id": self.group_id,
            "client_id": f"sentistream-{self.group_id}",
            "enable_auto_commit": False,
            "auto_offset_reset": self.start,
            "max_poll_records": self.max_poll_records,
            "fetch_max_wait_ms": self.poll_timeout_ms,
        }
        kwargs.update(self.consumer_config)
        return kwargs


class PartitionStart(NamedTuple):
    """One partition to read: its start offset (committed, or per ``start``) and the
    offset to stop at (``UNBOUNDED_STOP`` for an unbounded read)."""

    topic: str
    partition: int
    start_offset: int
    stop_offset: int = UNBOUNDED_STOP

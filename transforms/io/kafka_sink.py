"""The Kafka sink, in pure Python (kafka-python); the source is ``kafka_source``.

``WriteRowsToKafkaFn``: ``ScoreRow`` / ``CallRow`` / ``DeadLetterRow`` -> JSON
(``schema.to_json``) keyed by segment id (call rows: summary id), flushed in
``finish_bundle`` (a failed send fails the bundle, so the offsets it read are not
committed). ``io="xlang"`` selects Beam's cross-language ``WriteToKafka``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

from sentistream.transforms.io.kafka_config import IO_CHOICES, IO_PYTHON
from sentistream.transforms.schema import CallRow, DeadLetterRow, ScoreRow, to_json

HEADERS = [("content-type", b"application/json")]


def row_key(row: ScoreRow | CallRow | DeadLetterRow) -> bytes | None:
    """Message key: the segment id (compaction and idempotent consumers key on it), a call
    row's summary id; a dead letter without a segment id is keyed by its video id."""
    if isinstance(row, CallRow):
        return row.summary_id.encode("utf-8")
    key = row.segment_id or (row.video_id if isinstance(row, DeadLetterRow) else None)
    return key.encode("utf-8") if key else None


@dataclass(frozen=True)
class KafkaWriteConfig:
    """Where rows go: ``ScoreRow`` to ``scores_topic``, ``CallRow`` to ``calls_topic``,
    ``DeadLetterRow`` to ``dead_letter_topic``. ``producer_config`` adds kafka-python
    ``KafkaProducer`` settings."""

    bootstrap: str
    scores_topic: str
    dead_letter_topic: str
    calls_topic: str = "sentistream.calls"
    producer_config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ValueError("bootstrap must name at least one broker, got ''")
        topics = (self.scores_topic, self.dead_letter_topic, self.calls_topic)
        if not all(topics):
            raise ValueError(f"topics must be non-empty, got {topics!r}")

    def producer_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap.split(","),
            "client_id": "sentistream-sink",
            "acks": "all",
            "linger_ms": 0,
            "retries": 5,
        }
        kwargs.update(self.producer_config)
        return kwargs

    def topic_for(self, row: ScoreRow | CallRow | DeadLetterRow) -> str:
        if isinstance(row, ScoreRow):
            return self.scores_topic
        if isinstance(row, CallRow):
            return self.calls_topic
        if isinstance(row, DeadLetterRow):
            return self.dead_letter_topic
        raise TypeError(f"expected an output row, got {type(row).__name__}")


class WriteRowsToKafkaFn(beam.DoFn):
    """Sends each row as soon as it arrives; ``finish_bundle`` waits for every send of the
    bundle to be acknowledged and raises if one failed (the bundle is then retried and
    its input offsets stay uncommitted)."""

    def __init__(self, config: KafkaWriteConfig) -> None:
        self._config = config
        self._producer: Any = None
        self._pending: list[Any] = []

    def setup(self) -> None:
        from kafka import KafkaProducer

        self._producer = KafkaProducer(**self._config.producer_kwargs())

    def start_bundle(self) -> None:
        self._pending = []

    def process(self, row: ScoreRow | CallRow | DeadLetterRow) -> None:
        topic = self._config.topic_for(row)
        self._pending.append(
            self._producer.send(topic, key=row_key(row), value=to_json(row), headers=HEADERS)
        )

    def finish_bundle(self) -> None:
        if not self._pending:
            return
        self._producer.flush()
        for future in self._pending:
            future.get(timeout=0)  # raises the send's error, if any
        beam.metrics.Metrics.counter("sentistream.kafka", "rows_sent").inc(len(self._pending))
        self._pending = []

    def teardown(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


class WriteRowsToKafka(beam.PTransform):
    """PCollection[ScoreRow | CallRow | DeadLetterRow] -> Kafka (``io="python"``: kafka-python DoFn;
    ``io="xlang"``: Beam's cross-language ``WriteToKafka``, one per topic)."""

    def __init__(self, config: KafkaWriteConfig, io: str = IO_PYTHON) -> None:
        super().__init__()
        if io not in IO_CHOICES:
            raise ValueError(f"io must be one of {IO_CHOICES}, got {io!r}")
        self._config = config
        self._io = io

    def expand(self, rows: beam.PCollection) -> Any:
        if self._io == IO_PYTHON:
            return rows | "Send" >> beam.ParDo(WriteRowsToKafkaFn(self._config))
        from apache_beam.io.kafka import WriteToKafka

        cfg = self._config
        producer = {"bootstrap.servers": cfg.bootstrap}
        producer.update({k.replace("_", "."): str(v) for k, v in cfg.producer_config.items()})
        for label, kind, topic in (
            ("Scores", ScoreRow, cfg.scores_topic),
            ("Calls", CallRow, cfg.calls_topic),
            ("DeadLetters", DeadLetterRow, cfg.dead_letter_topic),
        ):
            _ = (
                rows
                | f"Only{label}" >> beam.Filter(lambda r, kind=kind: isinstance(r, kind))
                | f"{label}ToKV"
                >> beam.Map(lambda r: (row_key(r) or b"", to_json(r))).with_output_types(
                    tuple[bytes, bytes]
                )
                | f"{label}ToKafka" >> WriteToKafka(producer_config=producer, topic=topic)
            )
        return None

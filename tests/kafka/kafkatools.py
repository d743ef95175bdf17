"""Helpers for the Kafka tests: produce, consume and read committed offsets on a real
broker (imported by the test modules; the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import time


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int | None = None) -> None:
    """Send ``values`` and wait until the broker acknowledged each."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for value in values:
            producer.send(topic, value=value, partition=partition).get(timeout=10)
    finally:
        producer.close(timeout=5)


def consume(
    bootstrap: str, topic: str, *, expect: int, timeout_s: float = 20.0
) -> list[tuple[bytes | None, dict]]:
    """Read ``topic`` from the start until ``expect`` records (or the timeout): (key, JSON)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or {0}
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes | None, dict]] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < expect and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                out.extend((r.key, json.loads(r.value)) for r in records)
        return out
    finally:
        consumer.close(autocommit=False)


def settings_for(topics, output, **changes):
    """``StreamSettings`` on a test's own topics (``conftest.Topics``), Parquet to ``output``."""
    from sentistream.pipelines.stream.settings import StreamSettings

    return StreamSettings(
        bootstrap=topics.bootstrap,
        input_topic=topics.events,
        output_topic=topics.scores,
        dead_letter_topic=topics.dead_letters,
        calls_topic=topics.calls,
        output=str(output),
        group_id=topics.group,
        **changes,
    )


def committed(bootstrap: str, topic: str, group: str, partition: int = 0) -> int | None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        return consumer.committed(TopicPartition(topic, partition))
    finally:
        consumer.close(autocommit=False)


def score_row(segment_id: str, *, video_id: str = "v1", valence: float = 0.5, **changes):
    """A ScoreRow with plausible values (for sink tests that need no models)."""
    import dataclasses

    from sentistream.transforms.schema import SCHEMA_VERSION, ScoreRow

    row = ScoreRow(
        schema_version=SCHEMA_VERSION,
        video_id=video_id,
        source_uri=f"/media/{video_id}.mp4",
        segment_id=segment_id,
        channel=0,
        speaker="unknown",
        role="unknown",
        start_s=0.0,
        end_s=2.5,
        segmenter="captions",
        partial=False,
        speech_level_dbfs=-20.0,
        transcript="hello there",
        transcript_source="captions",
        asr_confidence=None,
        face_present=True,
        face_valence=valence,
        face_confidence=0.8,
        face_expression="happy",
        face_reason=None,
        face_id="face_0",
        voice_present=False,
        voice_valence=None,
        voice_arousal=None,
        voice_confidence=None,
        voice_reason="silence",
        text_present=True,
        text_valence=valence,
        text_confidence=0.7,
        text_reason=None,
        fused_valence=valence,
        fused_label="positive",
        fused_confidence=0.75,
        modalities_present="face,text",
        modalities_enabled="face,voice,text",
        policy_id="default-all",
        policy_rule="*",
        face_model_id="face@1",
        voice_model_id=None,
        text_model_id="text@1",
        fusion_model_id="fixed@1",
        detail_json="{}",
        metadata_json="{}",
        event_time=1_767_225_600.0,
        processed_at=1_767_225_601.0,
    )
    return dataclasses.replace(row, **changes)


def dead_letter_row(video_id: str = "v1", *, segment_id: str | None = None, **changes):
    import dataclasses

    from sentistream.transforms.schema import SCHEMA_VERSION, DeadLetterRow

    row = DeadLetterRow(
        schema_version=SCHEMA_VERSION,
        video_id=video_id,
        source_uri=f"/media/{video_id}.mp4",
        segment_id=segment_id,
        stage="decode",
        error_type="InvalidDataError",
        error="not a media file",
        payload=None,
        processed_at=1_767_225_601.0,
    )
    return dataclasses.replace(row, **changes)


def make_clip(path, sentences, *, duration_s: float, size=(320, 180), fps: float = 10.0):
    """A talking-head mp4 at ``path`` with ``sentences`` spoken one after another (from
    0.5 s, 0.5 s apart) and a WebVTT sidecar of them; returns the path."""
    from sentistream.pipelines.demo.clips import spoken_clip

    return spoken_clip(path, sentences, duration_s=duration_s, size=size, fps=fps)

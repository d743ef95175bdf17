"""The pure-Python Kafka source and sink against a real broker."""

from __future__ import annotations

import json
import threading

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from kafkatools import committed, consume, dead_letter_row, produce, score_row

from sentistream.transforms.io.kafka_config import KafkaReadConfig
from sentistream.transforms.io.kafka_sink import KafkaWriteConfig, WriteRowsToKafka
from sentistream.transforms.io.kafka_source import ReadFromKafkaPy
from sentistream.transforms.schema import to_dict

pytestmark = pytest.mark.kafka

_SEEN: dict[str, list] = {}
_LOCK = threading.Lock()


class _Collect(beam.DoFn):
    """Records (value, event time) into a module-level list: the test runs in-process."""

    def __init__(self, name: str) -> None:
        self._name = name

    def process(self, record, ts=beam.DoFn.TimestampParam):
        with _LOCK:
            _SEEN.setdefault(self._name, []).append((record, float(ts)))


def _run_streaming(config: KafkaReadConfig, name: str) -> list:
    _SEEN.pop(name, None)
    options = PipelineOptions(["--runner=FnApiRunner", "--streaming"])
    with beam.Pipeline(options=options) as p:
        _ = p | ReadFromKafkaPy(config) | beam.ParDo(_Collect(name))
    return _SEEN.get(name, [])


def test_bounded_read_starts_at_committed_offset_and_commits(topics):
    values = [f"e{i}".encode() for i in range(10)]
    produce(topics.bootstrap, topics.events, values)
    # A previous run of this group got through offset 3.
    from kafka import KafkaConsumer

    from sentistream.transforms.io.kafka_offsets import commit_offset

    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap, group_id=topics.group)
    commit_offset(consumer, topics.events, 0, 4)
    consumer.close(autocommit=False)

    config = KafkaReadConfig(
        topics.bootstrap, (topics.events,), topics.group, max_records_per_partition=6
    )
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        got = p | ReadFromKafkaPy(config) | beam.Map(lambda r: (r.offset, r.value))
        assert_that(got, equal_to([(i, values[i]) for i in range(4, 10)]))
    assert committed(topics.bootstrap, topics.events, topics.group) == 10


def test_unbounded_read_resumes_where_it_stopped_with_record_event_time(topics):
    produce(topics.bootstrap, topics.events, [b"a", b"b", b"c"])
    config = KafkaReadConfig(topics.bootstrap, (topics.events,), topics.group, idle_stop_s=1.0)
    first = _run_streaming(config, "first")
    assert [r.value for r, _ in first] == [b"a", b"b", b"c"]
    assert [r.offset for r, _ in first] == [0, 1, 2]
    for record, event_time in first:
        assert event_time == pytest.approx(record.timestamp_ms / 1000.0)
    assert committed(topics.bootstrap, topics.events, topics.group) == 3

    produce(topics.bootstrap, topics.events, [b"d", b"e"])
    second = _run_streaming(config, "second")
    assert [r.value for r, _ in second] == [b"d", b"e"]  # nothing twice, nothing lost
    assert committed(topics.bootstrap, topics.events, topics.group) == 5


def test_read_without_commit_leaves_the_group_untouched(topics):
    produce(topics.bootstrap, topics.events, [b"x"])
    config = KafkaReadConfig(
        topics.bootstrap,
        (topics.events,),
        topics.group,
        max_records_per_partition=1,
        commit=False,
    )
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = p | ReadFromKafkaPy(config)
    assert committed(topics.bootstrap, topics.events, topics.group) is None


def test_sink_keys_scores_by_segment_id_and_routes_dead_letters(topics):
    rows = [score_row("seg-a", valence=0.5), score_row("seg-b", valence=-0.25)]
    dead = [dead_letter_row("v9", segment_id=None), dead_letter_row("v9", segment_id="seg-z")]
    config = KafkaWriteConfig(topics.bootstrap, topics.scores, topics.dead_letters)
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = p | beam.Create(rows + dead, reshuffle=False) | WriteRowsToKafka(config)

    scores = consume(topics.bootstrap, topics.scores, expect=2)
    assert sorted(scores, key=lambda kv: kv[0]) == [
        (b"seg-a", json.loads(json.dumps(to_dict(rows[0])))),
        (b"seg-b", json.loads(json.dumps(to_dict(rows[1])))),
    ]
    dead_out = consume(topics.bootstrap, topics.dead_letters, expect=2)
    assert sorted(k for k, _ in dead_out) == [b"seg-z", b"v9"]
    assert {v["error_type"] for _, v in dead_out} == {"InvalidDataError"}


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="group_id"):
        KafkaReadConfig("h:1", ("t",), "")
    with pytest.raises(ValueError, match="topics"):
        KafkaReadConfig("h:1", "t", "g")  # a bare string is not a tuple of topics
    with pytest.raises(ValueError, match="start"):
        KafkaReadConfig("h:1", ("t",), "g", start="middle")
    with pytest.raises(ValueError, match="io must be"):
        WriteRowsToKafka(KafkaWriteConfig("h:1", "a", "b"), io="java")

"""The local Kafka-protocol broker: starts, serves, stops; topics are created once."""

from __future__ import annotations

import socket

import pytest
from kafkatools import consume, produce

from sentistream.pipelines.broker import LocalBroker, ensure_topics, kafka_for, tansu_binary

pytestmark = pytest.mark.kafka


def test_local_broker_round_trip_and_stop():
    with LocalBroker() as broker:
        assert broker.running
        assert ensure_topics(broker.bootstrap, ["t1", "t2"]) == ["t1", "t2"]
        assert ensure_topics(broker.bootstrap, ["t1", "t3"]) == ["t3"]  # t1 exists
        produce(broker.bootstrap, "t1", [b'{"n": 1}', b'{"n": 2}'])
        assert [v for _, v in consume(broker.bootstrap, "t1", expect=2)] == [{"n": 1}, {"n": 2}]
    assert not broker.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = broker.bootstrap


def test_kafka_for_uses_a_given_broker_or_starts_one(kafka_bootstrap):
    with kafka_for(kafka_bootstrap, ["kf-given"]) as bootstrap:
        assert bootstrap == kafka_bootstrap
        produce(bootstrap, "kf-given", [b'{"n": 1}'])  # the topic exists
    with kafka_for(None, ["kf-local"]) as bootstrap:
        assert bootstrap != kafka_bootstrap
        produce(bootstrap, "kf-local", [b'{"n": 2}'])
        assert [v for _, v in consume(bootstrap, "kf-local", expect=1)] == [{"n": 2}]
    with pytest.raises(OSError):  # the embedded broker is stopped on exit
        host, port = bootstrap.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=1).close()


def test_missing_binary_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("SENTISTREAM_TANSU", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="SENTISTREAM_TANSU"):
        tansu_binary()
    with pytest.raises(FileNotFoundError):
        LocalBroker().start()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="port"):
        LocalBroker(port=70000)
    with pytest.raises(ValueError, match="partitions"):
        ensure_topics("127.0.0.1:1", ["x"], partitions=0)

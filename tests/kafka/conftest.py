"""Fixtures for tests that talk to a real Kafka-protocol broker (never a mock).

``SENTISTREAM_KAFKA_BOOTSTRAP`` points the tests at a running broker (CI starts one);
otherwise one local Tansu broker is started for the session. Each test gets topics and
a consumer group of its own, so tests never see each other's records.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sentistream.pipelines.broker import LocalBroker, ensure_topics

BOOTSTRAP_ENV = "SENTISTREAM_KAFKA_BOOTSTRAP"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of the broker for this test session."""
    existing = os.environ.get(BOOTSTRAP_ENV)
    if existing:
        yield existing
        return
    try:
        broker = LocalBroker().start()
    except FileNotFoundError as exc:
        pytest.skip(f"no Kafka broker: {exc}")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@dataclass(frozen=True)
class Topics:
    """A test's own topic names and consumer group."""

    bootstrap: str
    events: str
    scores: str
    dead_letters: str
    calls: str
    group: str


@pytest.fixture
def topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Topics:
    tag = f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")
    names = Topics(
        bootstrap=kafka_bootstrap,
        events=f"events-{tag}",
        scores=f"scores-{tag}",
        dead_letters=f"dead-{tag}",
        calls=f"calls-{tag}",
        group=f"group-{tag}",
    )
    ensure_topics(kafka_bootstrap, [names.events, names.scores, names.dead_letters, names.calls])
    return names

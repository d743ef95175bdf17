"""The streaming graph: events -> parse -> score -> Kafka + Parquet, one live stage.

::

    Kafka events -> ParseEvents -> Score -> rows -> Kafka (scores / dead letters)
                        |                     \\-> Parquet (streaming files)
                        \\-> dead letters (bad events) -> Kafka + Parquet

No Flatten, join or shuffle: on a local unbounded run only one fused stage runs live
(docs/DESIGN.md), so both row streams go to the same two sinks separately.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import apache_beam as beam

from sentistream.pipelines.stream.settings import StreamSettings
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.io.events import DEAD_LETTER_TAG, ParseEvents
from sentistream.transforms.io.kafka_sink import WriteRowsToKafka
from sentistream.transforms.io.parquet_stream import ParquetStreamConfig, WriteRowsToParquetStream

# (PipelineConfig) -> PTransform from VideoRef to ScoreRow / DeadLetterRow.
Scorer = Callable[[PipelineConfig], beam.PTransform]


def default_scorer(config: PipelineConfig) -> beam.PTransform:
    from sentistream.transforms.score import ScoreVideos

    return ScoreVideos(config)


def load_scorer(spec: str | None) -> Scorer:
    """``module:attr`` or ``path/to/file.py:attr`` -> a ``Scorer`` (None: ``ScoreVideos``)."""
    if not spec:
        return default_scorer
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError(f"--scorer must be 'module:attr' or 'file.py:attr', got {spec!r}")
    if where.endswith(".py"):
        mod_spec = importlib.util.spec_from_file_location("_sentistream_scorer", where)
        if mod_spec is None or mod_spec.loader is None:
            raise ValueError(f"--scorer: cannot load {where!r}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[mod_spec.name] = module
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    scorer = getattr(module, attr, None)
    if not callable(scorer):
        raise ValueError(f"--scorer: {attr!r} in {where!r} is not callable")
    return scorer


@dataclass(frozen=True)
class StreamJob:
    """What a stream applies: its settings, the processing config, Beam's own flags
    (``--runner ...``) and the scorer."""

    settings: StreamSettings
    config: PipelineConfig = field(default_factory=PipelineConfig)
    beam_args: tuple[str, ...] = ()
    scorer: Scorer = default_scorer


def attach_outputs(records: beam.PCollection, job: StreamJob) -> None:
    """Events (``KafkaRecord`` or bytes) -> parse -> score -> Kafka + Parquet sinks."""
    settings = job.settings
    parsed = records | "ParseEvents" >> ParseEvents(check_exists=settings.check_exists)
    rows = parsed.refs | "Score" >> job.scorer(job.config)
    for label, pcoll in (("Rows", rows), ("EventDeadLetters", parsed[DEAD_LETTER_TAG])):
        attach_sinks(pcoll, settings, label)


def attach_sinks(pcoll: beam.PCollection, settings: StreamSettings, label: str) -> None:
    """Score and dead-letter rows -> the output / dead-letter topics and Parquet."""
    _ = pcoll | f"{label}ToKafka" >> WriteRowsToKafka(settings.write_config(), io=settings.kafka_io)
    if settings.output:
        parquet = ParquetStreamConfig(settings.output, max_delay_s=settings.parquet_max_delay_s)
        _ = pcoll | f"{label}ToParquet" >> WriteRowsToParquetStream(parquet)

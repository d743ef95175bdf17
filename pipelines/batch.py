"""The batch (backfill) job: media files in, partitioned Parquet out.

    python -m sentistream.pipelines.batch --input 'videos/*.mp4' --output out/ [--runner ...]

or ``sentistream run`` (same flags). An input already scored into OUT by the same models
and policy is skipped (``resume.py``; ``--rescore`` scores it again); on a terminal a
progress line shows files done, media seconds, real-time factor and time left. Output
layout (``layout.py``), hive-partitioned by processing date:

    OUT/scores/date=YYYY-MM-DD/run-<RUN_ID>-<shard>.parquet        segments
    OUT/calls/date=YYYY-MM-DD/run-<RUN_ID>-<shard>.parquet         recordings x speakers
    OUT/dead_letters/date=YYYY-MM-DD/run-<RUN_ID>-<shard>.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.parquetio import WriteToParquet

from sentistream.pipelines.flags import add_flags, from_args, parser_with
from sentistream.pipelines.inputs import Inputs, expand_inputs
from sentistream.pipelines.layout import OutputPaths, new_run_id, prepare_root
from sentistream.pipelines.logs import configure_logging, default_level
from sentistream.pipelines.options import BATCH_FLAGS, add_model_arguments, config_from_args
from sentistream.pipelines.progress import ProgressDisplay
from sentistream.pipelines.resume import scored_video_ids
from sentistream.pipelines.runner import (
    LOCAL_RUNNERS,
    beam_options,
    cores_per_worker,
    counters_of,
    runner_of,
)
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.io.parquet_stream import KINDS
from sentistream.transforms.io.progress import ProgressLog
from sentistream.transforms.records import VideoRef
from sentistream.transforms.schema import DeadLetterRow, to_dict
from sentistream.transforms.score import (
    ScoreVideos,
    configured_fusion_id,
    configured_model_ids,
    split_rows,
)

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSettings:
    """What the batch job reads and where it writes.

    Attributes:
        inputs: media files, globs or URIs.
        manifest: a JSONL file, one input per line (``inputs.read_manifest``).
        channel_roles: roles of the audio channels of every input, e.g. agent, customer.
        output: output root, a local path or URI (``layout.py``).
        workers: local worker processes (FnApiRunner multi-processing when > 1).
        strict: a bad manifest line or glob match is an error, not a dead letter.
        rescore: score every input, even those OUT already holds (``resume.py``).
        progress: show progress while a local runner runs (``progress.py``).
    """

    inputs: tuple[str, ...] = ()
    manifest: str | None = None
    channel_roles: tuple[str, ...] | None = None
    output: str = "out"
    workers: int = 1
    strict: bool = False
    rescore: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers!r}")

    def expand(self) -> Inputs:
        """The inputs expanded into refs and dead letters (``pipelines/inputs.py``);
        ``ValueError`` when a pattern matches nothing or, ``strict``, on a bad input."""
        return expand_inputs(self.inputs, self.manifest, self.channel_roles, strict=self.strict)


def add_arguments(parser: Any) -> None:
    """Every option of the batch job: inputs and output, then the processing options."""
    add_flags(parser, BATCH_FLAGS, BatchSettings())
    add_model_arguments(parser)


def settings_from_args(args: argparse.Namespace) -> BatchSettings:
    return from_args(args, BATCH_FLAGS, BatchSettings())


def build(
    pipeline: beam.Pipeline,
    refs: Sequence[VideoRef],
    config: PipelineConfig,
    paths: OutputPaths,
    input_dead_letters: Sequence[DeadLetterRow] = (),
    progress: ProgressLog | None = None,
) -> None:
    """Attach the whole batch graph to ``pipeline``; ``input_dead_letters`` (inputs that
    could not be read at all) go to the dead-letter output with the others; ``progress``
    is where finished inputs are noted."""
    rows = (
        pipeline
        # Create reshuffles, so inputs spread over workers (one bundle otherwise).
        | "Inputs" >> beam.Create(list(refs))
        | "Score" >> ScoreVideos(config, progress=progress)
    )
    parts = split_rows(rows)
    if input_dead_letters:
        bad = pipeline | "InputDeadLetters" >> beam.Create(list(input_dead_letters))
        parts[DeadLetterRow] = (parts[DeadLetterRow], bad) | "AllDeadLetters" >> beam.Flatten()
    for row_type, (kind, schema) in KINDS.items():
        label = kind.title().replace("_", "")  # Scores, Calls, DeadLetters
        _ = (
            parts[row_type]
            | f"{label}ToDict" >> beam.Map(to_dict)
            | f"Write{label}"
            >> WriteToParquet(paths.staged(kind), schema, file_name_suffix=".parquet")
        )


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote, its counters (``namespace/name`` -> value), and how many inputs
    it skipped as already scored."""

    paths: OutputPaths
    counters: dict[str, int]
    skipped: int = 0


def run_job(
    job: BatchSettings,
    config: PipelineConfig,
    beam_args: Sequence[str] = (),
    *,
    pipeline: beam.Pipeline | None = None,
) -> RunResult:
    """Run the batch job to completion on ``pipeline`` (default: one built from
    ``beam_args`` and ``job.workers``); returns where it wrote and its counters."""
    inputs = job.expand()
    refs = inputs.refs
    if not refs and not inputs.dead_letters:
        raise ValueError("no input: give --input and/or --manifest")
    now = dt.datetime.now(dt.UTC)
    paths = OutputPaths.for_run(job.output, new_run_id(now), now.date())
    prepare_root(job.output)
    refs, skipped = _not_yet_scored(refs, job, config)
    _LOG.info(
        "scoring %d input(s) into %s (%d already scored there, skipped%s; %d refused "
        "before decoding: dead letters)",
        len(refs),
        job.output,
        skipped,
        "" if job.rescore else ": --rescore scores them again",
        len(inputs.dead_letters),
    )
    if not refs and not inputs.dead_letters:
        return RunResult(paths=paths, counters={}, skipped=skipped)
    if pipeline is None:
        pipeline = beam.Pipeline(options=beam_options(beam_args, workers=job.workers))
    local = runner_of(beam_args) in (None, *LOCAL_RUNNERS)
    with ProgressDisplay(len(refs)) if job.progress and local else nullcontext() as shown:
        build(pipeline, refs, config, paths, inputs.dead_letters, shown and shown.log)
        result = pipeline.run()
        result.wait_until_finish()
    paths.publish()  # only now do the run's files appear under scores/, calls/, ...
    return RunResult(paths=paths, counters=counters_of(result), skipped=skipped)


def _not_yet_scored(
    refs: Sequence[VideoRef], job: BatchSettings, config: PipelineConfig
) -> tuple[list[VideoRef], int]:
    """``refs`` without those OUT holds already (unless ``job.rescore``), and how many
    were left out."""
    if job.rescore:
        return list(refs), 0
    ids = configured_model_ids(config)
    done = scored_video_ids(job.output, config.policy.policy_id, ids, configured_fusion_id(config))
    todo = [r for r in refs if r.resolved_id not in done]
    return todo, len(refs) - len(todo)


def run(
    argv: Sequence[str] | None = None, *, test_pipeline: beam.Pipeline | None = None
) -> RunResult:
    """The job from its command line (Beam's ``run(argv)`` idiom): options this job does
    not know are Beam's. ``test_pipeline``: run on it instead (its own options apply)."""
    args, beam_args = parser_with(__doc__, add_arguments).parse_known_args(argv)
    job = settings_from_args(args)
    return run_job(job, job_config(args, job, beam_args), beam_args, pipeline=test_pipeline)


def job_config(
    args: argparse.Namespace, job: BatchSettings, beam_args: Sequence[str]
) -> PipelineConfig:
    """The processing config of a batch job's parsed options: thread defaults sized for
    one of its worker processes (``runner.cores_per_worker``)."""
    return config_from_args(args, cores=cores_per_worker(beam_args, job.workers))


def main(argv: Sequence[str] | None = None) -> None:
    configure_logging(default_level("INFO"))
    run(argv)


if __name__ == "__main__":
    main()

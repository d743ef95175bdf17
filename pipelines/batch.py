"""The batch (backfill) job: media files in, partitioned Parquet out.

    python -m sentistream.pipelines.batch --input 'videos/*.mp4' --output out/ [--runner ...]

or ``sentistream run`` (same flags). Output layout (hive-partitioned by processing date):

    OUT/scores/date=YYYY-MM-DD/run-<RUN_ID>-<shard>.parquet
    OUT/dead_letters/date=YYYY-MM-DD/run-<RUN_ID>-<shard>.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import WriteToParquet
from apache_beam.options.pipeline_options import PipelineOptions

from sentistream.pipelines.options import add_model_arguments, config_from_args
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.records import VideoRef
from sentistream.transforms.schema import DEAD_LETTER_SCHEMA, SCORE_SCHEMA, to_dict
from sentistream.transforms.score import ScoreVideos, split_rows

_LOG = logging.getLogger(__name__)
# Files a glob may also match that are not media: sidecars and manifests.
SIDECAR_SUFFIXES = (".vtt", ".srt", ".json", ".jsonl", ".txt", ".md", ".csv")


def add_io_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        help="media file, glob or URI (repeatable); default: the built-in sample",
    )
    parser.add_argument(
        "--manifest",
        default=None,
        help="JSONL file, one object per input: uri, video_id, channel_roles, "
        "metadata, caption_uri",
    )
    parser.add_argument(
        "--channel-roles",
        default=None,
        help="roles of the audio channels for every input, e.g. agent,customer",
    )
    parser.add_argument("--output", default="out", help="output root (local path or URI)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local worker processes (FnApiRunner multi-processing when > 1)",
    )


def refs_from_args(args: argparse.Namespace) -> list[VideoRef]:
    """Expand globs and the manifest into refs; fail fast when nothing matches."""
    roles = tuple(r.strip() for r in args.channel_roles.split(",")) if args.channel_roles else None
    refs: list[VideoRef] = []
    for pattern in args.input:
        matched = [
            m.path
            for result in FileSystems.match([pattern])
            for m in result.metadata_list
            if not m.path.lower().endswith(SIDECAR_SUFFIXES)
        ]
        if not matched:
            raise ValueError(f"--input {pattern!r} matches no media file")
        refs.extend(VideoRef(uri=path, channel_roles=roles) for path in sorted(matched))
    if args.manifest:
        refs.extend(read_manifest(args.manifest, roles))
    return refs


def read_manifest(path: str, default_roles: tuple[str, ...] | None) -> list[VideoRef]:
    refs = []
    with FileSystems.open(path) as f:
        for n, line in enumerate(f.read().decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                roles = item.get("channel_roles")
                refs.append(
                    VideoRef(
                        uri=item["uri"],
                        video_id=item.get("video_id"),
                        caption_uri=item.get("caption_uri"),
                        channel_roles=tuple(roles) if roles else default_roles,
                        metadata={str(k): str(v) for k, v in item.get("metadata", {}).items()},
                    )
                )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{path}:{n}: bad manifest line ({exc}): {line[:200]}") from exc
    return refs


@dataclass(frozen=True)
class OutputPaths:
    scores_prefix: str
    dead_letters_prefix: str

    @staticmethod
    def for_run(root: str, run_id: str, today: dt.date) -> OutputPaths:
        part = f"date={today.isoformat()}"
        return OutputPaths(
            scores_prefix=FileSystems.join(root, "scores", part, f"run-{run_id}"),
            dead_letters_prefix=FileSystems.join(root, "dead_letters", part, f"run-{run_id}"),
        )


def build(
    pipeline: beam.Pipeline, refs: Sequence[VideoRef], config: PipelineConfig, paths: OutputPaths
) -> None:
    """Attach the whole batch graph to ``pipeline``."""
    rows = (
        pipeline
        # Create reshuffles, so inputs spread over workers (one bundle otherwise).
        | "Inputs" >> beam.Create(list(refs))
        | "Score" >> ScoreVideos(config)
    )
    scores, dead = split_rows(rows)
    _ = (
        scores
        | "ScoresToDict" >> beam.Map(to_dict)
        | "WriteScores"
        >> WriteToParquet(paths.scores_prefix, SCORE_SCHEMA, file_name_suffix=".parquet")
    )
    _ = (
        dead
        | "DeadToDict" >> beam.Map(to_dict)
        | "WriteDeadLetters"
        >> WriteToParquet(
            paths.dead_letters_prefix, DEAD_LETTER_SCHEMA, file_name_suffix=".parquet"
        )
    )


def beam_options(beam_args: Sequence[str], workers: int) -> PipelineOptions:
    """Beam options: FnApiRunner locally (no Prism download), any ``--runner`` passed through.

    ``workers`` > 1 asks the local FnApiRunner for that many worker processes.
    """
    args = list(beam_args)
    runner = next((a.split("=", 1)[1] for a in args if a.startswith("--runner=")), None)
    if runner is None and "--runner" in args:
        runner = args[args.index("--runner") + 1]
    if runner is None:
        args.append("--runner=FnApiRunner")
        runner = "FnApiRunner"
    if workers > 1 and runner in ("FnApiRunner", "DirectRunner"):
        args += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return PipelineOptions(args)


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote, and its counters (``namespace/name`` -> value)."""

    paths: OutputPaths
    counters: dict[str, int]


def counters_of(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """The committed counters of a finished pipeline, by ``namespace/name``."""
    counters: dict[str, int] = {}
    for c in result.metrics().query()["counters"]:
        key = f"{c.key.metric.namespace}/{c.key.metric.name}"
        counters[key] = counters.get(key, 0) + int(c.committed or 0)
    return counters


def run(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> RunResult:
    """Run the batch job to completion; returns where it wrote and its counters."""
    config = config_from_args(args)
    refs = refs_from_args(args)
    if not refs:
        raise ValueError("no input: give --input and/or --manifest")
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    paths = OutputPaths.for_run(args.output, run_id, dt.datetime.now(dt.UTC).date())
    if "://" not in args.output:
        Path(args.output).mkdir(parents=True, exist_ok=True)
    _LOG.info("scoring %d input(s) into %s", len(refs), args.output)
    pipeline = beam.Pipeline(options=beam_options(beam_args, args.workers))
    build(pipeline, refs, config, paths)
    result = pipeline.run()
    result.wait_until_finish()
    return RunResult(paths=paths, counters=counters_of(result))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_io_arguments(parser)
    add_model_arguments(parser)
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(level=os.environ.get("SENTISTREAM_LOG", "INFO"))
    run(args, beam_args)


if __name__ == "__main__":
    main()

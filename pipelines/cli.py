"""The ``sentistream`` command.

    sentistream run                      # score the built-in demo sample into ./out
    sentistream run --input 'calls/*.mp4' --output out/ [--channel-roles agent,customer]
    sentistream stream [--bootstrap HOST:PORT]   # Kafka events in, Kafka + Parquet out
    sentistream demo                     # local broker + the sample, streamed end to end
    sentistream train {face,voice,text,fusion} / sentistream evaluate {...}
    sentistream sample --output DIR      # write the demo sample video (and its captions)

``sentistream SUBCOMMAND --help`` lists every option. Unknown options are passed to Beam
(e.g. ``--runner=DataflowRunner --project=...``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path


class _QuietBeamImport(logging.Filter):
    """Beam logs 'apitools not found' on import when the GCP extras are absent: noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("apitools not found")


logging.getLogger().addFilter(_QuietBeamImport())

from sentistream.pipelines import batch
from sentistream.pipelines.demo import local as demo
from sentistream.pipelines.stream import runtime as stream
from sentistream.pipelines.train import cli as train_cli  # noqa: E402 - after the filter
from sentistream.pipelines.options import add_model_arguments  # noqa: E402


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sentistream"


def _cmd_run(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from sentistream.pipelines.report import summarize

    if not args.input and not args.manifest:
        from sentistream.pipelines.demo.synth import make_sample

        sample = make_sample(default_cache_dir() / "sample")
        print(
            f"No --input given: scoring the built-in DEMO sample {sample}\n"
            "(a generated clip: NASA's public-domain astronaut portrait + synthesized speech).",
            file=sys.stderr,
        )
        args.input = [str(sample)]
    result = batch.run(args, beam_args)
    if "://" not in args.output:
        print(summarize(result.paths))
    return 0


def _cmd_sample(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from sentistream.pipelines.demo.synth import make_sample

    print(make_sample(Path(args.output)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentistream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default=os.environ.get("SENTISTREAM_LOG", "WARNING"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="score media files (batch) into Parquet",
        description=batch.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_io_arguments(run)
    add_model_arguments(run)
    run.set_defaults(func=_cmd_run)

    stream.add_parser(sub)
    demo.add_parser(sub)
    train_cli.add_parsers(sub)

    sample = sub.add_parser("sample", help="write the built-in demo sample video")
    sample.add_argument("--output", default="sample", help="folder to write it to")
    sample.set_defaults(func=_cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(  # force: importing Beam already configured the root logger
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger().addFilter(_QuietBeamImport())
    unknown_flags = [a for a in beam_args if not a.startswith("--")]
    if unknown_flags:
        parser.error(f"unexpected arguments: {unknown_flags}")
    try:
        return args.func(args, beam_args)
    except ValueError as exc:
        print(f"sentistream: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

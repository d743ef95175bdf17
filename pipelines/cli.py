"""The ``sentistream`` command.

    sentistream run                      # score the built-in demo sample into ./out
    sentistream run --input 'calls/*.mp4' --output out/ [--channel-roles agent,customer]
    sentistream stream [--bootstrap HOST:PORT]   # Kafka events in, Kafka + Parquet out
    sentistream demo                     # local broker + the sample, streamed end to end
    sentistream train {face,voice,text,fusion} / sentistream evaluate {...}
    sentistream sample --output DIR      # write the demo sample video (and its captions)
    sentistream dashboard OUT            # a web dashboard over an output root
    sentistream report VIDEO_ID --output OUT   # one recording as HTML + PNG, to share

``sentistream SUBCOMMAND --help`` lists every option. Unknown options are passed to Beam
(e.g. ``--runner=DataflowRunner --project=...``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentistream.pipelines import logs

logging.getLogger().addFilter(logs.QuietBeamImport())  # before Beam is imported

from sentistream.pipelines import batch  # noqa: E402 - after the filter
from sentistream.pipelines.demo import local as demo  # noqa: E402
from sentistream.pipelines.demo.sample import (  # noqa: E402
    DEMO_BANNER,
    MissingDemoExtra,
    builtin_sample,
)
from sentistream.pipelines.stream import command as stream  # noqa: E402
from sentistream.pipelines.train import cli as train_cli  # noqa: E402

Handler = Callable[[argparse.Namespace, Sequence[str]], int]
_BATCH_DONE = False  # a batch run finished and published: the process may end at once
# Subcommands that follow Kafka: their libraries' INFO lines are held back.
_QUIET = {"stream": logs.STREAM_NOISY, "demo": logs.STREAM_NOISY}


def _cmd_run(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from sentistream.pipelines.layout import is_local
    from sentistream.pipelines.run_summary import summarize

    job = batch.settings_from_args(args)
    if not job.inputs and not job.manifest:
        sample = builtin_sample()
        print(
            f"No --input given: scoring the built-in DEMO sample {sample}\n{DEMO_BANNER}.",
            file=sys.stderr,
        )
        job = dataclasses.replace(job, inputs=(str(sample),))
    result = batch.run_job(job, batch.job_config(args, job, beam_args), beam_args)
    if result.skipped:
        print(
            f"{result.skipped} input(s) skipped: already scored in {job.output} by the same "
            "models and policy (--rescore scores them again)"
        )
    if is_local(job.output):
        print(summarize(result.paths))
    global _BATCH_DONE
    _BATCH_DONE = True
    return 0


def _cmd_dashboard(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from sentistream.pipelines.dashboard.app import serve

    if not Path(args.output).is_dir():
        raise ValueError(f"{args.output!r} is not an output folder (run `sentistream run` first)")
    serve(args.output, host=args.host, port=args.port, refresh_s=args.refresh)
    return 0


def _add_dashboard_arguments(parser: Any) -> None:
    parser.add_argument("output", help="output root of `sentistream run` / `stream`")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on")
    parser.add_argument(
        "--refresh", type=float, default=10.0, help="seconds between re-reads of the output"
    )


def _cmd_report(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from sentistream.pipelines.dashboard.report import write_report

    for path in write_report(args.output, args.video_id, args.to):
        print(path)
    return 0


def _add_report_arguments(parser: Any) -> None:
    parser.add_argument("video_id", help="the recording's video_id (as in the output rows)")
    parser.add_argument("--output", default="out", help="output root holding its rows")
    parser.add_argument("--to", default=None, help="folder for the files (default OUT/reports)")


def _cmd_sample(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    print(builtin_sample(Path(args.output)))
    return 0


def _add_sample_arguments(parser: Any) -> None:
    parser.add_argument("--output", default="sample", help="folder to write it to")


def _command(
    sub: Any, name: str, help: str, description: str | None, func: Handler, add: Any
) -> None:
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add(parser)
    parser.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentistream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default=logs.default_level())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(
        sub,
        "run",
        "score media files (batch) into Parquet",
        batch.__doc__,
        _cmd_run,
        batch.add_arguments,
    )
    _command(
        sub,
        "stream",
        "score events from Kafka continuously into Kafka and Parquet",
        stream.__doc__,
        stream.run_from_args,
        stream.add_arguments,
    )
    _command(
        sub,
        "demo",
        "start a local broker, stream the built-in sample through, show rows arriving",
        demo.__doc__,
        demo.run_from_args,
        demo.add_arguments,
    )
    train_cli.add_parsers(sub)
    _command(
        sub,
        "dashboard",
        "serve a web dashboard over an output root (DuckDB over its Parquet)",
        None,
        _cmd_dashboard,
        _add_dashboard_arguments,
    )
    _command(
        sub,
        "report",
        "write one recording's report (self-contained HTML and a PNG) from an output root",
        None,
        _cmd_report,
        _add_report_arguments,
    )
    _command(
        sub,
        "sample",
        "write the built-in demo sample video",
        None,
        _cmd_sample,
        _add_sample_arguments,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    logs.configure_logging(args.log_level, quiet=_QUIET.get(args.command, ()))
    # Beam's options pass through; a value may follow its flag ("--runner DaskRunner")
    unknown_flags = [
        a
        for i, a in enumerate(beam_args)
        if not a.startswith("--")
        and not (i and beam_args[i - 1].startswith("--") and "=" not in beam_args[i - 1])
    ]
    if unknown_flags:
        parser.error(f"unexpected arguments: {unknown_flags}")
    try:
        return args.func(args, beam_args)
    except (ValueError, MissingDemoExtra) as exc:
        print(f"sentistream: error: {exc}", file=sys.stderr)
        return 2


def console() -> None:
    """The ``sentistream`` command: :func:`main`, then, after a batch run, a fast exit.

    Tearing the interpreter down after ``run`` (freeing the models, joining the native
    libraries' thread pools) took about 1 s of a 6 s cold run of one 60 s file. Everything
    the run wrote is closed and published before ``main`` returns, so the process ends
    there, output streams and logs flushed. Other commands, and a failed run, exit
    normally."""
    rc = main()
    if _BATCH_DONE:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    console()

"""``sentistream evaluate devset``, ``evaluate pipeline``, ``evaluate calibrate``,
``evaluate diarization`` and ``evaluate table``.

Registered by the training CLI (``pipelines/train/cli.py``) beside ``evaluate face`` etc.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentistream.pipelines.evaluation import diarization, table
from sentistream.pipelines.evaluation.calibrate import fit_calibration
from sentistream.pipelines.evaluation.devset import CONDITIONS, build_devset
from sentistream.pipelines.evaluation.pipeline import evaluate_pipeline, write_report
from sentistream.pipelines.evaluation.report import markdown
from sentistream.pipelines.options import add_model_arguments, config_from_args


def add_parsers(models: Any) -> None:
    """Add ``devset``, ``pipeline``, ``calibrate`` and ``table`` to ``evaluate``."""
    dev = models.add_parser(
        "devset", help="generate labelled talking-head clips from the shared data"
    )
    dev.add_argument("--data", type=Path, required=True, help="the shared data root")
    dev.add_argument("--out", type=Path, required=True, help="folder for media + manifest")
    dev.add_argument("--per-label", type=int, default=12, help="clips per valence and condition")
    dev.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    dev.add_argument("--seed", type=int, default=0)
    dev.set_defaults(func=_devset)

    pipe = _labelled_parser(models, "pipeline", evaluate_pipeline, _pipeline)
    pipe.add_argument("--output", type=Path, help="where the run's rows go (default: a temp dir)")
    pipe.add_argument("--report", type=Path, help="report JSON (a .md copy is written beside)")
    pipe.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    pipe.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    cal = _labelled_parser(models, "calibrate", fit_calibration, _calibrate)
    cal.add_argument("--out", type=Path, required=True, help="folder for the bundle")

    dia = models.add_parser(
        "diarization",
        help="diarization error rate on conversations built from real utterances",
        description=diarization.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dia.add_argument("--data", type=Path, required=True, help="the shared data root")
    dia.add_argument("--work", type=Path, help="where the conversations go (default: temp)")
    dia.add_argument("--report", type=Path, help="report JSON (a .md copy is written beside)")
    dia.add_argument("--count", type=int, default=20, help="conversations per pool and size")
    dia.add_argument("--seed", type=int, default=0)
    dia.add_argument(
        "--sweep", type=float, nargs="*", default=[], help="thresholds to try on the tune pool"
    )
    add_model_arguments(dia)
    dia.set_defaults(func=_diarization)

    tab = models.add_parser("table", help="the README models table, from docs/reports")
    mode = tab.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite it in README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md is stale")
    tab.set_defaults(func=_table)


def _labelled_parser(models: Any, name: str, entry: Any, func: Any) -> argparse.ArgumentParser:
    """A subcommand over a labelled manifest that runs the batch job: its module docstring
    as the description, ``--data`` and every processing option of ``run``."""
    doc = sys.modules[entry.__module__].__doc__ or ""
    parser = models.add_parser(
        name,
        help=doc.strip().splitlines()[0].split(": ", 1)[-1],
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True, help="labelled JSONL manifest")
    add_model_arguments(parser)
    parser.set_defaults(func=func)
    return parser


def _table(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    return table.main(write=args.write, check=args.check)


def _calibrate(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="sentistream-cal-") as tmp:
        meta = fit_calibration(args.data, Path(tmp), args.out, config_from_args(args), beam_args)
    print(f"{meta.path} ({meta.model_id})")
    for source, m in meta.metrics.items():
        if isinstance(m, dict):
            print(f"  {source}: {m}")
    return 0


def _devset(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    manifest = build_devset(
        args.data, args.out, per_label=args.per_label, seed=args.seed, conditions=args.conditions
    )
    print(manifest)
    return 0


def _pipeline(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    config = config_from_args(args)
    with tempfile.TemporaryDirectory(prefix="sentistream-eval-") as tmp:
        output = args.output or Path(tmp)
        report = evaluate_pipeline(
            args.data, output, config, beam_args, seed=args.seed, n_boot=args.bootstrap
        )
    print(markdown(report), end="")
    for error in report["errors"]:
        print(f"error: {error}", file=sys.stderr)
    if args.report:
        write_report(report, args.report)
    return 0


def _diarization(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    config = config_from_args(args)
    with tempfile.TemporaryDirectory(prefix="sentistream-dia-") as tmp:
        report = diarization.evaluate_diarization(
            args.data,
            args.work or Path(tmp),
            config,
            count=args.count,
            seed=args.seed,
            sweep=args.sweep,
        )
    text = diarization.markdown(report)
    print(text, end="")
    if args.report:
        diarization.write_report(report, args.report)
        args.report.with_suffix(".md").write_text(text, encoding="utf-8")
    return 0

"""``sentistream evaluate devset`` and ``sentistream evaluate pipeline`` (see ``pipeline.py``).

Registered by the training CLI (``pipelines/train/cli.py``) beside ``evaluate face`` etc.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentistream.pipelines.evaluation.devset import CONDITIONS, build_devset
from sentistream.pipelines.evaluation.pipeline import evaluate_pipeline, write_report
from sentistream.pipelines.evaluation.report import markdown
from sentistream.pipelines.options import add_model_arguments, config_from_args


def add_parsers(models: Any) -> None:
    """Add ``devset`` and ``pipeline`` to the ``evaluate`` command's subparsers."""
    dev = models.add_parser(
        "devset", help="generate labelled talking-head clips from the shared data"
    )
    dev.add_argument("--data", type=Path, required=True, help="the shared data root")
    dev.add_argument("--out", type=Path, required=True, help="folder for media + manifest")
    dev.add_argument("--per-label", type=int, default=12, help="clips per valence and condition")
    dev.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    dev.add_argument("--seed", type=int, default=0)
    dev.set_defaults(func=_devset)

    pipe = models.add_parser(
        "pipeline",
        help="run the batch pipeline on labelled media and score every modality",
        description=sys.modules[evaluate_pipeline.__module__].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pipe.add_argument("--data", type=Path, required=True, help="labelled JSONL manifest")
    pipe.add_argument("--output", type=Path, help="where the run's rows go (default: a temp dir)")
    pipe.add_argument("--report", type=Path, help="report JSON (a .md copy is written beside)")
    pipe.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    pipe.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    add_model_arguments(pipe)
    pipe.set_defaults(func=_pipeline)


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

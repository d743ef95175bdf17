"""``sentistream train {face,voice,text,fusion}`` and ``sentistream evaluate {...}``.

    sentistream train fusion --data ../shared/data --out models/weights
    sentistream train text   --data my_calls.csv --layout manifest --out bundles/
    sentistream evaluate text --data ../shared/data/meld --split dev
    sentistream evaluate fusion --data scores.csv --bundle bundles/fusion-late-mlp.json

``--data`` is a dataset in a standard layout (``--layout`` ravdess | tess | ckplus | meld |
tweeteval | manifest, or ``auto``), or the shared data root (``ravdess_audio/``, ``tess/``,
``ckplus48/``, ``meld/``, ``tweeteval/``), where ``train voice`` / ``train text`` run the
models' own training (``models/training/voice_train.py``, ``models/training/text_train.py``) unchanged.
Every command writes a JSON report and a Markdown copy (``--report``); ``train`` also writes
the bundle and its model card (generated from the report) to ``--out``. Splits keep
speakers, subjects and dialogues on one side; runs are seeded and deterministic on CPU.
Also runnable as ``python -m sentistream.pipelines.train.cli train ...``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentistream.models.training.datasets import LAYOUTS
from sentistream.pipelines.train import face as train_face
from sentistream.pipelines.train import fusion as train_fusion
from sentistream.pipelines.train import text as train_text
from sentistream.pipelines.train import voice as train_voice
from sentistream.pipelines.train.common import DEFAULT_BUNDLES, SHARED
from sentistream.pipelines.train.fusion import (
    FUSION_SUMMARY,
    PAIRED_FAILURES,
    PAIRED_NOTE,
    TABLE_FAILURES,
    fixed_rule_predictor,
)
from sentistream.pipelines.train.reports import (
    INTENDED,
    OUT_OF_SCOPE,
    metrics_table,
    render_markdown,
    subset_table,
    write_report,
)

__all__ = [
    "DEFAULT_BUNDLES",
    "FUSION_SUMMARY",
    "INTENDED",
    "MODELS",
    "OUT_OF_SCOPE",
    "PAIRED_FAILURES",
    "PAIRED_NOTE",
    "SEEDS",
    "SHARED",
    "TABLE_FAILURES",
    "add_parsers",
    "build_parser",
    "fixed_rule_predictor",
    "main",
    "metrics_table",
    "render_markdown",
    "subset_table",
    "write_report",
]

MODELS = ("face", "voice", "text", "fusion")
SEEDS = {"text": 13}  # the models' own default seeds (models/training/text_train.py: 13)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``evaluate`` (each with face / voice / text / fusion)."""
    for command, helptext in (
        ("train", "train (or calibrate) a model and write its bundle, card and report"),
        ("evaluate", "score a bundle on a labelled dataset and write a report"),
    ):
        parser = subparsers.add_parser(
            command,
            help=helptext,
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
        for model in MODELS:
            sub = models.add_parser(model, help=f"{command} the {model} model")
            _add_arguments(sub, command, model)
            sub.set_defaults(
                func=_dispatch, command=command, model=model, parser_actions=sub._actions
            )


def _add_arguments(p: argparse.ArgumentParser, command: str, model: str) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset folder, file or data root")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS))
    if command == "evaluate" or model == "face":
        p.add_argument("--bundle", default=DEFAULT_BUNDLES[model], help="bundle name or .json")
    p.add_argument("--seed", type=int, help="default: the model's own (text 13, others 0)")
    p.add_argument("--dev-fraction", type=float, help="share of groups held out (default 0.2)")
    p.add_argument("--report", type=Path, help="report JSON path (a .md copy is written too)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/sentistream-train-cache"))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    if command == "train":
        p.add_argument("--out", type=Path, required=model != "face", help="bundle folder")
        p.add_argument("--name", help="bundle name (default: the shipped model's)")
        p.add_argument("--epochs", type=int, default=200, help="max epochs (early stopping)")
        p.add_argument("--checkpoint-dir", type=Path, help="best-so-far checkpoints go here")
    else:
        p.add_argument("--split", help="only items of this split (train / dev / test)")
    if model == "fusion":
        p.add_argument("--folds", type=int, default=4, help="cross-validation folds (data root)")
        p.add_argument("--pairs-per-class", type=int, default=150, help="per fold and class")
        p.add_argument("--hidden", type=int, nargs="+", default=[0, 16], help="0 = logistic")


def _dispatch(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> int:
    if beam_args:
        raise ValueError(f"unknown options for {args.command} {args.model}: {list(beam_args)}")
    import torch

    torch.set_num_threads(args.threads)
    args.argv = _command_line(args)
    args.data = args.data.resolve()
    args.delegate_args = [] if args.seed is None else ["--seed", str(args.seed)]
    if args.dev_fraction is not None:
        args.delegate_args += ["--dev-fraction", str(args.dev_fraction)]
    args.seed = SEEDS.get(args.model, 0) if args.seed is None else args.seed
    args.dev_fraction = 0.2 if args.dev_fraction is None else args.dev_fraction
    args.say = _progress(f"{args.command} {args.model}", args.quiet)
    handler = {
        ("train", "face"): train_face.train,
        ("train", "voice"): train_voice.train,
        ("train", "text"): train_text.train,
        ("train", "fusion"): train_fusion.train,
        ("evaluate", "face"): train_face.evaluate,
        ("evaluate", "voice"): train_voice.evaluate,
        ("evaluate", "text"): train_text.evaluate,
        ("evaluate", "fusion"): train_fusion.evaluate,
    }[(args.command, args.model)]
    report = handler(args)
    report.setdefault("command", f"sentistream {args.command} {args.model} ...")
    path = args.report or _default_report(args, report)
    write_report(report, path)
    args.say(f"report: {path} (+ .md)")
    print(json.dumps(report.get("headline", {}), indent=2))
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (options left at their default omitted)."""
    words = [args.command, args.model]
    for action in args.parser_actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or value is None or value == action.default:
            continue
        if action.dest in ("quiet",):
            continue
        values = value if isinstance(value, list) else [value]
        words += [action.option_strings[-1], *(str(v) for v in values)]
    return " ".join(shlex.quote(w) for w in words)


def _progress(tag: str, quiet: bool) -> Callable[[str], None]:
    start = time.monotonic()

    def say(message: str) -> None:
        if not quiet:
            print(
                f"[{tag} {time.monotonic() - start:6.1f}s] {message}", file=sys.stderr, flush=True
            )

    return say


def _default_report(args: argparse.Namespace, report: dict[str, Any]) -> Path:
    """Train: beside the bundle (``NAME.report.json``; ``NAME.train-report.json`` where the
    model's own training script already wrote its report). Evaluate: the working folder."""
    if args.command == "train" and args.out is not None:
        suffix = "train-report" if report.get("delegated_to") else "report"
        return args.out / f"{report.get('name', args.model)}.{suffix}.json"
    return Path(f"{args.command}-{args.model}-report.json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentistream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args, [])
    except ValueError as exc:
        print(f"sentistream: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

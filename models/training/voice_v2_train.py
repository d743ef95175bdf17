"""Train and evaluate ``voice-whisper-tiny-v2`` on RAVDESS and TESS (model card: its ``.md``).

``python -m sentistream.models.training.voice_v2_train --data ../shared/data --out models/weights``

A *recipe* is a normalisation (``plain``; ``channel``: by the speaker's earlier clips;
``speaker``: by all its clips) and a grid of logistic regressions over 7 emotions (summed to
valence) or valence; each split picks its settings by inner leave-one-speaker-out.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from sentistream.models.training import datasets
from sentistream.models.voice import features as vf
from sentistream.models.training import voice_train as v1
from sentistream.models.bundle import BundleMeta, save_bundle_meta
from sentistream.models.training.metrics import expected_calibration_error as ece
from sentistream.models.training.metrics import softmax_t
from sentistream.models.voice.model import LABELS, confidence_from_probs
from sentistream.models.training.voice_card import TRAINING_DATA
from sentistream.models.whisper import FRONTEND_VERSION, encode_pooled, resample_to_16k

NAME = "voice-whisper-tiny-v2"
KINDS = ("clean", *v1.AUGMENTS)
FEATURES_VERSION = "v2-meanstd-prosody-1"
EMOTIONS = vf.EMOTIONS


class Clip(NamedTuple):
    """``valence``: LABELS index (-1: ambiguous); ``target``: EMOTIONS index (calm: neutral)."""

    path: str
    corpus: str
    speaker: str
    emotion: str
    valence: int
    target: int


class Config(NamedTuple):
    C: float
    prosody_weight: float  # 0: prosody unused
    augment: bool
    hierarchical: bool = True  # emotions summed to valence; False: a valence head


class Recipe(NamedTuple):
    mode: str  # plain | channel | speaker
    grid: tuple[Config, ...]


def _grid(ws: tuple[float, ...], augs: tuple[bool, ...], hier: bool = True) -> tuple[Config, ...]:
    return tuple(Config(c, w, a, hier) for c, w, a in itertools.product((0.03, 0.3), ws, augs))


FULL = _grid((0.0, 6.0), (False, True))
RECIPES = {f"v2-{m}": Recipe(m, FULL) for m in ("plain", "channel", "speaker")}
ABLATIONS = {  # LOSO only; C by inner CV
    "plain, flat valence head (v1-like)": Recipe("plain", _grid((0,), (False,), False)),
    "plain, hierarchical": Recipe("plain", _grid((0,), (False,))),
    "channel, flat valence head": Recipe("channel", _grid((0,), (False,), False)),
    "channel, hierarchical": Recipe("channel", _grid((0,), (False,))),
    "channel, hier. + prosody": Recipe("channel", _grid((6.0,), (False,))),
    "channel, hier. + prosody + augment": Recipe("channel", _grid((6.0,), (True,))),
}


def read_clips(data: Path) -> list[Clip]:
    """Every clip of ``data/ravdess_audio`` and ``data/tess`` (``datasets`` readers)."""
    clips = []
    for e in datasets.read_ravdess(data / "ravdess_audio") + datasets.read_tess(data / "tess"):
        emo = "surprised" if e.emotion == "pleasant_surprise" else e.emotion
        valence = LABELS.index(e.label) if e.label in LABELS else -1
        target = EMOTIONS.index("neutral" if emo == "calm" else emo)
        clips.append(Clip(e.path_or_text, e.corpus, e.group, emo, valence, target))
    return clips


def extract(clips: list[Clip], cache: Path, seed: int) -> dict[str, np.ndarray]:
    """(N, 788) features per kind: Whisper mean+std (768) ++ prosody (20)."""
    cache.mkdir(parents=True, exist_ok=True)
    model_dir, out = v1.default_model_dir(), {}
    audio: list[np.ndarray] | None = None
    for kind in KINDS:
        spec = [FEATURES_VERSION, FRONTEND_VERSION, model_dir, kind, seed, [c.path for c in clips]]
        path = cache / f"{kind}-{hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:16]}.npz"
        if not path.is_file():
            print(f"extracting {kind} ({len(clips)} clips)", file=sys.stderr)
            if audio is None:
                audio = [resample_to_16k(*v1.read_wav(Path(c.path))) for c in clips]
            waves = [v1.augment(a, kind, seed + i) for i, a in enumerate(audio)]
            pooled = encode_pooled(v1.load_whisper(model_dir, "cpu", "int8", threads=1), waves)
            np.savez(path, meanstd=pooled, prosody=[vf.prosody_features(w) for w in waves])
        with np.load(path) as z:
            out[kind] = np.concatenate([z["meanstd"], z["prosody"]], 1).astype(np.float64)
    return out


def _col(clips: list[Clip], field: str) -> np.ndarray:
    return np.array([getattr(c, field) for c in clips])


class Fitted(NamedTuple):
    model: Any  # sklearn LogisticRegression
    mean: np.ndarray
    scale: np.ndarray  # prosody columns divided by the prosody weight (1e30 when 0)
    hierarchical: bool

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.model.decision_function((x - self.mean) / self.scale)


def fit(xs: dict[str, np.ndarray], clips: list[Clip], idx: np.ndarray, cfg: Config, mode: str):
    """Class-balanced logistic regression on ``idx`` (clean + augmented copies, each copy
    z-scored per speaker unless ``mode == "plain"``) -> :class:`Fitted`."""
    from sklearn.linear_model import LogisticRegression

    speaker, kinds = _col(clips, "speaker")[idx], KINDS if cfg.augment else ("clean",)
    x = np.concatenate([xs[k][idx] if mode == "plain" else vf.zscore(xs[k][idx], speaker)
                        for k in kinds])  # fmt: skip
    y = np.tile(_col(clips, "target" if cfg.hierarchical else "valence")[idx], len(kinds))
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
    scale[-len(vf.PROSODY_NAMES) :] *= 1 / cfg.prosody_weight if cfg.prosody_weight > 0 else 1e30
    model = LogisticRegression(C=cfg.C, class_weight="balanced", max_iter=5000)
    model.fit(((x - mean) / scale)[y >= 0], y[y >= 0])
    return Fitted(model, mean, scale, cfg.hierarchical)


def held_out_views(xs, clips, train, test, mode: str, seed: int, orders: int = 3) -> list[tuple]:
    """The test features as the recipe sees them: [(clip indices, positions in their
    channel, (n, D) features)], one per random order of each speaker's clips (``channel``)."""
    x, speaker = xs["clean"], _col(clips, "speaker")
    if mode != "channel":
        feats = x[test] if mode == "plain" else vf.zscore(x[test], speaker[test])
        return [(test, np.zeros(len(test), dtype=int), feats)]
    prior, views = vf.channel_prior(x[train], speaker[train]), []
    rng, empty = np.random.default_rng(seed), vf.ChannelStats.empty(x.shape[1])
    for _ in range(orders):
        order = [rng.permutation(test[speaker[test] == s]) for s in np.unique(speaker[test])]
        rows = [vf.channel_normalise(x[o], empty, *prior)[0] for o in order]
        pos = np.concatenate([np.arange(len(o)) for o in order])
        views.append((np.concatenate(order), pos, np.concatenate(rows)))
    return views


def probs(z: np.ndarray, hierarchical: bool) -> tuple[np.ndarray, Any]:
    """Logits -> (N, 3) valence probabilities and (N, 7) emotion ones (None if flat)."""
    return (vf.valence_arousal(e := softmax_t(z))[0], e) if hierarchical else (softmax_t(z), None)


def select(xs, clips, idx, recipe: Recipe, seed: int) -> tuple[Config, float]:
    """The config with the best inner leave-one-speaker-out valence macro-F1 on ``idx``."""
    speaker, y = _col(clips, "speaker"), _col(clips, "valence")
    best: tuple[float, Config] | None = None
    for cfg in recipe.grid:
        f1s = []
        for held in np.unique(speaker[idx]):
            tr, va = idx[speaker[idx] != held], idx[speaker[idx] == held]
            ((order, _, x),) = held_out_views(xs, clips, tr, va, recipe.mode, seed, orders=1)
            z, yy = fit(xs, clips, tr, cfg, recipe.mode).logits(x), y[order]
            pred = probs(z[yy >= 0], cfg.hierarchical)[0].argmax(1)
            f1s.append(v1.scores(yy[yy >= 0], pred)["macro_f1"])
        if best is None or np.mean(f1s) > best[0] + 1e-9:
            best = (float(np.mean(f1s)), cfg)
    assert best is not None
    return best[1], best[0]


def evaluate(xs, clips, train, test, recipe: Recipe, seed: int) -> dict[str, Any]:
    """Select on ``train``, fit, score ``test`` (all views pooled) against baselines."""
    y, tgt, emo, spk = (_col(clips, f) for f in ("valence", "target", "emotion", "speaker"))
    cfg, inner_f1 = select(xs, clips, train, recipe, seed)
    views = held_out_views(xs, clips, train, test, recipe.mode, seed)
    order, pos, x = (np.concatenate(p) for p in zip(*views, strict=True))
    z, keep = fit(xs, clips, train, cfg, recipe.mode).logits(x), y[order] >= 0
    (pv, pe), yv = probs(z, cfg.hierarchical), y[order][keep]
    pred, majority = pv[keep].argmax(1), np.bincount(y[train][y[train] >= 0]).argmax()
    hit, conf = pred == yv, confidence_from_probs(pv[keep])
    out = {"train_speakers": sorted(set(spk[train])), "test_speakers": sorted(set(spk[test])),
           "n_test": int(keep.sum()) // len(views), **v1.scores(yv, pred),
           "majority": v1.scores(yv, np.full(len(yv), majority)),
           "ece_max_prob": ece(pv[keep].max(1), hit), "ece_emitted_confidence": ece(conf, hit),
           "confusion": v1._confusion(yv, pred), "config": cfg._asdict(),
           "inner_cv_macro_f1": inner_f1}  # fmt: skip
    if recipe.mode == "channel":
        spans, p = {"1-5": (0, 5), "6-20": (5, 20), "21+": (20, 10**6)}, pos[keep]
        out["accuracy_by_channel_position"] = {k: float(hit[(p >= a) & (p < b)].mean())
                                               for k, (a, b) in spans.items()}  # fmt: skip
    if pe is not None:
        sel, aro = emo[order] != "calm", np.asarray(vf.EMOTION_AROUSAL)[tgt[order]]
        ye, pred_e, high = tgt[order][sel], pe[sel].argmax(1), vf.valence_arousal(pe)[1] >= 0.5
        confusion = np.histogram2d(ye, pred_e, bins=[np.arange(len(EMOTIONS) + 1)] * 2)[0]
        top = np.bincount(tgt[train]).argmax()
        out["emotion"] = {**v1.scores(ye, pred_e), "n": int(sel.sum()) // len(views),
                          "chance": 1 / len(EMOTIONS), "majority_accuracy": np.mean(ye == top),
                          "confusion": confusion.astype(int).tolist()}  # fmt: skip
        out["arousal_accuracy"] = float(np.mean(high[aro >= 0] == aro[aro >= 0]))
    return out


def _mean(folds: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over folds of every float figure (``majority`` / ``emotion`` ones prefixed)."""
    flat = [f | {f"{p}_{k}": v for p in ("majority", "emotion") for k, v in f.get(p, {}).items()}
            for f in folds]  # fmt: skip
    keys = [k for k, v in flat[0].items() if isinstance(v, float)]
    return {k: float(np.mean([f[k] for f in flat])) for k in keys}


def run_recipe(xs, clips: list[Clip], recipe: Recipe, seed: int, cross: bool = True):
    """Leave-one-speaker-out (and cross-corpus) results of one recipe."""
    every, speaker, corpus = np.arange(len(clips)), _col(clips, "speaker"), _col(clips, "corpus")
    splits = [(every[speaker != s], every[speaker == s]) for s in np.unique(speaker)]
    folds = [evaluate(xs, clips, tr, te, recipe, seed) for tr, te in splits]
    out: dict[str, Any] = {"loso": {"folds": folds, "mean": _mean(folds)}}
    if cross:
        splits = [(every[corpus == a], every[corpus != a]) for a in ("ravdess", "tess")]
        out["cross_corpus"] = [evaluate(xs, clips, tr, te, recipe, seed) for tr, te in splits]
    print(f"{recipe.mode}: {json.dumps(out['loso']['mean'])}", file=sys.stderr)
    return out


def run_v1(data: Path, cache: Path, seed: int) -> dict[str, Any]:
    """v1's recipe (``voice_train``) re-run on the same splits, with its ECE."""
    clips, model_dir = v1.read_corpora(data), v1.default_model_dir()
    feats = v1.extract_features(clips, KINDS, cache=cache, model_dir=model_dir, seed=seed)
    y, speaker, corpus = (_col(clips, f) for f in ("label", "speaker", "corpus"))
    every = np.arange(len(clips))
    splits = [(every[speaker != s], every[speaker == s]) for s in sorted(set(speaker))]
    splits += [(every[corpus == a], every[corpus != a]) for a in ("ravdess_audio", "tess")]
    rows = []
    for tr, te in splits:
        hp, _ = v1.inner_select(feats, clips, tr, v1.DEFAULT_GRID, seed)
        with torch.no_grad():
            out = v1.fit_head(feats, clips, tr, hp, seed)(torch.from_numpy(feats["clean"][te]))
        p = torch.softmax(out.valence_logits, -1).numpy()
        hit, conf, names = p.argmax(1) == y[te], confidence_from_probs(p), sorted(set(speaker[te]))
        rows.append({"test_speakers": names, **v1.scores(y[te], p.argmax(1)), "ece_max_prob": ece(
            p.max(1), hit), "ece_emitted_confidence": ece(conf, hit)})  # fmt: skip
    return {"loso": {"folds": rows[:-2], "mean": _mean(rows[:-2])}, "cross_corpus": rows[-2:]}


def final_heads(xs, clips: list[Clip], seed: int) -> tuple[vf.VoiceHeadsV2, dict[str, Any]]:
    """The shipped heads: ``plain`` and ``channel``, selected and fitted on all speakers."""
    every, info = np.arange(len(clips)), {}
    heads = vf.VoiceHeadsV2(in_features=xs["clean"].shape[1])
    for mode, head in (("plain", heads.plain), ("channel", heads.channel)):
        cfg, f1 = select(xs, clips, every, RECIPES[f"v2-{mode}"], seed)
        f = fit(xs, clips, every, cfg, mode)
        state = {"mean": f.mean, "scale": f.scale, "linear.weight": f.model.coef_}
        state |= {"linear.bias": f.model.intercept_}
        head.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
        info[mode] = {"config": cfg._asdict(), "inner_cv_macro_f1": f1}
    prior = vf.channel_prior(xs["clean"], _col(clips, "speaker"))
    for buffer, value in zip((heads.prior_mean, heads.prior_var), prior, strict=True):
        buffer.copy_(torch.from_numpy(value))
    return heads.eval(), info


def write_bundle(heads: vf.VoiceHeadsV2, report: dict[str, Any], out: Path) -> BundleMeta:
    """``NAME.pt`` / ``.json`` / ``.report.json`` / ``.md`` (model card) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    torch.save(heads.state_dict(), weights := out / f"{NAME}.pt")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:8]
    loso = {k: r["loso"]["mean"] for k, r in report["recipes"].items()}
    params = {"head": "emotion-hierarchical-v2", "in_features": int(heads.plain.mean.shape[0]),
              "emotions": EMOTIONS, "prior_weight": 1.0, "bucket_s": 1.0, "heads": report["final"],
              "encoder": f"whisper tiny.en, CTranslate2 int8, {FRONTEND_VERSION}"}  # fmt: skip
    data = {**TRAINING_DATA, "labels": "acted emotion (calm as neutral); valence sums emotions"}
    keys = ("accuracy", "macro_f1", "majority_accuracy", "emotion_accuracy", "ece_max_prob")
    metrics = {f"loso_{r}": {k: loso[f"v2-{r}"][k] for k in keys} for r in ("plain", "channel")}
    meta = BundleMeta(NAME, f"{NAME}@2+{digest}", "voice", LABELS, f"{NAME}.pt", params, data,
                      {**metrics, "report": f"{NAME}.report.json"})  # fmt: skip
    save_bundle_meta(meta, out)
    report["model_id"] = meta.model_id
    (out / f"{NAME}.report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{NAME}.md").write_text(render_card(meta, report), encoding="utf-8")
    return meta


def _pair(d: dict[str, Any], a: str = "accuracy", b: str = "macro_f1") -> str:
    return f"{d[a]:.3f} / {d[b]:.3f}" if a in d else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, ["---"] * len(header), *rows])


def render_card(meta: BundleMeta, report: dict[str, Any]) -> str:
    """The model card (Markdown) from the bundle's metadata and training report."""
    res = {"v1 `voice-whisper-tiny-lr` (re-run)": report["v1"], **report["recipes"]}
    emo, aro = ("emotion_accuracy", "emotion_macro_f1"), ("arousal_accuracy",) * 2
    head = ["model", "valence acc / F1", "emotion acc / F1", "arousal acc", "ECE top-p / emitted"]
    main = _table([*head, "RAVDESS->TESS acc / F1", "TESS->RAVDESS acc / F1"], [
        [k, _pair(m := r["loso"]["mean"]), _pair(m, *emo), _pair(m, *aro)[:5],
         _pair(m, "ece_max_prob", "ece_emitted_confidence"), *map(_pair, r["cross_corpus"])]
        for k, r in res.items()])  # fmt: skip
    plain, chan = (report["recipes"][k]["loso"]["folds"] for k in ("v2-plain", "v2-channel"))
    folds = _table(["test speaker", "n", "majority", "v2-plain", "v2-channel", "emotion (chan.)"], [
        [c["test_speakers"][0], str(c["n_test"]), _pair(c["majority"]), _pair(p), _pair(c),
         _pair(c["emotion"])] for p, c in zip(plain, chan, strict=True)])  # fmt: skip
    abl = _table(["recipe (LOSO; C by inner CV)", "valence acc / F1", "emotion acc / F1"], [
        [k, _pair(r["loso"]["mean"]), _pair(r["loso"]["mean"], *emo)]
        for k, r in report["ablations"].items()])  # fmt: skip
    spans = chan[0]["accuracy_by_channel_position"]
    at = {k: np.mean([f["accuracy_by_channel_position"][k] for f in chan]) for k in spans}
    return CARD.format(meta=meta, main=main, folds=folds, ablations=abl, m=report["recipes"][
        "v2-channel"]["loso"]["mean"], final=json.dumps(report["final"]), emotions=", ".join(
        EMOTIONS), position=", ".join(f"clips {k}: {v:.3f}" for k, v in at.items()),
        counts=", ".join(f"{k} {v}" for k, v in report["n_clips"].items()))  # fmt: skip


CARD = """# {meta.name}

`model_id` `{meta.model_id}`; kind `voice`; labels negative, neutral, positive.

`VoiceEmotionModel.load("{meta.name}")`: `predict(audios)` scores clips alone (`plain`
head); `predict(audios, normalise="channel", channel=stats)` / `predict_channel` standardise
each clip by its channel's earlier clips (`voice_features.channel_normalise`; a pipeline
keeps `ChannelStats`, 2 x 788 + 1 numbers, per video and speaker in a stateful step).
Whisper tiny.en encoder (frozen, int8) mean+std ++ 20 prosodic features (torchaudio pitch,
energy, rate, spectrum) -> class-balanced logistic regression over 7 emotions ({emotions});
valence, arousal: sums of emotion probabilities. Settings by inner CV: `{final}`. Made by
`python -m sentistream.models.training.voice_v2_train --data ../shared/data --out models/weights`.

## Data and licences

RAVDESS speech (Livingstone & Russo 2018) actors 01 (m), 02 (f): CC BY-NC-SA 4.0; TESS
(Dupuis & Pichora-Fuller 2010) OAF, YAF: CC BY-NC-ND 4.0; non-commercial use only. Clips
{counts}: acted emotions on fixed words or sentences, not sentiment ratings. TESS pleasant
surprise = surprised; RAVDESS calm is trained as neutral, not scored as an emotion;
RAVDESS surprised (valence ambiguous) is not scored for valence.

## Evaluation

Leave-one-speaker-out (4 speakers) and cross-corpus; settings by leave-one-speaker-out on
the training speakers only. `v2-channel`: each test clip standardised by its speaker's
earlier clips (3 random orders; accuracy by position in the channel: {position});
`v2-speaker`: by all (upper bound). ECE (10 bins) of the top valence probability / the
emitted confidence 1 - H/ln 3. Training-majority baselines: valence {m[majority_accuracy]:.3f}
/ {m[majority_macro_f1]:.3f}; emotions {m[emotion_majority_accuracy]:.3f} (chance 0.143).

{main}

{folds}

{ablations}

## Failure modes, intended use

- Four acted speakers (three female), studio-quiet, English; folds differ by 10-20 points;
  cross-corpus valence stays near the majority class. The gain over v1 needs `normalise=
  "channel"` (compare `v2-plain`), which removes a channel's average voice (an angry
  throughout channel reads as average): use it for one speaker with mixed affect.
- One weak signal for aggregate analytics of informed speakers; fuse, never use alone or
  for decisions about individuals. EU AI Act (Regulation (EU) 2024/1689) Art. 5(1)(f)
  prohibits emotion inference at work or in education (bar medical or safety reasons):
  never score employees at work, e.g. call-centre agents; other emotion recognition is
  high-risk (Annex III) with transparency duties (Art. 50).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="has ravdess_audio/, tess/")
    parser.add_argument("--out", type=Path, required=True, help="bundle output folder")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentistream-voice-v2"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    with threadpool_limits(1):
        clips, seed = read_clips(args.data), args.seed
        xs, speakers = extract(clips, args.cache / "features", seed), _col(clips, "speaker")
        report: dict[str, Any] = {"name": NAME, "labels": LABELS, "emotions": EMOTIONS}
        report["n_clips"] = {s: int(np.sum(speakers == s)) for s in np.unique(speakers)}
        report["recipes"] = {k: run_recipe(xs, clips, r, seed) for k, r in RECIPES.items()}
        report["ablations"] = {
            k: run_recipe(xs, clips, r, seed, False) for k, r in ABLATIONS.items()
        }
        report["v1"] = run_v1(args.data, args.cache / "v1", seed)
        heads, report["final"] = final_heads(xs, clips, seed)
    meta = write_bundle(heads, report, args.out)
    print(json.dumps({"model_id": meta.model_id, **meta.metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

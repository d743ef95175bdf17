"""Train and compare the learned late fusion (``models/fusion/learned.py``).

No real data here has face, voice and words of one person at one moment, so training
examples are *paired*: a CK+ face sequence, a RAVDESS/TESS/Emo-DB voice clip and a MELD/TweetEval
sentence with the same 3-class valence, each scored by the real component model on data
that model did not train on (held-out predictions):

* face: the pretrained FER2013 mini-Xception never saw CK+; each CK+ sequence (its 3
  peak frames) is scored as the pipeline scores a segment (``aggregate_segment``). CK+ has
  no neutral faces, so neutral pairs have no face (see ``models/fusion/learned.py``).
* voice: out-of-fold scores of the default voice bundle's recipe (its channel head's
  settings refitted without each fold of whole speakers; the bundle itself trains on every
  speaker but the pipeline dev set's), each speaker one channel, channel-normalised as the
  pipeline scores it.
* text: the default text bundle on the MELD train dialogues its recipe held out for model
  selection (never trained on). MELD dev, the text model's test side, is never used.

The bundle records the component ``model_id`` of each modality (``params["components"]``);
``LearnedFusion`` refuses results of other components unless told otherwise.

Each modality's groups (face subject, voice speaker, text dialogue) are dealt into
``n_folds`` folds and a pair takes its three parts from one fold, so the folds share no
subject, speaker or dialogue. The comparison is cross-validated over the folds (train on
the rest, early-stop and temperature-scale on the next fold, test on the held-out one),
on each of the 7 non-empty subsets of modalities: the learned fusion, the fixed rule
(injected by the caller: ``models`` never imports ``transforms``) and the best single
modality. A score table (``read_score_table``: the user's per-modality scores with
labels) takes the place of the pairs for the user's own data.

The steps live beside this module: ``scores`` (held-out component scores), ``pairs``
(records, pairs, score table, subsets), ``fit`` (training loop, bundle) and ``compare``
(the 7-subset comparison, cross-validation); import each name from where it lives.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.fusion.learned import LateFusionNet
from sentistream.models.training.fusion.compare import compare_subsets, cross_validate, verdict
from sentistream.models.training.fusion.fit import TrainConfig, fit_select, net_predictor
from sentistream.models.training.fusion.pairs import (
    SUBSETS,
    PairSet,
    Predictor,
    Progress,
    apply_subset,
    say,
    split_rows,
)


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
        first = sorted(set(pairs.group.tolist()))[0]
        dev, train = np.flatnonzero(pairs.group == first), np.flatnonzero(pairs.group != first)
    else:
        sides = split_rows(pairs, dev_fraction, seed)
        train, dev = sides["train"], sides["dev"]
    fit = {"seed": seed, "progress": progress, "checkpoint_dir": checkpoint_dir}
    if cv:
        pred, conf, infos = cross_validate(pairs, hiddens, config, **fit)
    net, final = fit_select(pairs, train, dev, hiddens, config, tag="final", **fit)
    if cv:
        rows = np.arange(len(pairs.y))
        evaluated_on = f"cross-validation over {len(infos)} folds (out-of-fold predictions)"

        def learned(s: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return pred[s, r], conf[s, r]
    else:
        infos = [final]
        has_test = len(sides["test"]) > 0
        rows = sides["test"] if has_test else sides["dev"]
        evaluated_on = "test split" if has_test else "dev split (also used for early stopping "
        evaluated_on += "" if has_test else "and temperature: optimistic)"
        predict = net_predictor(net)

        def learned(s: int, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return predict(apply_subset(pairs.x[r], SUBSETS[s]))

    say(progress, f"comparing on {len(rows)} pairs x 7 subsets ({evaluated_on})")
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

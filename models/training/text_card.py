"""The text bundle's model card (Markdown), from its metadata and metrics
(:mod:`sentistream.models.training.text_train` writes both), and the licences it lists.
"""

from __future__ import annotations

from typing import Any

from sentistream.models.bundle import BundleMeta

FEATURE_TEXT = {
    "minilm": "frozen all-MiniLM-L6-v2 sentence embedding (384-d)",
    "vader": "VADER neg/neu/pos/compound",
    "surface": 'log1p counts of "!", "?", words, all-caps words, "..."',
}
LICENCES = {
    "MELD": "GPL-3.0 repository; utterances from the TV series Friends",
    "TweetEval": "released without restrictions; original dataset terms apply",
    "all-MiniLM-L6-v2": "Apache-2.0",
    "vaderSentiment": "MIT",
}


def table_row(name: str, r: dict[str, Any], ci: str = "") -> str:
    per_class = ", ".join(f"{k} {x:.3f}" for k, x in r["per_class_f1"].items())
    acc, mf1 = r["accuracy"], r["macro_f1"]
    return f"| {name} | {r['weighted_f1']:.3f}{ci} | {acc:.3f} | {mf1:.3f} | {per_class} |"


def model_card(meta: BundleMeta) -> str:
    """Markdown model card from the bundle's metadata and metrics."""
    m, sel = meta.metrics["meld_dev"], meta.metrics["selected"]
    lo, hi = m["weighted_f1_ci95"]
    return CARD.format(
        meta=meta,
        m=m,
        sel=sel,
        model_row=table_row("this model", m, f" (95 % CI {lo:.3f}-{hi:.3f})"),
        vader_row=table_row("VADER rule (+-0.05)", meta.metrics["meld_dev_vader_baseline"]),
        lic="\n".join(f"- {k}: {x}" for k, x in meta.training_data["licences"].items()),
        head="logistic regression" if sel["hidden"] == 0 else f"MLP ({sel['hidden']} hidden)",
        labels=", ".join(meta.labels),
        feats="; ".join(FEATURE_TEXT[f] for f in meta.params["features"]),
        sel_f1=meta.metrics["internal_dev_weighted_f1"],
        ms=meta.metrics["ms_per_sentence_batched_cpu_1thread"],
        td=meta.training_data,
    )


CARD = """# {meta.model_id} (text sentiment)

Three-class sentence sentiment ({labels}), the words branch of sentistream.
Features: {feats}. Head: standardiser -> {head} -> temperature (T = {sel[temperature]:.3f}).
Output: valence = P(positive) - P(negative) in [-1, 1]; confidence = max class
probability. One utterance at a time, no dialogue context.

## Data and licences

- Train: {td[train]}
- Selection: {td[model_selection]}
- Evaluation: {td[evaluation]}

{lic}

The weights derive from MELD (GPL-3.0 repository, TV-series utterances) and TweetEval
(original dataset terms): check both before commercial redistribution.

## Metrics on MELD dev (n = {m[n]})

| model | weighted F1 | accuracy | macro F1 | per-class F1 |
|---|---|---|---|---|
{model_row}
{vader_row}

- Published text-only reference (MELD paper, text CNN, test split): 64.3 weighted F1.
- ECE (10 bins) of the confidence: {m[ece_10_bins]:.3f} ({m[ece_10_bins_before_temperature]:.3f}
  before temperature scaling). CI: 1000 bootstrap resamples of utterances.
- Confusion (rows true, columns predicted; {labels}): {m[confusion_rows_true_cols_pred]}.
- Selected on internal dev (weighted F1 {sel_f1:.3f}): features {sel[features]}, hidden
  {sel[hidden]}, class weighting {sel[class_weight]}, epoch {sel[epoch]}.
- Speed: {ms:.1f} ms per sentence, batched, CPU, 1 thread (MiniLM dominates).
- Development note: MELD dev was not used for selection, but it was scored in development
  runs (an MLP-head grid, 0.623); the linear head was then fixed, as the name says.

## Failure modes

- Sarcasm, irony, and sentiment carried by tone or context (common in sitcom dialogue):
  one utterance at a time, words only.
- Short backchannels ("Oh.", "Yeah!", "What?") are ambiguous without audio and context.
- Negative utterances are most often called neutral; see the confusion above.
- English only; ASR errors propagate; calibrated on TV dialogue, not other domains.

## Intended use

The words-modality score of sentistream, fused with face and voice, for aggregate
analytics over many segments. Out of scope: decisions about individuals (hiring, credit,
medical, surveillance), non-English text, long documents, any use as ground truth.
"""

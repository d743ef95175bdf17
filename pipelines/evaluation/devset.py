"""A labelled dev set of talking-head clips built from ``../shared/data`` only.

No labelled recording here has one person's face, voice and words at the same moment, so
each clip pairs a real face image and a real voice recording **of the same valence**
(different people, like a dubbed video) with words that are either emotion-neutral (the
acted corpus's own sentence) or carry the same sentiment (a movie-review sentence). The
missing-modality variants are made the way real media lacks a modality:

=====================  ==========================================================
condition              what the clip has
=====================  ==========================================================
``all``                face video + voice + neutral caption (the acted sentence)
``all_polar_words``    face video + voice + a caption of the same sentiment
``no_face``            audio only (an ``.mp3`` file) + neutral caption
``no_voice``           face video without an audio stream + neutral caption
``no_words``           face video + voice, words disabled for the source
=====================  ==========================================================

The clips are generated (never committed: the data's licences forbid it) by
``sentistream evaluate devset --data ../shared/data --out DIR``, which writes the media,
the captions and ``manifest.jsonl`` for ``sentistream evaluate pipeline``. Which speakers
and subjects are used is fixed (``DEV_VOICE_GROUPS``, ``DEV_FACE_GROUPS``) and recorded in
the manifest, so models can be trained without them.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sentistream.models.audio import SAMPLE_RATE, read_audio
from sentistream.models.training.splits import DEV_VOICE_GROUPS
from sentistream.pipelines.demo.synth import talking_head_frames, write_media, write_vtt
from sentistream.transforms.media.captions import Cue

LABELS = ("negative", "neutral", "positive")
CONDITIONS = ("all", "all_polar_words", "no_face", "no_voice", "no_words")
# Held out for the dev set (train models without them): the voices come from
# DEV_VOICE_GROUPS (models/training/splits.py: RAVDESS actors 21-22, Emo-DB speakers
# 15-16); FER2013 PublicTest (the face dev split) gives the faces.
FER_VALENCE = {
    "angry": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sad": "negative",
    "happy": "positive",
    "neutral": "neutral",
}
FPS = 25.0


@dataclass(frozen=True)
class Voice:
    path: Path
    label: str
    group: str
    transcript: str
    language: str


@dataclass(frozen=True)
class Face:
    path: Path
    label: str
    group: str


@dataclass(frozen=True)
class DevClip:
    """One manifest row: the batch job's fields (``sentistream run --manifest`` reads the
    same file) and the labels ``sentistream evaluate pipeline`` scores against."""

    uri: str
    video_id: str
    label: str
    group: str
    condition: str
    caption_uri: str | None
    metadata: dict[str, str]
    labels: dict[str, str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def dev_voices(data: Path) -> list[Voice]:
    """The held-out voices (``DEV_VOICE_GROUPS``) with a non-ambiguous valence."""
    out = []
    for row in _rows(data / "ravdess_audio" / "labels.csv"):
        group = f"ravdess:{int(row['actor'])}"
        if group in DEV_VOICE_GROUPS and row["valence_mapped"] in LABELS:
            path = data / "ravdess_audio" / row["path"]
            out.append(Voice(path, row["valence_mapped"], group, row["transcript"], "en"))
    for row in _rows(data / "emodb" / "labels.csv"):
        group = f"emodb:{int(row['speaker'])}"
        if group in DEV_VOICE_GROUPS and row["valence_mapped"] in LABELS:
            path = data / "emodb" / row["path"]
            out.append(Voice(path, row["valence_mapped"], group, row["transcript"], "de"))
    return out


def dev_faces(data: Path) -> list[Face]:
    """FER2013 PublicTest faces (the face dev split) with a valence."""
    out = []
    for row in _rows(data / "fer2013" / "labels.csv"):
        if row["split"] == "dev" and row["emotion"] in FER_VALENCE:
            out.append(Face(data / "fer2013" / row["path"], FER_VALENCE[row["emotion"]], "fer"))
    return out


def polar_sentences(data: Path, *, min_words: int = 8) -> dict[str, list[str]]:
    """Whole SST-2 dev sentences (at least ``min_words`` words) by sentiment."""
    out: dict[str, list[str]] = {"negative": [], "positive": []}
    with (data / "sst2" / "dev.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            text = row["sentence"].strip()
            if len(text.split()) >= min_words:
                out["positive" if row["label"] == "1" else "negative"].append(text)
    return out


def face_image(path: Path) -> np.ndarray:
    """A 48x48 grey face crop as RGB. Shown as it is (``talking_head_frames`` scales it to
    90 % of the frame height): the detector found 28 of 30 such faces, 22-26 with a margin
    added around the crop."""
    import cv2

    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError(f"cannot read face image {path}")
    return np.repeat(grey[:, :, None], 3, axis=2)


def _write_clip(
    out: Path, name: str, condition: str, face: Face, voice: Voice, words: str
) -> tuple[Path, Path | None]:
    audio = read_audio(voice.path)
    seconds = len(audio) / SAMPLE_RATE
    caption = None
    if condition != "no_words":
        caption = write_vtt(out / f"{name}.vtt", [Cue(0.0, round(seconds, 3), words)])
    if condition == "no_face":
        return write_media(out / f"{name}.mp3", frames=None, audio=audio), caption
    n_frames = max(1, round(seconds * FPS))
    frames = talking_head_frames(face_image(face.path), n_frames, fps=FPS)
    sound = None if condition == "no_voice" else audio
    return write_media(out / f"{name}.mp4", frames=frames, fps=FPS, audio=sound), caption


def build_devset(
    data: Path,
    out: Path,
    *,
    per_label: int = 12,
    seed: int = 0,
    conditions: Sequence[str] = CONDITIONS,
) -> Path:
    """Write ``per_label`` clips per valence and condition under ``out``; the manifest path.

    Faces and voices are drawn without replacement per label, seeded, so the same
    arguments write the same set.
    """
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        raise ValueError(f"conditions {unknown} unknown; use {CONDITIONS}")
    rng = random.Random(seed)
    voices, faces, polar = dev_voices(data), dev_faces(data), polar_sentences(data)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    with manifest.open("w", encoding="utf-8") as f:
        for clip in _clips(out, rng, voices, faces, polar, per_label, conditions):
            f.write(clip.to_json() + "\n")
    return manifest


def _clips(out, rng, voices, faces, polar, per_label, conditions) -> Iterator[DevClip]:
    for label in LABELS:
        vs = rng.sample([v for v in voices if v.label == label], per_label)
        fs = rng.sample([x for x in faces if x.label == label], per_label)
        for i, (voice, face) in enumerate(zip(vs, fs, strict=True)):
            for condition in conditions:
                polar_words = condition == "all_polar_words" and label != "neutral"
                words = rng.choice(polar[label]) if polar_words else voice.transcript
                name = f"{label}-{i:02d}-{condition}"
                media, caption = _write_clip(out, name, condition, face, voice, words)
                yield DevClip(
                    uri=str(media),
                    video_id=name,
                    label=label,
                    group=voice.group,
                    condition=condition,
                    caption_uri=str(caption) if caption else None,
                    metadata={"modalities": "face,voice"} if condition == "no_words" else {},
                    labels={
                        "face": face.label,
                        "voice": voice.label,
                        "text": label if polar_words else "neutral",
                    },
                )

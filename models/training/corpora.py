"""Readers of the standard corpora, each ``root -> list[Example]`` (see
:mod:`sentistream.models.training.datasets` for the layouts and how labels are mapped).

Speech: ``read_ravdess``, ``read_tess``, ``read_emodb`` (group = speaker; audio is
listed, not decoded). Faces: ``read_ckplus`` (group = subject), ``read_fer2013`` (no
subject ids: every image its own group; the data's train / dev split kept). Text:
``read_meld`` (group = dialogue), ``read_tweeteval``, ``read_sst2`` (every text its own
group).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

from sentistream.models.labels import emotion_to_valence
from sentistream.models.training.examples import (
    IMAGE_EXT,
    SPLITS,
    Example,
    audio_files,
    labels_csv,
    nonempty,
    read_table_rows,
    require,
)

RAVDESS_EMOTIONS: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
_TESS_ALIASES = {
    "fear": "fearful",
    "pleasant_surprised": "pleasant_surprise",
    "ps": "pleasant_surprise",
}
EMODB_EMOTIONS: dict[str, str] = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
RAVDESS_NAME = re.compile(
    r"^(\d\d)-(\d\d)-(?P<emotion>\d\d)-(\d\d)-(\d\d)-(\d\d)-(?P<speaker>\d\d)$"
)
EMODB_NAME = re.compile(r"^(?P<speaker>\d\d)([a-z]\d\d)(?P<emotion>[WLEAFTN])([a-z])$")


def _from_labels(
    root: Path,
    rows: list[dict[str, str]],
    who: str,
    corpus: str,
    speaker: Callable[[str], str],
    emotion: Callable[[str], str] = lambda e: e.strip().lower(),
) -> list[Example]:
    """Speech items of a ``labels.csv`` (path, emotion, ``who``[, valence_mapped]); group =
    ``<corpus>-<speaker(row[who])>``."""
    require(rows, ("path", "emotion", who), root / "labels.csv")
    out = []
    for r in rows:
        emo = emotion(r["emotion"])
        label = r.get("valence_mapped") or emotion_to_valence(emo)
        group = f"{corpus}-{speaker(r[who])}"
        out.append(Example(str(root / r["path"]), label, group, "", emo, corpus))
    return out


def _from_names(
    root: Path, pattern: re.Pattern[str], corpus: str, what: str, emotions: dict[str, str]
) -> list[Example]:
    """Speech items named by ``pattern``: its ``emotion`` group (a key of ``emotions``) and
    its ``speaker`` group; ValueError naming the first file that does not fit."""
    out = []
    for path in audio_files(root):
        match = pattern.match(path.stem)
        if match is None or match.group("emotion") not in emotions:
            raise ValueError(f"root {root}: {path.name} is not {what}")
        emo = emotions[match.group("emotion")]
        group = f"{corpus}-{match.group('speaker')}"
        out.append(Example(str(path), emotion_to_valence(emo), group, "", emo, corpus))
    return nonempty(out, root, f"{corpus} audio files or labels.csv")


def read_ravdess(root: str | Path) -> list[Example]:
    """RAVDESS-style speech; group = ``ravdess-<actor>`` (two digits)."""
    root = Path(root)
    rows = labels_csv(root)
    if rows is not None:
        return _from_labels(root, rows, "actor", "ravdess", lambda a: f"{int(a):02d}")
    what = "a RAVDESS name MM-VV-EE-II-SS-RR-AA"
    return _from_names(root, RAVDESS_NAME, "ravdess", what, RAVDESS_EMOTIONS)


def _tess_emotion(name: str) -> str:
    key = name.strip().lower()
    return _TESS_ALIASES.get(key, key)


def read_tess(root: str | Path) -> list[Example]:
    """TESS-style speech; group = ``tess-<SPEAKER>``."""
    root = Path(root)
    rows = labels_csv(root)
    if rows is not None:
        return _from_labels(root, rows, "speaker", "tess", str.strip, _tess_emotion)
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        speaker, sep, emotion = folder.name.partition("_")
        if not sep:
            raise ValueError(f"root {root}: folder {folder.name!r} is not <SPEAKER>_<emotion>")
        emotion = _tess_emotion(emotion)
        label = emotion_to_valence(emotion)
        for wav in audio_files(folder):
            out.append(Example(str(wav), label, f"tess-{speaker}", "", emotion, "tess"))
    return nonempty(out, root, "TESS <SPEAKER>_<emotion> folders or labels.csv")


def read_emodb(root: str | Path) -> list[Example]:
    """Emo-DB speech; group = ``emodb-<speaker>`` (two digits)."""
    root = Path(root)
    rows = labels_csv(root)
    if rows is not None:
        return _from_labels(root, rows, "speaker", "emodb", lambda a: f"{int(a):02d}")
    return _from_names(root, EMODB_NAME, "emodb", "an Emo-DB name SSTTTEV", EMODB_EMOTIONS)


def read_ckplus(root: str | Path) -> list[Example]:
    """CK+-style face images; group = subject (``S010``)."""
    root = Path(root)
    rows = labels_csv(root)
    out = []
    if rows is not None:
        require(rows, ("path", "subject", "emotion"), root / "labels.csv")
        for r in rows:
            emotion = r["emotion"].strip().lower()
            label = emotion_to_valence(emotion)
            out.append(Example(str(root / r["path"]), label, r["subject"], "", emotion, "ckplus"))
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = folder.name.lower()
        label = emotion_to_valence(emotion)
        for img in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT):
            subject = img.stem.split("_")[0]
            out.append(Example(str(img), label, subject, "", emotion, "ckplus"))
    return nonempty(out, root, "CK+ class folders or labels.csv")


def read_fer2013(root: str | Path) -> list[Example]:
    """FER2013 faces; split from ``labels.csv`` or the top folder; group = the image."""
    root = Path(root)
    rows = labels_csv(root)
    if rows is not None:
        require(rows, ("path", "emotion", "split"), root / "labels.csv")
        items = [(r["path"], r["emotion"], r["split"]) for r in rows]
    else:
        items = [
            (str(p.relative_to(root)), p.parent.name, p.parent.parent.name)
            for p in sorted(root.glob("*/*/*"))
            if p.suffix.lower() in IMAGE_EXT
        ]
    out = []
    for path, emotion, split in items:
        emotion, split = emotion.strip().lower(), split.strip().lower()
        if split not in SPLITS:
            raise ValueError(f"root {root}: {path} has split {split!r}, not one of {SPLITS}")
        label = emotion_to_valence(emotion)
        out.append(Example(str(root / path), label, f"fer-{path}", split, emotion, "fer2013"))
    return nonempty(out, root, "FER2013 <split>/<emotion>/ images or labels.csv")


def read_meld(path: str | Path) -> list[Example]:
    """MELD utterances; label = ``Sentiment``; group = ``meld-<split>-<Dialogue_ID>``."""
    path = Path(path)
    files = sorted(path.glob("*_sent_emo.csv")) if path.is_dir() else [path]
    out = []
    for f in files:
        rows = read_table_rows(f)
        require(rows, ("Utterance", "Sentiment", "Dialogue_ID"), f)
        prefix = f.name.split("_")[0].lower()
        split = {"val": "dev"}.get(prefix, prefix if prefix in SPLITS else "")
        for r in rows:
            group = f"meld-{split or f.stem}-{r['Dialogue_ID']}"
            emotion = r.get("Emotion", "")
            out.append(
                Example(
                    r["Utterance"], r["Sentiment"].strip().lower(), group, split, emotion, "meld"
                )
            )
    return nonempty(out, path, "MELD *_sent_emo.csv files")


def read_tweeteval(root: str | Path) -> list[Example]:
    """TweetEval sentiment; ``val`` is the ``dev`` split; each tweet is its own group."""
    root = Path(root)
    mapping_file = root / "mapping.txt"
    if not mapping_file.is_file():
        raise ValueError(f"root {root} has no mapping.txt")
    mapping = {}
    for line in mapping_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            key, name = line.split("\t") if "\t" in line else line.split(maxsplit=1)
            mapping[key.strip()] = name.strip().lower()
    out = []
    for prefix, split in (("train", "train"), ("val", "dev"), ("test", "test")):
        texts_file = root / f"{prefix}_text.txt"
        if not texts_file.is_file():
            continue
        texts = texts_file.read_text(encoding="utf-8").splitlines()
        labels = (root / f"{prefix}_labels.txt").read_text(encoding="utf-8").split()
        if len(texts) != len(labels):
            raise ValueError(f"{texts_file}: {len(texts)} texts but {len(labels)} labels")
        for i, (text, lab) in enumerate(zip(texts, labels, strict=True)):
            if lab not in mapping:
                raise ValueError(f"{texts_file}: label {lab!r} is not in mapping.txt {mapping}")
            out.append(
                Example(text.strip(), mapping[lab], f"tweet-{split}-{i}", split, "", "tweeteval")
            )
    return nonempty(out, root, "{train,val,test}_text.txt files")


def read_sst2(root: str | Path) -> list[Example]:
    """SST-2 ``{train,dev,test}.tsv``: ``sentence`` tab ``label`` (0 negative, 1 positive);
    each sentence is its own group."""
    root = Path(root)
    out = []
    for split in SPLITS:
        table = root / f"{split}.tsv"
        if not table.is_file():
            continue
        with table.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
        require(rows, ("sentence", "label"), table)
        for i, r in enumerate(rows):
            if r["label"] not in ("0", "1"):
                raise ValueError(f"{table} row {i + 1}: label must be 0 or 1, got {r['label']!r}")
            label = "positive" if r["label"] == "1" else "negative"
            text = r["sentence"].strip()
            out.append(Example(text, label, f"sst2-{split}-{i}", split, "", "sst2"))
    return nonempty(out, root, "{train,dev,test}.tsv files")

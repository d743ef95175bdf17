"""Labelled data in its standard layouts -> one typed ``Example`` list, and leak-free splits.

Readers (each returns ``list[Example]``):

* ``read_ravdess``: RAVDESS-style speech, ``labels.csv`` (path, emotion, actor[,
  valence_mapped]) or, without it, every ``*.wav`` named ``MM-VV-EE-II-SS-RR-AA``.
* ``read_tess``: TESS-style speech, ``labels.csv`` (path, speaker, emotion[,
  valence_mapped]) or folders ``<SPEAKER>_<emotion>`` of wav files.
* ``read_ckplus``: CK+-style faces, ``labels.csv`` (path, subject, emotion) or class
  folders (``anger/S010_004_00000017.png``; subject = the file name up to its first ``_``).
* ``read_meld``: a MELD ``*_sent_emo.csv`` (split from its name) or a folder of them.
* ``read_tweeteval``: ``{train,val,test}_text.txt`` + ``_labels.txt`` + ``mapping.txt``.
* ``read_manifest``: the user's own labelled data, CSV or JSONL, one item a row:
  ``media`` (a path, relative to the manifest's folder) or ``text``; ``label``; optional
  ``group`` (speaker / subject / call: items of one group never straddle a split) and
  ``split`` (``train`` / ``dev`` / ``test``).

``read_dataset(path, layout="auto")`` picks the reader. ``Example.label`` is the 3-class
valence (``negative`` / ``neutral`` / ``positive``) where the corpus has acted emotions
(mapped by ``EMOTION_VALENCE``; surprise is ``ambiguous``), the corpus's own sentiment
label otherwise. Pure file reading: no models, no Beam.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
AMBIGUOUS = "ambiguous"
LAYOUTS: tuple[str, ...] = ("ravdess", "tess", "ckplus", "meld", "tweeteval", "manifest")
SPLITS: tuple[str, ...] = ("train", "dev", "test")

#: Acted emotion -> valence, as the shared data's ``valence_mapped`` column does it.
EMOTION_VALENCE: dict[str, str] = {
    **dict.fromkeys(("neutral", "calm"), "neutral"),
    **dict.fromkeys(("happy", "pleasant_surprise"), "positive"),
    **dict.fromkeys(
        ("sad", "sadness", "angry", "anger", "fearful", "fear", "disgust", "contempt"),
        "negative",
    ),
    **dict.fromkeys(("surprised", "surprise"), AMBIGUOUS),
}
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
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff")


class Example(NamedTuple):
    """One labelled item.

    Attributes:
        path_or_text: absolute media path, or the text itself (MELD, TweetEval, ``text``
            manifests).
        label: 3-class valence or the corpus's sentiment label (see the module docstring).
        group: who or what the item belongs to (speaker, subject, dialogue, call); a split
            never puts one group on both sides.
        split: ``train`` / ``dev`` / ``test``, or ``""`` where the data does not say.
        emotion: the corpus's emotion label, where it has one.
        corpus: which reader made it (``ravdess``, ``tess``, ...).
    """

    path_or_text: str
    label: str
    group: str
    split: str = ""
    emotion: str = ""
    corpus: str = ""


def emotion_to_valence(emotion: str) -> str:
    """An acted emotion name -> ``negative`` / ``neutral`` / ``positive`` / ``ambiguous``."""
    key = emotion.strip().lower()
    if key not in EMOTION_VALENCE:
        raise ValueError(
            f"emotion {emotion!r} has no valence mapping; known: {sorted(EMOTION_VALENCE)}"
        )
    return EMOTION_VALENCE[key]


def read_table_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV (with a header) or JSONL file as dicts of strings (None -> "")."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {path} is not a file")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError(f"{path}:{n}: each JSONL line must be an object")
                rows.append({k: "" if v is None else str(v) for k, v in obj.items()})
        return rows
    with path.open(newline="", encoding="utf-8") as fh:
        return [{k: v or "" for k, v in row.items()} for row in csv.DictReader(fh)]


def _labels_csv(root: Path) -> list[dict[str, str]] | None:
    table = root / "labels.csv"
    return read_table_rows(table) if table.is_file() else None


def _require(rows: list[dict[str, str]], columns: Iterable[str], where: Path) -> None:
    missing = [c for c in columns if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; has {sorted(rows[0])}")


def read_ravdess(root: str | Path) -> list[Example]:
    """RAVDESS-style speech; group = ``ravdess-<actor>`` (two digits)."""
    root = Path(root)
    rows = _labels_csv(root)
    out = []
    if rows is not None:
        _require(rows, ("path", "emotion", "actor"), root / "labels.csv")
        for r in rows:
            emotion = r["emotion"].strip().lower()
            label = r.get("valence_mapped") or emotion_to_valence(emotion)
            group = f"ravdess-{int(r['actor']):02d}"
            out.append(Example(str(root / r["path"]), label, group, "", emotion, "ravdess"))
        return out
    for wav in sorted(root.rglob("*.wav")):
        match = _RAVDESS_NAME.match(wav.stem)
        if match is None or match.group(3) not in RAVDESS_EMOTIONS:
            raise ValueError(f"root {root}: {wav.name} is not a RAVDESS name MM-VV-EE-II-SS-RR-AA")
        emotion = RAVDESS_EMOTIONS[match.group(3)]
        group = f"ravdess-{match.group(7)}"
        out.append(Example(str(wav), emotion_to_valence(emotion), group, "", emotion, "ravdess"))
    return _nonempty(out, root, "RAVDESS wav files or labels.csv")


def _tess_emotion(name: str) -> str:
    key = name.strip().lower()
    return _TESS_ALIASES.get(key, key)


def read_tess(root: str | Path) -> list[Example]:
    """TESS-style speech; group = ``tess-<SPEAKER>``."""
    root = Path(root)
    rows = _labels_csv(root)
    out = []
    if rows is not None:
        _require(rows, ("path", "speaker", "emotion"), root / "labels.csv")
        for r in rows:
            emotion = _tess_emotion(r["emotion"])
            label = r.get("valence_mapped") or emotion_to_valence(emotion)
            group = f"tess-{r['speaker'].strip()}"
            out.append(Example(str(root / r["path"]), label, group, "", emotion, "tess"))
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        speaker, sep, emotion = folder.name.partition("_")
        if not sep:
            raise ValueError(f"root {root}: folder {folder.name!r} is not <SPEAKER>_<emotion>")
        emotion = _tess_emotion(emotion)
        label = emotion_to_valence(emotion)
        for wav in sorted(folder.glob("*.wav")):
            out.append(Example(str(wav), label, f"tess-{speaker}", "", emotion, "tess"))
    return _nonempty(out, root, "TESS <SPEAKER>_<emotion> folders or labels.csv")


def read_ckplus(root: str | Path) -> list[Example]:
    """CK+-style face images; group = subject (``S010``)."""
    root = Path(root)
    rows = _labels_csv(root)
    out = []
    if rows is not None:
        _require(rows, ("path", "subject", "emotion"), root / "labels.csv")
        for r in rows:
            emotion = r["emotion"].strip().lower()
            label = emotion_to_valence(emotion)
            out.append(Example(str(root / r["path"]), label, r["subject"], "", emotion, "ckplus"))
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = folder.name.lower()
        label = emotion_to_valence(emotion)
        for img in sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXT):
            subject = img.stem.split("_")[0]
            out.append(Example(str(img), label, subject, "", emotion, "ckplus"))
    return _nonempty(out, root, "CK+ class folders or labels.csv")


def read_meld(path: str | Path) -> list[Example]:
    """MELD utterances; label = ``Sentiment``; group = ``meld-<split>-<Dialogue_ID>``."""
    path = Path(path)
    files = sorted(path.glob("*_sent_emo.csv")) if path.is_dir() else [path]
    out = []
    for f in files:
        rows = read_table_rows(f)
        _require(rows, ("Utterance", "Sentiment", "Dialogue_ID"), f)
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
    return _nonempty(out, path, "MELD *_sent_emo.csv files")


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
    return _nonempty(out, root, "{train,val,test}_text.txt files")


def read_manifest(path: str | Path) -> list[Example]:
    """The user's manifest (CSV or JSONL; see the module docstring)."""
    path = Path(path)
    rows = read_table_rows(path)
    out = []
    for n, r in enumerate(rows, 1):
        where = f"{path} row {n}"
        media, text = r.get("media", "").strip(), r.get("text", "").strip()
        if bool(media) == bool(text):
            raise ValueError(f"{where}: give exactly one of 'media' and 'text'")
        label = r.get("label", "").strip().lower()
        if not label:
            raise ValueError(f"{where}: 'label' is empty")
        split = r.get("split", "").strip().lower()
        if split and split not in SPLITS:
            raise ValueError(f"{where}: split must be one of {SPLITS} or empty, got {split!r}")
        item = str((path.parent / media).resolve()) if media else text
        group = r.get("group", "").strip() or f"item-{n}"
        out.append(Example(item, label, group, split, r.get("emotion", "").strip(), "manifest"))
    return _nonempty(out, path, "rows")


def _nonempty(examples: list[Example], where: Path, what: str) -> list[Example]:
    if not examples:
        raise ValueError(f"{where}: found no {what}")
    return examples


def detect_layout(path: str | Path) -> str:
    """Guess the layout of a dataset path; ValueError when nothing fits."""
    path = Path(path)
    if path.is_file():
        if path.name.endswith("_sent_emo.csv"):
            return "meld"
        if path.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
            return "manifest"
    elif path.is_dir():
        if any(path.glob("*_sent_emo.csv")):
            return "meld"
        if (path / "mapping.txt").is_file():
            return "tweeteval"
        for name in ("manifest.csv", "manifest.jsonl"):
            if (path / name).is_file():
                return "manifest"
        rows = _labels_csv(path)
        if rows:
            cols = set(rows[0])
            for layout, needs in (("ravdess", "actor"), ("ckplus", "subject"), ("tess", "speaker")):
                if needs in cols:
                    return layout
        wavs = list(path.rglob("*.wav"))[:20]
        if wavs and all(_RAVDESS_NAME.match(w.stem) for w in wavs):
            return "ravdess"
        subdirs = [p.name for p in path.iterdir() if p.is_dir()]
        if wavs and subdirs and all("_" in d for d in subdirs):
            return "tess"
        if subdirs and all(d.lower() in EMOTION_VALENCE for d in subdirs):
            return "ckplus"
    raise ValueError(
        f"cannot tell the layout of {path}; pass --layout (one of {', '.join(LAYOUTS)})"
    )


READERS = {
    "ravdess": read_ravdess,
    "tess": read_tess,
    "ckplus": read_ckplus,
    "meld": read_meld,
    "tweeteval": read_tweeteval,
    "manifest": read_manifest,
}


def read_dataset(path: str | Path, layout: str = "auto") -> list[Example]:
    """Read a dataset in one of ``LAYOUTS`` (``auto``: ``detect_layout``)."""
    path = Path(path)
    if layout == "auto":
        layout = detect_layout(path)
    if layout not in READERS:
        raise ValueError(f"layout must be 'auto' or one of {LAYOUTS}, got {layout!r}")
    if layout == "manifest" and path.is_dir():
        found = [path / n for n in ("manifest.csv", "manifest.jsonl") if (path / n).is_file()]
        if not found:
            raise ValueError(f"path {path}: a manifest layout needs manifest.csv or .jsonl")
        path = found[0]
    return READERS[layout](path)


def group_split(
    examples: Sequence[Example], dev_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split by group: ``round(dev_fraction * n_groups)`` whole groups (at least one, and
    at least one left) go to dev, chosen by a seeded permutation. Returns (train, dev)
    with ``split`` set; the order within each side is the input order."""
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction!r}")
    groups = sorted({e.group for e in examples})
    if len(groups) < 2:
        raise ValueError(f"examples must span at least 2 groups to split, got {groups}")
    n_dev = min(len(groups) - 1, max(1, round(dev_fraction * len(groups))))
    order = np.random.default_rng(seed).permutation(len(groups))
    dev_groups = {groups[i] for i in order[:n_dev]}
    train = [e._replace(split="train") for e in examples if e.group not in dev_groups]
    dev = [e._replace(split="dev") for e in examples if e.group in dev_groups]
    return train, dev


def assign_splits(
    examples: Sequence[Example], dev_fraction: float, seed: int
) -> dict[str, list[Example]]:
    """``{"train", "dev", "test"}`` lists: the data's own splits where it has them; a dev
    side missing from the data is split off ``train`` (or off the unsplit items) by group.

    Raises ValueError when a group appears in two of the data's own splits.
    """
    sides: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for e in examples:
        sides[e.split or "train"].append(e._replace(split=e.split or "train"))
    seen: dict[str, str] = {}
    for side, items in sides.items():
        for e in items:
            if seen.setdefault(e.group, side) != side:
                raise ValueError(f"group {e.group!r} is in both {seen[e.group]!r} and {side!r}")
    if not sides["dev"] and sides["train"]:
        sides["train"], sides["dev"] = group_split(sides["train"], dev_fraction, seed)
    return sides

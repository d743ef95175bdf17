"""Labelled data in its standard layouts -> one typed ``Example`` list, and leak-free splits.

Readers (each returns ``list[Example]``; the corpus readers live in
:mod:`sentistream.models.training.corpora`):

* ``read_ravdess``: RAVDESS-style speech, ``labels.csv`` (path, emotion, actor[,
  valence_mapped]) or, without it, every ``*.wav`` named ``MM-VV-EE-II-SS-RR-AA``.
* ``read_tess``: TESS-style speech, ``labels.csv`` (path, speaker, emotion[,
  valence_mapped]) or folders ``<SPEAKER>_<emotion>`` of wav files.
* ``read_emodb``: Emo-DB, ``labels.csv`` (path, speaker, emotion[, valence_mapped]) or
  audio files named ``SSTTTEV`` (speaker, text, emotion letter, version).
* ``read_ckplus``: CK+-style faces, ``labels.csv`` (path, subject, emotion) or class
  folders (``anger/S010_004_00000017.png``; subject = the file name up to its first ``_``).
* ``read_fer2013``: FER2013 faces, ``labels.csv`` (path, emotion, split) or
  ``<split>/<emotion>/*.jpg`` folders; every image is its own group (no subject ids).
* ``read_meld``: a MELD ``*_sent_emo.csv`` (split from its name) or a folder of them.
* ``read_tweeteval``: ``{train,val,test}_text.txt`` + ``_labels.txt`` + ``mapping.txt``.
* ``read_sst2``: SST-2 ``{train,dev,test}.tsv`` (``sentence`` tab ``label``, 0 / 1).
* ``read_manifest``: the user's own labelled data, CSV or JSONL, one item a row:
  ``media`` (a path, relative to the manifest's folder) or ``text``; ``label``; optional
  ``group`` (speaker / subject / call: items of one group never straddle a split) and
  ``split`` (``train`` / ``dev`` / ``test``).

``read_dataset(path, layout="auto")`` picks the reader. ``Example.label`` is the 3-class
valence (``negative`` / ``neutral`` / ``positive``) where the corpus has acted emotions
(mapped by ``models.labels.EMOTION_VALENCE``; surprise is ``ambiguous``), the corpus's own
sentiment label otherwise. Audio files are listed, not decoded (``models.audio.read_audio``
decodes any format). Splitters: :mod:`sentistream.models.training.splits`. Pure file
reading: no models, no Beam.
"""

from __future__ import annotations

from pathlib import Path

from sentistream.models.labels import EMOTION_VALENCE
from sentistream.models.training import corpora, examples
from sentistream.models.training.corpora import EMODB_NAME, RAVDESS_NAME
from sentistream.models.training.examples import SPLITS, Example


def read_manifest(path: str | Path) -> list[Example]:
    """The user's manifest (CSV or JSONL; see the module docstring)."""
    path = Path(path)
    rows = examples.read_table_rows(path)
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
    return examples.nonempty(out, path, "rows")


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
        if any((path / f"{split}.tsv").is_file() for split in SPLITS):
            return "sst2"
        for name in ("manifest.csv", "manifest.jsonl"):
            if (path / name).is_file():
                return "manifest"
        rows = examples.labels_csv(path)
        if rows:
            cols = set(rows[0])
            for layout, needs in (
                ("ravdess", "actor"),
                ("ckplus", "subject"),
                ("emodb", "text_code"),
                ("tess", "speaker"),
                ("fer2013", "split"),
            ):
                if needs in cols:
                    return layout
        wavs = examples.audio_files(path)[:20]
        if wavs and all(RAVDESS_NAME.match(w.stem) for w in wavs):
            return "ravdess"
        if wavs and all(EMODB_NAME.match(w.stem) for w in wavs):
            return "emodb"
        subdirs = [p.name for p in path.iterdir() if p.is_dir()]
        if wavs and subdirs and all("_" in d for d in subdirs):
            return "tess"
        if subdirs and all(d.lower() in EMOTION_VALENCE for d in subdirs):
            return "ckplus"
        if subdirs and all(d in SPLITS for d in subdirs):
            return "fer2013"
    raise ValueError(
        f"cannot tell the layout of {path}; pass --layout (one of {', '.join(LAYOUTS)})"
    )


READERS = {
    "ravdess": corpora.read_ravdess,
    "tess": corpora.read_tess,
    "emodb": corpora.read_emodb,
    "ckplus": corpora.read_ckplus,
    "fer2013": corpora.read_fer2013,
    "meld": corpora.read_meld,
    "tweeteval": corpora.read_tweeteval,
    "sst2": corpora.read_sst2,
    "manifest": read_manifest,
}
LAYOUTS: tuple[str, ...] = tuple(READERS)


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

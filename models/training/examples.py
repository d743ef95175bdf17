"""The record every dataset reader returns (:class:`Example`) and what the readers share:
table rows (CSV / JSONL), a folder's ``labels.csv``, column checks, media file listing.

Readers: :mod:`sentistream.models.training.corpora` (the standard corpora) and
:mod:`sentistream.models.training.datasets` (the user's manifest, layout detection).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

SPLITS: tuple[str, ...] = ("train", "dev", "test")
AUDIO_EXT = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff")


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


def labels_csv(root: Path) -> list[dict[str, str]] | None:
    table = root / "labels.csv"
    return read_table_rows(table) if table.is_file() else None


def require(rows: list[dict[str, str]], columns: Iterable[str], where: Path) -> None:
    missing = [c for c in columns if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; has {sorted(rows[0])}")


def nonempty(examples: list[Example], where: Path, what: str) -> list[Example]:
    if not examples:
        raise ValueError(f"{where}: found no {what}")
    return examples


def audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXT)

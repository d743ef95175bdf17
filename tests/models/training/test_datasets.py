"""Dataset readers on tiny generated layouts, layout detection, and leak-free splits."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sentistream.models.labels import emotion_to_valence
from sentistream.models.training.corpora import (
    read_ckplus,
    read_emodb,
    read_fer2013,
    read_meld,
    read_ravdess,
    read_sst2,
    read_tess,
    read_tweeteval,
)
from sentistream.models.training.datasets import detect_layout, read_dataset, read_manifest
from sentistream.models.training.examples import Example
from sentistream.models.training.splits import (
    assign_splits,
    dev_mask,
    group_folds,
    group_split,
    held_out_groups,
)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _read_as(
    reader: Callable[[Path], list[Example]], root: Path, layout: str, *fields: str
) -> list[tuple[object, ...]]:
    """``reader(root)`` as tuples of ``fields``, once ``detect_layout(root)`` is ``layout``."""
    assert detect_layout(root) == layout
    return [tuple(getattr(e, f) for f in fields) for e in reader(root)]


@pytest.fixture
def ravdess(tmp_path: Path) -> Path:
    root = tmp_path / "rav"
    for actor in ("01", "02"):
        for emo in ("01", "03", "04", "08"):
            _touch(root / f"Actor_{actor}" / f"03-01-{emo}-01-01-01-{actor}.wav")
    return root


def test_ravdess_from_file_names(ravdess: Path) -> None:
    ex = read_ravdess(ravdess)
    assert len(ex) == 8
    assert {e.group for e in ex} == {"ravdess-01", "ravdess-02"}
    by_emotion = {e.emotion: e.label for e in ex}
    assert by_emotion == {
        "neutral": "neutral",
        "happy": "positive",
        "sad": "negative",
        "surprised": "ambiguous",
    }
    assert all(Path(e.path_or_text).is_file() and e.corpus == "ravdess" for e in ex)
    assert detect_layout(ravdess) == "ravdess"


def test_ravdess_labels_csv_wins(ravdess: Path) -> None:
    (ravdess / "labels.csv").write_text(
        "path,emotion,actor,valence_mapped\nActor_01/03-01-01-01-01-01-01.wav,calm,1,neutral\n"
    )
    [e] = read_ravdess(ravdess)
    assert e == Example(
        str(ravdess / "Actor_01/03-01-01-01-01-01-01.wav"),
        "neutral",
        "ravdess-01",
        "",
        "calm",
        "ravdess",
    )


def test_ravdess_rejects_foreign_names(tmp_path: Path) -> None:
    _touch(tmp_path / "hello.wav")
    with pytest.raises(ValueError, match="not a RAVDESS name"):
        read_ravdess(tmp_path)


def test_ravdess_flac_and_emodb_names(tmp_path: Path) -> None:
    rav = tmp_path / "rav"
    _touch(rav / "Actor_03" / "03-01-05-01-01-01-03.flac")
    assert [(e.group, e.emotion) for e in read_ravdess(rav)] == [("ravdess-03", "angry")]
    emo = tmp_path / "emodb"
    for name in ("03a01Fa.flac", "08b02Lb.flac", "16a05Nc.wav"):
        _touch(emo / name)
    assert _read_as(read_emodb, emo, "emodb", "group", "emotion", "label") == [
        ("emodb-03", "happy", "positive"),
        ("emodb-08", "boredom", "negative"),
        ("emodb-16", "neutral", "neutral"),
    ]
    _touch(emo / "notes.wav")
    with pytest.raises(ValueError, match="not an Emo-DB name"):
        read_emodb(emo)


def test_fer2013_folders_and_labels_csv(tmp_path: Path) -> None:
    root = tmp_path / "fer"
    for split, emotion in (("train", "happy"), ("train", "fear"), ("dev", "surprise")):
        _touch(root / split / emotion / f"{split}_{emotion}.jpg")
    assert detect_layout(root) == "fer2013"
    ex = read_fer2013(root)
    assert Counter((e.split, e.label) for e in ex) == {
        ("train", "positive"): 1,
        ("train", "negative"): 1,
        ("dev", "ambiguous"): 1,
    }
    assert len({e.group for e in ex}) == 3 and all(e.corpus == "fer2013" for e in ex)
    (root / "labels.csv").write_text("path,emotion,split\ntrain/happy/train_happy.jpg,happy,test\n")
    assert detect_layout(root) == "fer2013"
    assert [e.split for e in read_fer2013(root)] == ["test"]


def test_sst2_tsv(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text('sentence\tlabel\na "great" film \t1\ndull\t0\n')
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n")
    assert _read_as(read_sst2, tmp_path, "sst2", "path_or_text", "label", "split") == [
        ('a "great" film', "positive", "train"),
        ("dull", "negative", "train"),
        ("fine", "positive", "dev"),
    ]
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\t2\n")
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        read_sst2(tmp_path)


def test_tess_folders(tmp_path: Path) -> None:
    for folder in ("OAF_Fear", "OAF_Pleasant_surprise", "YAF_neutral", "YAF_pleasant_surprised"):
        _touch(tmp_path / folder / f"{folder}_back.wav")
    ex = read_tess(tmp_path)
    got = sorted((e.group, e.emotion, e.label) for e in ex)
    assert got == [
        ("tess-OAF", "fearful", "negative"),
        ("tess-OAF", "pleasant_surprise", "positive"),
        ("tess-YAF", "neutral", "neutral"),
        ("tess-YAF", "pleasant_surprise", "positive"),
    ]
    assert detect_layout(tmp_path) == "tess"


def test_ckplus_class_folders(tmp_path: Path) -> None:
    for name in (
        "anger/S010_004_00000017.png",
        "happy/S011_006_00000001.png",
        "surprise/S010_001_00000009.png",
    ):
        _touch(tmp_path / name)
    ex = read_ckplus(tmp_path)
    assert sorted((e.group, e.label) for e in ex) == [
        ("S010", "ambiguous"),
        ("S010", "negative"),
        ("S011", "positive"),
    ]
    assert detect_layout(tmp_path) == "ckplus"


def test_meld_csv(tmp_path: Path) -> None:
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
    (tmp_path / "train_sent_emo.csv").write_text(
        header + '1,"Oh, great.",Joey,joy,positive,0,0\n2,What?,Ross,surprise,negative,0,1\n'
    )
    (tmp_path / "dev_sent_emo.csv").write_text(header + "1,Okay.,Rachel,neutral,neutral,0,0\n")
    assert _read_as(read_meld, tmp_path, "meld", "path_or_text", "label", "group", "split") == [
        ("Okay.", "neutral", "meld-dev-0", "dev"),
        ("Oh, great.", "positive", "meld-train-0", "train"),
        ("What?", "negative", "meld-train-0", "train"),
    ]
    assert detect_layout(tmp_path / "dev_sent_emo.csv") == "meld"


def test_tweeteval_files(tmp_path: Path) -> None:
    (tmp_path / "mapping.txt").write_text("0\tnegative\n1\tneutral\n2\tpositive\n")
    (tmp_path / "val_text.txt").write_text("bad day \nnice one\n")
    (tmp_path / "val_labels.txt").write_text("0\n2\n")
    ex = read_tweeteval(tmp_path)
    assert [(e.path_or_text, e.label, e.split) for e in ex] == [
        ("bad day", "negative", "dev"),
        ("nice one", "positive", "dev"),
    ]
    assert ex[0].group != ex[1].group
    assert detect_layout(tmp_path) == "tweeteval"


def test_tweeteval_length_mismatch(tmp_path: Path) -> None:
    (tmp_path / "mapping.txt").write_text("0\tnegative\n")
    (tmp_path / "val_text.txt").write_text("a\nb\n")
    (tmp_path / "val_labels.txt").write_text("0\n")
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        read_tweeteval(tmp_path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest_csv_and_jsonl(tmp_path: Path, suffix: str) -> None:
    rows = [
        {"media": "calls/a.wav", "label": "Negative", "group": "cust1", "split": "train"},
        {"text": "thank you so much", "label": "positive", "group": "cust2", "split": "test"},
        {"media": "calls/b.wav", "label": "neutral"},
    ]
    path = tmp_path / f"manifest{suffix}"
    if suffix == ".csv":
        lines = ["media,text,label,group,split"]
        lines += [
            ",".join(r.get(k, "") for k in ("media", "text", "label", "group", "split"))
            for r in rows
        ]
        path.write_text("\n".join(lines) + "\n")
    else:
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ex = read_manifest(path)
    assert ex[0].path_or_text == str((tmp_path / "calls/a.wav").resolve())
    assert [(e.label, e.group, e.split) for e in ex] == [
        ("negative", "cust1", "train"),
        ("positive", "cust2", "test"),
        ("neutral", "item-3", ""),
    ]
    assert ex[1].path_or_text == "thank you so much"
    assert detect_layout(path) == "manifest"
    assert read_dataset(tmp_path.joinpath(path.name)) == ex


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.wav,hi,positive,,", "exactly one of 'media' and 'text'"),
        ("a.wav,,,,", "'label' is empty"),
        ("a.wav,,positive,g,holdout", "split must be one of"),
    ],
)
def test_manifest_errors_name_the_row(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text("media,text,label,group,split\n" + row + "\n")
    with pytest.raises(ValueError, match=message):
        read_manifest(path)


def test_unknown_layout_and_emotion() -> None:
    with pytest.raises(ValueError, match="pass --layout"):
        detect_layout(Path("/nonexistent/folder"))
    with pytest.raises(ValueError, match="no valence mapping"):
        emotion_to_valence("bored")
    with pytest.raises(ValueError, match="layout must be"):
        read_dataset(Path("."), "kinetics")


def _examples(n_groups: int, per_group: int) -> list[Example]:
    return [
        Example(f"item-{g}-{i}", "neutral", f"g{g}")
        for g in range(n_groups)
        for i in range(per_group)
    ]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.9])
def test_group_split_never_leaks(seed: int, fraction: float) -> None:
    ex = _examples(n_groups=7, per_group=3)
    train, dev = group_split(ex, fraction, seed)
    assert not {e.group for e in train} & {e.group for e in dev}
    assert len(train) + len(dev) == len(ex) and train and dev
    assert {e.split for e in train} == {"train"} and {e.split for e in dev} == {"dev"}
    assert group_split(ex, fraction, seed) == (train, dev)  # deterministic


def test_dev_mask_and_folds_hold_whole_groups() -> None:
    groups = np.repeat(np.arange(20), 3)
    mask = dev_mask(groups, 0.2, 13)
    assert set(groups[mask]) == held_out_groups(groups, 0.2, 13) and len(set(groups[mask])) == 4
    assert not set(groups[mask]) & set(groups[~mask])
    folds = group_folds(groups.astype(str), 4, 0)
    assert sorted(np.bincount(folds)) == [15] * 4
    assert all(len(set(folds[groups == g])) == 1 for g in range(20))
    with pytest.raises(ValueError, match="n_folds"):
        group_folds(groups, 1, 0)


def test_group_split_needs_two_groups() -> None:
    with pytest.raises(ValueError, match="at least 2 groups"):
        group_split(_examples(1, 5), 0.5, 0)
    with pytest.raises(ValueError, match="dev_fraction"):
        group_split(_examples(3, 1), 1.0, 0)


def test_assign_splits_keeps_given_sides_and_rejects_straddling_groups() -> None:
    ex = [e._replace(split="test") if e.group == "g0" else e for e in _examples(5, 2)]
    sides = assign_splits(ex, 0.25, 0)
    assert {e.group for e in sides["test"]} == {"g0"}
    assert sides["dev"] and sides["train"]
    groups = [{e.group for e in sides[s]} for s in ("train", "dev", "test")]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    bad = ex + [Example("x", "neutral", "g0", "train")]
    with pytest.raises(ValueError, match="group 'g0' is in both"):
        assign_splits(bad, 0.25, 0)


@pytest.mark.data
def test_shared_corpora_read(shared_data: Path) -> None:
    counts, layouts = {}, {}
    subs = ("ravdess_audio", "tess", "emodb", "ckplus48", "fer2013", "meld", "tweeteval", "sst2")
    for sub in subs:
        ex = read_dataset(shared_data / sub)
        counts[sub] = (len(ex), len({e.group for e in ex}))
        layouts[sub] = detect_layout(shared_data / sub)
        assert all(e.label in ("negative", "neutral", "positive", "ambiguous") for e in ex)
        assert all(Path(e.path_or_text).is_file() for e in ex[:: max(1, len(ex) // 50)]) or (
            sub in ("meld", "tweeteval", "sst2")
        )
    assert counts == {
        "ravdess_audio": (1320, 22),  # actors 01-02 wav + 03-22 FLAC, 60 clips each
        "tess": (280, 2),
        "emodb": (535, 10),
        "ckplus48": (594, 66),
        "fer2013": (28709 + 3589, 28709 + 3589),  # no subject ids: every image its own group
        "meld": (11098, 1152),
        "tweeteval": (2000, 2000),
        "sst2": (60614 + 6735, 60614 + 6735),
    }
    assert layouts == {**{s: s for s in subs}, "ravdess_audio": "ravdess", "ckplus48": "ckplus"}
    meld = Counter(e.split for e in read_dataset(shared_data / "meld"))
    assert meld == {"train": 9989, "dev": 1109}
    fer = Counter(e.split for e in read_dataset(shared_data / "fer2013"))
    assert fer == {"train": 28709, "dev": 3589}
    emodb = Counter(e.label for e in read_dataset(shared_data / "emodb"))
    assert emodb == {"negative": 385, "neutral": 79, "positive": 71}  # boredom is negative

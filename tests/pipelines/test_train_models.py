"""``sentistream train`` / ``evaluate`` for face, text and voice on small manifests and on
the shared data (the fusion and parser tests are in ``test_train_cli.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sentistream.pipelines.train import cli as train_cli

LABELS = ("negative", "neutral", "positive")


@pytest.mark.data
@pytest.mark.slow
def run_cli(command: str) -> None:
    """Run ``sentistream COMMAND`` (words split on spaces) and require success."""
    assert train_cli.main(command.split()) == 0


def test_evaluate_face_on_ckplus(shared_data: Path, tmp_path: Path) -> None:
    report = tmp_path / "face.json"
    run_cli(
        f"evaluate face --data {shared_data / 'ckplus48'} --report {report} --bootstrap 50 --quiet"
    )
    m = json.loads(report.read_text())["metrics"]["valence"]
    assert m["n"] == 423 and m["accuracy"] > 0.85 and m["ece"] < 0.1


def write_face_manifest(folder: Path, n: int = 24) -> Path:
    """Grey 48x48 noise 'faces' (the model's output on them does not matter here)."""
    import cv2

    rng = np.random.default_rng(0)
    lines = ["media,label,group,split"]
    for i in range(n):
        name = f"img{i}.png"
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (48, 48), dtype=np.uint8))
        split = ("train", "dev", "test")[i % 3]
        lines.append(f"{name},{LABELS[i % 3]},subject{i % 6}-{split},{split}")
    (folder / "faces.csv").write_text("\n".join(lines) + "\n")
    return folder / "faces.csv"


def test_evaluate_and_fine_tune_face_on_a_valence_manifest(tmp_path: Path) -> None:
    from sentistream.models.face.model import FaceExpressionModel

    manifest = write_face_manifest(tmp_path)
    report = tmp_path / "face.json"
    run_cli(f"evaluate face --data {manifest} --report {report} --bootstrap 20 --quiet")
    m = json.loads(report.read_text())["metrics"]["valence"]
    assert m["n"] == 24 and 0 <= m["ece"] <= 1
    out_dir = tmp_path / "bundles"
    run_cli(
        f"train face --data {manifest} --out {out_dir} --name my-face --epochs 1 "
        f"--report {report} --bootstrap 20 --quiet"
    )
    out = json.loads(report.read_text())
    assert out["metrics"]["dev"]["n"] == 8  # the manifest's dev split
    model = FaceExpressionModel.load(str(out_dir / "my-face" / "bundle.json"))
    assert model.model_id == out["model_id"] and model.model_id.startswith("my-face@2+")
    fit = model.meta.training_data["fit"]
    assert [h["epoch"] for h in fit["history"]] == [0, 1]


@pytest.mark.slow
def test_train_and_evaluate_text_on_a_manifest(tmp_path: Path) -> None:
    """The generic path (a user's own texts): MiniLM + VADER head, bundle loadable."""
    words = {
        "negative": "awful terrible bad sad",
        "neutral": "the meeting is at noon",
        "positive": "great wonderful thanks love",
    }
    lines = ["text,label,group,split"]
    for i in range(60):
        label = LABELS[i % 3]
        lines.append(f"{words[label]} {i},{label},call{i // 3},{'test' if i >= 45 else ''}")
    manifest = tmp_path / "texts.csv"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "bundles"
    run_cli(
        f"train text --data {manifest} --out {out} --epochs 20 --bootstrap 20 "
        f"--quiet --cache {tmp_path / 'cache'}"
    )
    report = json.loads((out / "text-custom" / "report.json").read_text())
    assert report["metrics"]["test"]["accuracy"] > 0.4  # chance 1/3; 30 training texts
    assert (out / "text-custom" / "card.md").read_text().count("## Intended use") == 1
    ev = tmp_path / "ev.json"
    bundle = str(out / "text-custom")
    run_cli(f"evaluate text --data {manifest} --bundle {bundle} --split test --report {ev} --quiet")
    assert json.loads(ev.read_text())["metrics"]["all"]["n"] == 15


def write_voice_manifest(folder: Path, n: int = 36) -> Path:
    """Short generated 'speech' (harmonic tones; pitch rises with the label) as 16-bit wav."""
    import wave

    rng = np.random.default_rng(0)
    lines = ["media,label,group,split"]
    for i in range(n):
        y, sr = i % 3, 16_000
        t = np.arange(int(0.8 * sr)) / sr
        f0 = 120 + 60 * y + rng.normal(0, 5)
        audio = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) * 0.1
        audio *= 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
        with wave.open(str(folder / f"clip{i}.wav"), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(sr)
            f.writeframes((audio * 32767).astype("<i2").tobytes())
        split = ("train", "train", "dev", "test")[(i // 3) % 4]
        lines.append(f"clip{i}.wav,{LABELS[y]},speaker{i // 6}-{split},{split}")
    (folder / "voices.csv").write_text("\n".join(lines) + "\n")
    return folder / "voices.csv"


@pytest.mark.slow
def test_train_and_evaluate_voice_on_a_manifest(tmp_path: Path) -> None:
    """The generic voice path: flat valence heads on the recipe's features, then evaluate."""
    from sentistream.models.voice.model import VoiceEmotionModel

    manifest = write_voice_manifest(tmp_path)
    out = tmp_path / "bundles"
    run_cli(
        f"train voice --data {manifest} --out {out} --bootstrap 20 --quiet --cache "
        f"{tmp_path / 'cache'}"
    )
    folder = out / "voice-custom"
    assert {p.name for p in folder.iterdir()} >= {"bundle.json", "weights.pt", "card.md"}
    report = json.loads((folder / "report.json").read_text())
    model = VoiceEmotionModel.load(str(folder), threads=1)
    assert model.model_id == report["model_id"] and model.target == "valence"
    assert report["metrics"]["test"]["n"] == 9
    ev = tmp_path / "ev.json"
    run_cli(
        f"evaluate voice --data {manifest} --bundle {folder} --split test --report "
        f"{ev} --bootstrap 20 --quiet"
    )
    metrics = json.loads(ev.read_text())["metrics"]
    assert set(metrics) == {"channel (as run scores it)", "clips alone"}
    assert metrics["clips alone"]["n"] == 9
    assert metrics["clips alone"]["accuracy"] == report["metrics"]["test"]["accuracy"]


@pytest.mark.slow
def test_evaluate_text_on_a_binary_set_reports_the_present_labels(tmp_path: Path) -> None:
    """A positive / negative set: the 3-class view counts every ``neutral`` answer wrong,
    the view restricted to the labels present does not."""
    texts = {
        "negative": ["this was a dull and tedious film", "the plot is a mess", "flat acting"],
        "positive": ["a warm and funny delight", "the best film of the year", "moving"],
    }
    lines = ["text,label,group,split"]
    for label, items in texts.items():
        lines += [f"{t},{label},{label}{i},test" for i, t in enumerate(items)]
    manifest = tmp_path / "binary.csv"
    manifest.write_text("\n".join(lines) + "\n")
    ev = tmp_path / "ev.json"
    run_cli(f"evaluate text --data {manifest} --report {ev} --bootstrap 20 --quiet")
    metrics = json.loads(ev.read_text())["metrics"]["all"]
    binary = metrics["present_labels"]
    assert binary["labels"] == ["negative", "positive"] and binary["n"] == 6
    assert binary["accuracy"] >= metrics["accuracy"]
    assert len(binary["per_class_f1"]) == 2

"""``sentistream train`` / ``evaluate``: parsers, the fixed-rule adapter, and tiny
end-to-end runs on generated data (real data: marked ``data``)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sentistream.models.fusion.learned import LearnedFusion
from sentistream.models.training.cards import render_markdown
from sentistream.pipelines.train import cli as train_cli
from sentistream.pipelines.train.fusion import fixed_rule_predictor
from sentistream.transforms.fusion import fuse_fixed
from sentistream.transforms.records import ModalityResult

LABELS = ("negative", "neutral", "positive")


def write_score_table(path: Path, n: int = 360, seed: int = 0) -> Path:
    """Per-modality scores with labels, as a user would export them from the pipeline."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        cols = [f"{m}_{k}" for m in ("face", "voice", "text") for k in ("valence", "confidence")]
        w.writerow(["label", "group", "split", *cols])
        for i in range(n):
            y = int(rng.integers(3))
            split = "test" if i % 6 == 5 else ""
            row = [LABELS[y], f"call{i // 4}", split]
            for strength in (0.8, 0.5, 0.7):
                if rng.uniform() < 0.25:
                    row += ["", ""]
                    continue
                v = float(np.clip((y - 1) * strength + rng.normal(0, 0.3), -1, 1))
                row += [f"{v:.3f}", f"{0.4 + 0.5 * abs(v):.3f}"]
            w.writerow(row)
    return path


def test_add_parsers_registers_every_model() -> None:
    parser = argparse.ArgumentParser()
    train_cli.add_parsers(parser.add_subparsers(dest="command"))
    for command in ("train", "evaluate"):
        for model in ("face", "voice", "text", "fusion"):
            extra = ["--out", "o"] if command == "train" else []
            args = parser.parse_args([command, model, "--data", "d", *extra])
            assert (args.command, args.model, args.func) == (command, model, train_cli._dispatch)
    args = parser.parse_args(["train", "fusion", "--data", "d", "--out", "o", "--hidden", "0"])
    assert args.hidden == [0] and args.layout == "auto" and args.seed is None
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "fusion", "--data", "d"])  # --out is required


def test_unknown_options_are_refused(tmp_path: Path) -> None:
    parser = train_cli.build_parser()
    args = parser.parse_args(["evaluate", "fusion", "--data", str(tmp_path)])
    with pytest.raises(ValueError, match="unknown options"):
        args.func(args, ["--runner=DataflowRunner"])


def test_fixed_rule_adapter_matches_fuse_fixed() -> None:
    x = np.array(
        [
            [[0.8, 0.9, 1], [0, 0, 0], [-0.2, 0.4, 1]],
            [[0, 0, 0], [-0.7, 0.6, 1], [0, 0, 0]],
            [[0, 0, 0], [0.5, 0.01, 1], [0, 0, 0]],  # below min_confidence: no answer
        ],
        dtype=np.float32,
    )
    pred, conf = fixed_rule_predictor()(x)
    for i, row in enumerate(x):
        results = {m: ModalityResult(m, True, float(row[k, 0]), float(row[k, 1]))
                   for k, m in enumerate(("face", "voice", "text")) if row[k, 2]}  # fmt: skip
        ref = fuse_fixed(results, ("face", "voice", "text"))
        assert pred[i] == (LABELS.index(ref.label) if ref.label in LABELS else -1)
        assert conf[i] == pytest.approx(ref.confidence)
    assert pred.tolist() == [2, 0, -1]


def _train(table: Path, out: Path, *extra: str) -> int:
    return train_cli.main(["train", "fusion", "--data", str(table), "--out", str(out),
                           "--epochs", "25", "--hidden", "0", "--bootstrap", "50", "--quiet",
                           *extra])  # fmt: skip


def test_train_and_evaluate_fusion_end_to_end(tmp_path: Path) -> None:
    table = write_score_table(tmp_path / "scores.csv")
    out = tmp_path / "bundles"
    assert _train(table, out, "--checkpoint-dir", str(tmp_path / "ckpt")) == 0
    folder = out / "fusion-late-mlp"
    for name in ("weights.pt", "bundle.json", "card.md", "report.json", "report.md"):
        assert (folder / name).is_file(), name
    assert list((tmp_path / "ckpt").glob("final-h0.pt"))
    report = json.loads((folder / "report.json").read_text())
    table_rows = report["comparison"]["subsets"]
    assert [r["subset"] for r in table_rows] == [
        "face", "voice", "text", "face+voice", "face+text", "voice+text", "face+voice+text"
    ]  # fmt: skip
    for r in table_rows:
        for method in ("learned", "fixed", "best_single"):
            assert 0 <= r[method]["accuracy"] <= 1 and 0 <= r[method]["ece"] <= 1
            assert len(r[method]["weighted_f1_ci95"]) == 2
    assert report["comparison"]["evaluated_on"] == "test split"
    card = (folder / "card.md").read_text()
    assert "PAIRS" not in card  # a user's score table is not paired data
    assert "## Intended use" in card and "| face+voice+text |" in card

    bundle = folder
    model = LearnedFusion.load(str(bundle))
    assert model.model_id == report["model_id"] and model.components == {}
    ev = tmp_path / "eval.json"
    argv = ["evaluate", "fusion", "--data", str(table), "--bundle", str(bundle), "--split",
            "test", "--report", str(ev), "--bootstrap", "50", "--quiet"]  # fmt: skip
    assert train_cli.main(argv) == 0
    evaluated = json.loads(ev.read_text())
    assert evaluated["data"]["n_rows"] == 60 and len(evaluated["comparison"]["subsets"]) == 7
    assert ev.with_suffix(".md").read_text().startswith("# fusion evaluation")
    assert "evaluate fusion" in evaluated["command"]


@pytest.mark.slow
def test_train_fusion_is_deterministic(tmp_path: Path) -> None:
    table = write_score_table(tmp_path / "scores.csv")
    ids = []
    for run in ("a", "b"):
        assert _train(table, tmp_path / run) == 0
        meta = tmp_path / run / "fusion-late-mlp" / "bundle.json"
        ids.append(json.loads(meta.read_text())["model_id"])
    assert ids[0] == ids[1]


def test_fusion_records_and_checks_component_ids(tmp_path: Path, capsys) -> None:
    def with_ids(src: Path, dst: Path, voice_id: str) -> Path:
        rows = src.read_text().splitlines()
        dst.write_text(
            "\n".join([rows[0] + ",voice_model_id"] + [r + f",{voice_id}" for r in rows[1:]])
        )
        return dst

    table = write_score_table(tmp_path / "scores.csv")
    ours = with_ids(table, tmp_path / "ours.csv", "voice-a@1")
    assert _train(ours, tmp_path / "out") == 0
    bundle = tmp_path / "out" / "fusion-late-mlp"
    assert LearnedFusion.load(str(bundle)).components == {"voice": "voice-a@1"}
    other = with_ids(table, tmp_path / "other.csv", "voice-b@1")
    argv = ["evaluate", "fusion", "--data", str(other), "--bundle", str(bundle), "--quiet"]
    assert train_cli.main(argv) == 2
    assert "voice-a@1" in (err := capsys.readouterr().err) and "voice-b@1" in err


def test_bad_score_table_fails_with_a_clear_message(tmp_path: Path, capsys) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("label,face_valence,face_confidence\nhappy,0.5,0.9\n")
    assert _train(table, tmp_path / "out") == 2
    assert "label must be one of" in capsys.readouterr().err


def test_render_markdown_tables() -> None:
    m = {"n": 10, "accuracy": 0.5, "accuracy_ci95": [0.3, 0.7], "macro_f1": 0.4,
         "macro_f1_ci95": [0.2, 0.6], "weighted_f1": 0.45, "weighted_f1_ci95": [0.25, 0.65],
         "ece": 0.1}  # fmt: skip
    text = render_markdown(
        {"name": "x", "model_id": "x@1", "metrics": {"test": m}, "command": "sentistream ..."},
        card=True,
    )
    assert "| test | 10 | 0.500 [0.300, 0.700] |" in text and "## Out of scope" in text


@pytest.mark.data
@pytest.mark.slow
def test_evaluate_face_on_ckplus(shared_data: Path, tmp_path: Path) -> None:
    report = tmp_path / "face.json"
    argv = ["evaluate", "face", "--data", str(shared_data / "ckplus48"), "--report",
            str(report), "--bootstrap", "50", "--quiet"]  # fmt: skip
    assert train_cli.main(argv) == 0
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


def test_evaluate_and_calibrate_face_on_a_manifest(tmp_path: Path) -> None:
    manifest = write_face_manifest(tmp_path)
    report = tmp_path / "face.json"
    argv = ["evaluate", "face", "--data", str(manifest), "--report", str(report),
            "--bootstrap", "20", "--quiet"]  # fmt: skip
    assert train_cli.main(argv) == 0
    m = json.loads(report.read_text())["metrics"]["valence"]
    assert m["n"] == 24 and 0 <= m["ece"] <= 1
    argv = ["train", "face", "--data", str(manifest), "--report", str(report),
            "--bootstrap", "20", "--quiet"]  # fmt: skip
    assert train_cli.main(argv) == 0
    out = json.loads(report.read_text())
    assert out["calibration"]["fitted_on"] == "3-class valence NLL"
    assert out["calibration"]["n_calibration"] == 8 and out["metrics"]["held_out"]["n"] == 8
    assert out["calibration"]["apply"] == (
        out["metrics"]["held_out_calibrated"]["ece"] < out["metrics"]["held_out"]["ece"]
    )


@pytest.mark.slow
def test_train_and_evaluate_text_on_a_manifest(tmp_path: Path) -> None:
    """The generic path (a user's own texts): MiniLM + VADER head, bundle loadable."""
    words = {"negative": "awful terrible bad sad", "neutral": "the meeting is at noon",
             "positive": "great wonderful thanks love"}  # fmt: skip
    lines = ["text,label,group,split"]
    for i in range(60):
        label = LABELS[i % 3]
        lines.append(f"{words[label]} {i},{label},call{i // 3},{'test' if i >= 45 else ''}")
    manifest = tmp_path / "texts.csv"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "bundles"
    argv = ["train", "text", "--data", str(manifest), "--out", str(out), "--epochs", "20",
            "--bootstrap", "20", "--quiet", "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert train_cli.main(argv) == 0
    report = json.loads((out / "text-custom" / "report.json").read_text())
    assert report["metrics"]["test"]["accuracy"] > 0.4  # chance 1/3; 30 training texts
    assert (out / "text-custom" / "card.md").read_text().count("## Intended use") == 1
    ev = tmp_path / "ev.json"
    bundle = str(out / "text-custom")
    argv = ["evaluate", "text", "--data", str(manifest), "--bundle", bundle, "--split",
            "test", "--report", str(ev), "--quiet"]  # fmt: skip
    assert train_cli.main(argv) == 0
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
    argv = ["train", "voice", "--data", str(manifest), "--out", str(out), "--bootstrap", "20",
            "--quiet", "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert train_cli.main(argv) == 0
    folder = out / "voice-custom"
    assert {p.name for p in folder.iterdir()} >= {"bundle.json", "weights.pt", "card.md"}
    report = json.loads((folder / "report.json").read_text())
    model = VoiceEmotionModel.load(str(folder), threads=1)
    assert model.model_id == report["model_id"] and model.target == "valence"
    assert report["metrics"]["test"]["n"] == 9
    ev = tmp_path / "ev.json"
    argv = ["evaluate", "voice", "--data", str(manifest), "--bundle", str(folder), "--split",
            "test", "--report", str(ev), "--bootstrap", "20", "--quiet"]  # fmt: skip
    assert train_cli.main(argv) == 0
    metrics = json.loads(ev.read_text())["metrics"]
    assert set(metrics) == {"channel (as run scores it)", "clips alone"}
    assert metrics["clips alone"]["n"] == 9
    assert metrics["clips alone"]["accuracy"] == report["metrics"]["test"]["accuracy"]

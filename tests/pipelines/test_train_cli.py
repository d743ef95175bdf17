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


def run_cli(command: str) -> None:
    """Run ``sentistream COMMAND`` (words split on spaces) and require success."""
    assert train_cli.main(command.split()) == 0


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
        results = {
            m: ModalityResult(m, True, float(row[k, 0]), float(row[k, 1]))
            for k, m in enumerate(("face", "voice", "text"))
            if row[k, 2]
        }
        ref = fuse_fixed(results, ("face", "voice", "text"))
        assert pred[i] == (LABELS.index(ref.label) if ref.label in LABELS else -1)
        assert conf[i] == pytest.approx(ref.confidence)
    assert pred.tolist() == [2, 0, -1]


def _train(table: Path, out: Path, *extra: str) -> int:
    return train_cli.main(
        [
            "train",
            "fusion",
            "--data",
            str(table),
            "--out",
            str(out),
            "--epochs",
            "25",
            "--hidden",
            "0",
            "--bootstrap",
            "50",
            "--quiet",
            *extra,
        ]
    )


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
        "face",
        "voice",
        "text",
        "face+voice",
        "face+text",
        "voice+text",
        "face+voice+text",
    ]
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
    run_cli(
        f"evaluate fusion --data {table} --bundle {bundle} --split test --report "
        f"{ev} --bootstrap 50 --quiet"
    )
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
    argv = f"evaluate fusion --data {other} --bundle {bundle} --quiet".split()
    assert train_cli.main(argv) == 2
    assert "voice-a@1" in (err := capsys.readouterr().err) and "voice-b@1" in err


def test_bad_score_table_fails_with_a_clear_message(tmp_path: Path, capsys) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("label,face_valence,face_confidence\nhappy,0.5,0.9\n")
    assert _train(table, tmp_path / "out") == 2
    assert "label must be one of" in capsys.readouterr().err


def test_render_markdown_tables() -> None:
    m = {
        "n": 10,
        "accuracy": 0.5,
        "accuracy_ci95": [0.3, 0.7],
        "macro_f1": 0.4,
        "macro_f1_ci95": [0.2, 0.6],
        "weighted_f1": 0.45,
        "weighted_f1_ci95": [0.25, 0.65],
        "ece": 0.1,
    }
    text = render_markdown(
        {"name": "x", "model_id": "x@1", "metrics": {"test": m}, "command": "sentistream ..."},
        card=True,
    )
    assert "| test | 10 | 0.500 [0.300, 0.700] |" in text and "## Out of scope" in text

"""``evaluate pipeline``: clip answers from rows (hand-computed), and the real batch job on a
small dev set built from ``../shared/data``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentistream.pipelines.evaluation.devset import CONDITIONS, build_devset
from sentistream.pipelines.evaluation.pipeline import (
    evaluate_pipeline,
    read_labelled_manifest,
    write_report,
)
from sentistream.pipelines.evaluation.report import clip_answer, evaluate_rows, label_of
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.fusion import FIXED_RULE_ID


def _row(start: float, end: float, label: str, conf: float, **modalities) -> dict:
    row = {"start_s": start, "end_s": end, "fused_label": label, "fused_confidence": conf}
    for m in ("face", "voice", "text"):
        valence, c = modalities.get(m, (None, None))
        row |= {f"{m}_present": valence is not None, f"{m}_valence": valence}
        row[f"{m}_confidence"] = c
    return row


def test_clip_answer_is_the_duration_times_confidence_vote() -> None:
    rows = [
        _row(0, 1, "positive", 0.9, face=(0.8, 0.9)),  # weight 0.9
        _row(1, 4, "negative", 0.4, face=(-0.1, 0.5)),  # weight 1.2: wins
    ]
    fused = clip_answer(rows, "fused")
    assert fused.label == 0 and fused.confidence == pytest.approx(0.4)
    face = clip_answer(rows, "face")  # 0.9 for positive vs 3 * 0.5 = 1.5 for neutral
    assert face.label == 1 and face.confidence == pytest.approx(0.5)
    assert clip_answer(rows, "voice").label == -1  # not present: no answer
    assert clip_answer([], "fused").label == -1


def test_label_of_uses_the_fusion_neutral_band() -> None:
    assert [label_of(v) for v in (-0.5, -0.1, 0.0, 0.19, 0.2)] == [0, 1, 1, 1, 2]


def test_evaluate_rows_per_condition_and_verdict() -> None:
    clips = [
        {"video_id": "a", "label": "positive", "group": "g1", "condition": "all"},
        {"video_id": "b", "label": "negative", "group": "g2", "condition": "all"},
        {"video_id": "c", "label": "negative", "group": "g2", "condition": "no_face"},
    ]
    rows = {
        "a": [_row(0, 2, "positive", 0.8, face=(0.9, 0.8), voice=(0.5, 0.6))],
        "b": [_row(0, 2, "neutral", 0.5, face=(-0.6, 0.7), voice=(0.0, 0.6))],
        # c: a dead letter, no rows
    }
    report = evaluate_rows(clips, rows, n_boot=50)
    cond = report["conditions"]["all"]
    assert cond["n_clips"] == 2
    assert cond["fused"]["accuracy"] == 0.5 and cond["face"]["accuracy"] == 1.0
    assert cond["voice"]["accuracy"] == 0.5 and cond["text"]["coverage"] == 0.0
    assert report["verdict"]["fusion_below_best_single"] == {"all": {"fused": 0.5, "face": 1.0}}
    no_face = report["conditions"]["no_face"]
    assert no_face["fused"]["coverage"] == 0.0 and no_face["fused"]["accuracy"] == 0.0


def test_manifest_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"uri": "a.mp4", "video_id": "a", "label": "positive"}\n{"uri": 3}\n')
    with pytest.raises(ValueError, match=r"m.jsonl:2: needs string fields"):
        read_labelled_manifest(path)
    path.write_text('{"uri": "a.mp4", "video_id": "a", "label": "happy"}\n')
    with pytest.raises(ValueError, match=r"m.jsonl:1: label must be one of"):
        read_labelled_manifest(path)


@pytest.mark.slow
@pytest.mark.data
def test_pipeline_on_a_generated_devset(shared_data: Path, tmp_path: Path) -> None:
    manifest = build_devset(shared_data, tmp_path / "dev", per_label=1)
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert len(lines) == 3 * len(CONDITIONS)
    with manifest.open("a") as f:  # one unreadable input: an error line, not a crash
        bad = tmp_path / "dev" / "broken.mp4"
        bad.write_bytes(b"not media at all")
        f.write(
            json.dumps(
                {"uri": str(bad), "video_id": "broken", "label": "neutral", "condition": "bad"}
            )
            + "\n"
        )
    report = evaluate_pipeline(manifest, tmp_path / "out", PipelineConfig(), n_boot=20)
    conds = report["conditions"]
    assert set(conds) == {*CONDITIONS, "bad"}
    assert conds["bad"]["fused"]["coverage"] == 0.0
    assert conds["no_face"]["face"]["coverage"] == 0.0
    assert conds["no_voice"]["voice"]["coverage"] == 0.0
    assert conds["no_words"]["text"]["coverage"] == 0.0
    assert conds["all"]["voice"]["coverage"] == 1.0 and conds["all"]["text"]["coverage"] == 1.0
    assert conds["all"]["fused"]["coverage"] == 1.0
    assert any("broken.mp4" in e and "decode" in e for e in report["errors"])
    assert report["models"]["face_model_id"]
    out = write_report(report, tmp_path / "report.json")
    assert "| all | fused |" in out.with_suffix(".md").read_text()


@pytest.mark.slow
@pytest.mark.data
def test_calibration_fitted_on_clips_is_applied_to_every_confidence(
    shared_data: Path, tmp_path: Path
) -> None:
    import dataclasses

    from sentistream.models.bundle import DEFAULT_BUNDLES
    from sentistream.models.calibration import ConfidenceCalibration
    from sentistream.pipelines.evaluation.calibrate import fit_calibration
    from sentistream.transforms.score import load_calibration

    manifest = build_devset(shared_data, tmp_path / "dev", per_label=2)
    meta = fit_calibration(manifest, tmp_path / "fit", tmp_path / "bundles", PipelineConfig())
    assert set(meta.params["fitted_on"]) == {"face", "voice", "text", "fused"}
    assert all(m["n_rows"] >= 20 for m in meta.metrics.values() if isinstance(m, dict))
    config = PipelineConfig()
    config = dataclasses.replace(
        config, fusion=dataclasses.replace(config.fusion, calibration=meta.path)
    )
    report = evaluate_pipeline(manifest, tmp_path / "out", config, n_boot=20)
    assert report["models"]["fusion_model_id"] == [f"{FIXED_RULE_ID}+calibrated:{meta.model_id}"]
    cal = ConfidenceCalibration.load(meta.path)
    lo, hi = cal.maps["fused"].y.min(), cal.maps["fused"].y.max()
    rows = report["conditions"]["all"]["fused"]
    assert lo - 1e-6 <= rows["mean_confidence"] <= hi + 1e-6
    learned = dataclasses.replace(config.fusion, bundle=DEFAULT_BUNDLES["fusion"])
    with pytest.raises(ValueError, match="fitted on fused confidences"):
        load_calibration(dataclasses.replace(config, fusion=learned))

"""Face branch: module, detection, cropping, bundle loading, valence, aggregation, CK+."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata

from sentistream.models.bundle import BUNDLE_FILE, WEIGHTS_FILE, load_bundle_meta
from sentistream.models.face.detect import FaceBox, crop_faces, detect_faces
from sentistream.models.face.model import (
    FER2013_LABELS,
    FaceExpressionModel,
    _pad_same,
    aggregate_segment,
    expression_valence,
    mini_xception,
    preprocess_crops,
)
from sentistream.models.training.face import evaluate_ckplus
from sentistream.models.training.metrics import expected_calibration_error, macro_f1

BUNDLE = "face-fer2013-minixception"
# Where the astronaut's face is (x, y, w, h), checked by eye on the 512x512 image.
ASTRONAUT_FACE = (178, 63, 89, 112)


@pytest.fixture(scope="module")
def model() -> FaceExpressionModel:
    torch.set_num_threads(1)
    return FaceExpressionModel.load(BUNDLE)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


def _iou(box: FaceBox, ref: tuple[int, int, int, int]) -> float:
    x0, y0 = max(box.x, ref[0]), max(box.y, ref[1])
    x1, y1 = min(box.x + box.w, ref[0] + ref[2]), min(box.y + box.h, ref[1] + ref[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (box.area + ref[2] * ref[3] - inter)


# ------------------------------------------------------------------------ module


@pytest.mark.parametrize("size", [64, 48])
def test_module_shapes(size: int) -> None:
    net = mini_xception(num_classes=7).eval()
    out = net(torch.zeros(3, 1, size, size))
    assert out.logits.shape == (3, 7) and out.probs.shape == (3, 7)
    torch.testing.assert_close(out.probs.sum(dim=1), torch.ones(3))


def test_module_rejects_wrong_input() -> None:
    with pytest.raises(ValueError, match="x must have shape"):
        mini_xception()(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="num_classes"):
        mini_xception(num_classes=1)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"),
    [
        (60, 3, 2, [0, 1, 0, 1]),  # TensorFlow 'same': the odd pad pixel goes right / bottom
        (15, 3, 2, [1, 1, 1, 1]),
        (15, 1, 2, [0, 0, 0, 0]),
    ],
)
def test_pad_same_matches_tensorflow_rule(size: int, kernel: int, stride: int, pads: list[int]):
    x = torch.ones(1, 1, size, size)
    y = _pad_same(x, kernel, stride)
    assert y.shape[-1] == size + pads[0] + pads[1]
    if pads[0] == 0 and pads[1]:
        assert y[0, 0, 0, -1] == 0 and y[0, 0, 0, 0] == 1


def test_bundle_meta_describes_the_weights() -> None:
    meta = load_bundle_meta(BUNDLE, expected_kind="face")
    assert meta.labels == FER2013_LABELS
    assert meta.params["input_size"] == 64 and meta.params["crop_size"] == 48
    assert "FER2013" in meta.training_data["dataset"]
    assert "MIT" in meta.training_data["licence"]
    assert (meta.weights_path.parent / "LICENSE-fer-MIT.txt").is_file()
    assert (meta.weights_path.parent / "card.md").is_file()


def test_preprocess_scales_to_minus_one_one() -> None:
    crops = np.array([np.zeros((48, 48)), np.full((48, 48), 255)], dtype=np.uint8)
    x = preprocess_crops(crops, input_size=64)
    assert x.shape == (2, 1, 64, 64)
    assert x[0].max() == -1.0 and x[1].min() == 1.0


def test_batch_equals_items_one_by_one(model: FaceExpressionModel) -> None:
    crops = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    batch = model.predict(crops)
    single = np.concatenate([model.predict(crops[i : i + 1]) for i in range(5)])
    assert batch.shape == (5, 7) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, single, atol=1e-5)
    np.testing.assert_array_equal(model.predict(crops), batch)  # deterministic
    assert model.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


def _copy_bundle(tmp_path: Path) -> Path:
    """A copy of the shipped bundle's folder; returns its ``bundle.json``."""
    meta = load_bundle_meta(BUNDLE)
    folder = tmp_path / BUNDLE
    shutil.copytree(meta.path, folder)
    return folder / BUNDLE_FILE


def test_strict_load_fails_on_missing_weight(tmp_path: Path) -> None:
    path = _copy_bundle(tmp_path)
    state = torch.load(path.parent / WEIGHTS_FILE, weights_only=True)
    del state["head.bias"]
    torch.save(state, path.parent / WEIGHTS_FILE)
    with pytest.raises(ValueError, match=r"(?s)do not fit.*head\.bias"):
        FaceExpressionModel.load(str(path))


def test_strict_load_fails_on_label_count_mismatch(tmp_path: Path) -> None:
    path = _copy_bundle(tmp_path)
    meta = json.loads(path.read_text())
    meta["labels"] = meta["labels"][:6]
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="6-class"):
        FaceExpressionModel.load(str(path))


def test_load_rejects_other_kind(tmp_path: Path) -> None:
    path = _copy_bundle(tmp_path)
    meta = json.loads(path.read_text())
    meta["kind"] = "voice"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="expected 'face'"):
        FaceExpressionModel.load(str(path))


# -------------------------------------------------------------- detection and crops


def test_detects_the_astronauts_face(astronaut: np.ndarray) -> None:
    boxes = detect_faces(astronaut)
    assert len(boxes) == 1
    assert boxes[0].confidence >= 0.6
    assert _iou(boxes[0], ASTRONAUT_FACE) > 0.6


def test_boxes_map_back_to_full_resolution(astronaut: np.ndarray) -> None:
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    canvas[100:612, 600:1112] = astronaut
    shifted = (ASTRONAUT_FACE[0] + 600, ASTRONAUT_FACE[1] + 100, *ASTRONAUT_FACE[2:])
    for max_side in (320, 640):
        boxes = detect_faces(canvas, max_side=max_side)
        assert len(boxes) == 1 and _iou(boxes[0], shifted) > 0.5, (max_side, boxes)


@pytest.mark.parametrize("kind", ["plain", "noise"])
def test_finds_no_face_where_there_is_none(kind: str) -> None:
    rng = np.random.default_rng(1)
    if kind == "plain":
        img = np.full((360, 640, 3), 128, np.uint8)
    else:
        img = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    assert detect_faces(img) == []


def test_detect_validates_arguments(astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="rgb"):
        detect_faces(astronaut[..., 0])
    with pytest.raises(ValueError, match="min_confidence"):
        detect_faces(astronaut, min_confidence=60)


def test_crops_are_square_grey_and_clipped(astronaut: np.ndarray) -> None:
    boxes = [FaceBox(178, 63, 89, 112, 0.9), FaceBox(0, 0, 30, 40, 0.9)]  # 2nd at corner
    crops = crop_faces(astronaut, boxes)
    assert crops.shape == (2, 48, 48) and crops.dtype == np.uint8
    assert crop_faces(astronaut, []).shape == (0, 48, 48)
    with pytest.raises(ValueError, match="boxes"):
        crop_faces(astronaut, [FaceBox(600, 600, 30, 30, 0.9)])


def test_astronaut_scores_happy_and_positive(
    model: FaceExpressionModel, astronaut: np.ndarray
) -> None:
    probs = model.predict(crop_faces(astronaut, detect_faces(astronaut)))
    assert model.labels[int(probs[0].argmax())] == "happy"
    valence, confidence = expression_valence(probs, model.labels)
    assert valence[0] > 0.5 and confidence[0] > 0.5


# ----------------------------------------------------------- valence and aggregate


def test_expression_valence_rule() -> None:
    eye = np.eye(7, dtype=np.float32)
    valence, confidence = expression_valence(eye, FER2013_LABELS)
    expected = {
        "angry": -1,
        "disgust": -1,
        "fear": -1,
        "happy": 1,
        "sad": -1,
        "surprise": 0.25,
        "neutral": 0,
    }
    np.testing.assert_allclose(valence, [expected[lab] for lab in FER2013_LABELS])
    assert confidence[FER2013_LABELS.index("happy")] == 1.0
    assert confidence[FER2013_LABELS.index("surprise")] == 0.75  # mostly neutral mass
    mixed = np.array([[0.5, 0, 0, 0.5, 0, 0, 0]])
    v, c = expression_valence(mixed, FER2013_LABELS)
    assert v[0] == pytest.approx(0.0) and c[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="probs"):
        expression_valence(np.ones((2, 6)), FER2013_LABELS)


def _probs(label: str) -> np.ndarray:
    p = np.full(7, 0.01)
    p[FER2013_LABELS.index(label)] = 0.94
    return p


def test_aggregate_largest_and_all() -> None:
    big, small = FaceBox(0, 0, 100, 100, 0.9), FaceBox(200, 0, 40, 40, 0.9)
    per_face = [
        (0.0, big, _probs("happy")),
        (0.0, small, _probs("sad")),
        (1.0, big, _probs("happy")),
    ]
    largest = aggregate_segment(per_face, mode="largest")
    assert largest is not None
    assert largest.valence > 0.8 and largest.n_frames_with_face == 2
    assert largest.n_faces_max == 2 and largest.scored == "largest face per frame"
    both = aggregate_segment(per_face, mode="all")
    assert both is not None and both.valence < largest.valence
    assert both.probs.shape == (7,) and both.probs.sum() == pytest.approx(1.0)


def test_aggregate_confidence_reflects_frames_with_a_face() -> None:
    box = FaceBox(0, 0, 100, 100, 0.9)
    one = aggregate_segment([(0.0, box, _probs("happy"))])
    three = aggregate_segment([(t, box, _probs("happy")) for t in (0.0, 1.0, 2.0)])
    sparse = aggregate_segment([(t, box, _probs("happy")) for t in (0.0, 1.0, 2.0)], n_frames=6)
    assert one is not None and three is not None and sparse is not None
    assert one.confidence < three.confidence and sparse.confidence < three.confidence
    assert 0.0 <= one.confidence <= 1.0
    assert aggregate_segment([]) is None
    with pytest.raises(ValueError, match="mode"):
        aggregate_segment([(0.0, box, _probs("happy"))], mode="biggest")  # type: ignore[arg-type]


def test_eval_metric_functions() -> None:
    conf = np.array([0.9, 0.9, 0.6, 0.6])
    assert expected_calibration_error(conf, np.array([1, 1, 1, 0], bool)) == pytest.approx(0.1)
    assert macro_f1(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1]), 2) == 1.0


# ---------------------------------------------------------------------------- CK+


@pytest.mark.data
@pytest.mark.slow
def test_ckplus_valence_signs(model: FaceExpressionModel, shared_data: Path) -> None:
    root = shared_data / "ckplus48"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"CK+ crops not found at {root}")
    result = evaluate_ckplus(root, model)
    assert result["mean_valence"]["happy"] > 0
    assert result["mean_valence"]["sadness"] < 0 and result["mean_valence"]["anger"] < 0
    assert result["acc6"] > 0.6 and result["valence_acc3"] > 0.8  # measured 0.73 / 0.91


def test_aggregate_weighs_frames_by_detection_confidence() -> None:
    sure, unsure = FaceBox(0, 0, 100, 100, 0.95), FaceBox(0, 0, 100, 100, 0.3)
    agg = aggregate_segment([(0.0, sure, _probs("happy")), (1.0, unsure, _probs("sad"))])
    assert agg is not None and agg.valence > 0.2  # the surely detected happy face leads
    even = aggregate_segment([(0.0, sure, _probs("happy")), (1.0, sure, _probs("sad"))])
    assert even is not None and abs(even.valence) < agg.valence


def test_detection_on_two_threads_finds_what_one_thread_finds() -> None:
    from sentistream.models.face.detect import detect_faces_many

    frame = skdata.astronaut()
    frames = [np.ascontiguousarray(np.roll(frame, 7 * i, axis=1)) for i in range(12)]
    serial = detect_faces_many(frames, threads=1)
    assert serial == [detect_faces(f) for f in frames] and all(serial)
    assert detect_faces_many(frames, threads=2) == serial
    with pytest.raises(ValueError, match="threads"):
        detect_faces_many(frames, threads=0)


def test_channels_last_inference_gives_the_plain_layout_s_probabilities(
    model: FaceExpressionModel,
) -> None:
    """The pipeline's face step loads the model channels-last; the same probabilities."""
    fast = FaceExpressionModel.load(BUNDLE, channels_last=True)
    assert model.memory_format == torch.contiguous_format  # training's layout by default
    faces = crop_faces(skdata.astronaut(), detect_faces(skdata.astronaut()), size=64)
    noise = np.random.default_rng(1).integers(0, 256, (6, 64, 64), np.uint8)
    crops = np.concatenate([faces, noise])
    np.testing.assert_allclose(fast.predict(crops), model.predict(crops), atol=1e-5)

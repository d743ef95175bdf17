"""Face tracks through a recording, mouth motion, and who among the faces is talking."""

from __future__ import annotations

import numpy as np

from sentistream.models.face.detect import FaceBox
from sentistream.models.face.tracks import (
    ATTR_ACTIVE,
    ATTR_NO_SPEECH,
    ATTR_NOT_TIED,
    ATTR_ONLY,
    FaceTracker,
    attribute,
    iou,
    mouth_motion,
    mouth_patch,
)


def _box(x: int, y: int = 50, size: int = 100) -> FaceBox:
    return FaceBox(x, y, size, size, 0.9)


def test_iou():
    assert iou(_box(0), _box(0)) == 1.0
    assert iou(_box(0), _box(200)) == 0.0
    assert iou(_box(0), _box(50)) == 5000 / 15000


def test_tracks_keep_their_ids_as_faces_move_leave_and_come_back():
    tracker = FaceTracker()
    assert tracker.assign([_box(10), _box(300)]) == ["face_0", "face_1"]
    # the detector lists them the other way round, both moved a little
    assert tracker.assign([_box(305), _box(14)]) == ["face_1", "face_0"]
    assert tracker.assign([_box(20)]) == ["face_0"]  # face_1 is gone for a frame
    assert tracker.assign([]) == []
    assert tracker.assign([_box(300), _box(600)]) == ["face_1", "face_2"]  # back; a new one
    # two boxes on one old track: the better overlap keeps it, the other is new
    assert tracker.assign([_box(22), _box(60)]) == ["face_0", "face_3"]


def test_mouth_motion_sees_a_moving_mouth_and_not_a_still_one():
    rng = np.random.default_rng(0)
    still = rng.integers(0, 255, (200, 200, 3), np.uint8)
    box = FaceBox(20, 20, 160, 160, 0.9)
    moving = []
    for k in range(4):
        frame = still.copy()
        frame[130:170, 60:140] = 40 if k % 2 else 220  # the mouth region opens and shuts
        moving.append(mouth_patch(frame, box))
    assert mouth_patch(still, box).shape == (16, 32)
    assert mouth_motion([mouth_patch(still, box)] * 3) == 0.0
    assert mouth_motion(moving) > 0.5
    assert mouth_motion(moving[:1]) is None


def test_attribution_needs_clear_evidence():
    assert attribute({"face_0": 0.5, "face_1": 0.01}, speech=True) == (ATTR_ACTIVE, "face_0")
    assert attribute({"face_0": 0.3, "face_1": 0.25}, speech=True) == (ATTR_NOT_TIED, None)
    assert attribute({"face_0": 0.05, "face_1": 0.0}, speech=True) == (ATTR_NOT_TIED, None)
    assert attribute({"face_0": 0.5, "face_1": None}, speech=True) == (ATTR_NOT_TIED, None)
    assert attribute({"face_0": None}, speech=True) == (ATTR_ONLY, "face_0")
    assert attribute({"face_0": 0.5, "face_1": 0.0}, speech=False) == (ATTR_NO_SPEECH, None)

"""Faces followed through a recording, and which of them is talking (pure numpy / cv2).

* ``FaceTracker``: gives each detected face a ``face_id`` (``face_0``, ``face_1``, ... in
  order of first appearance) that stays the same through the recording. A detection joins
  the track whose last box it overlaps most (IoU at least ``MIN_IOU``; greedy, highest
  overlap first, one detection per track and frame), else it starts a new track. A track
  is never retired, so a face that leaves and comes back to the same place keeps its id
  (people on a video call stay in their tile); one that comes back elsewhere gets a new
  id.
* ``mouth_patch`` / ``mouth_motion``: the lower middle of a face box (where the mouth
  is), grey, 32x16, normalised; the motion of a track in a segment is the mean absolute
  change of its patch between consecutive sampled frames.
* ``attribute``: in a speech segment with several faces, the face whose mouth moves
  clearly most (at least ``MOTION_RATIO`` times the next one, and at least
  ``MIN_MOTION``) is the active speaker. Without that evidence the faces are not tied to
  the speaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from sentistream.models.face.detect import FaceBox

MIN_IOU = 0.3
MOTION_RATIO = 1.5
MIN_MOTION = 0.15

ATTR_ACTIVE = "active_speaker"  # mouth motion says this face is talking
ATTR_ONLY = "only_face"  # one face on screen: the likely speaker, not verified
ATTR_NOT_TIED = "not_tied"  # several faces, no clear talker: not attributed
ATTR_NO_SPEECH = "no_speech"  # a stretch without speech: nobody is talking
ATTR_LARGEST = "largest_face"  # --face-aggregate largest: the largest face, by choice
ATTR_ALL = "all_faces"  # --face-aggregate all: the mean of the scored faces


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(0, w) * max(0, h)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


@dataclass
class FaceTracker:
    """The face tracks of one recording (see the module docstring)."""

    last: list[FaceBox] = field(default_factory=list)  # track i's latest box

    def assign(self, boxes: Sequence[FaceBox]) -> list[str]:
        """The ``face_id`` of each box of one frame (frames in time order)."""
        pairs = sorted(
            (
                (iou(box, prev), i, k)
                for i, box in enumerate(boxes)
                for k, prev in enumerate(self.last)
            ),
            reverse=True,
        )
        track: dict[int, int] = {}
        taken: set[int] = set()
        for overlap, i, k in pairs:
            if overlap < MIN_IOU:
                break
            if i not in track and k not in taken:
                track[i] = k
                taken.add(k)
        for i, box in enumerate(boxes):
            if i not in track:
                track[i] = len(self.last)
                self.last.append(box)
            self.last[track[i]] = box
        return [f"face_{track[i]}" for i in range(len(boxes))]


def mouth_patch(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """The mouth region of a face (the box's lower third, middle 60 %), grey, resized to
    32x16 and normalised to zero mean and unit variance."""
    x0, x1 = box.x + round(0.2 * box.w), box.x + round(0.8 * box.w)
    y0, y1 = box.y + round(0.62 * box.h), box.y + round(0.95 * box.h)
    region = rgb[max(0, y0) : max(y0 + 1, y1), max(0, x0) : max(x0 + 1, x1)]
    grey = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2GRAY).astype(np.float32)
    patch = cv2.resize(grey, (32, 16), interpolation=cv2.INTER_AREA)
    return (patch - patch.mean()) / max(float(patch.std()), 1.0)


def mouth_motion(patches: Sequence[np.ndarray]) -> float | None:
    """Mean absolute change between consecutive mouth patches; None under two."""
    if len(patches) < 2:
        return None
    return float(
        np.mean([np.abs(b - a).mean() for a, b in zip(patches, patches[1:], strict=False)])
    )


def attribute(motions: dict[str, float | None], speech: bool) -> tuple[str, str | None]:
    """How the segment's faces (``face_id`` -> mouth motion) relate to its speaker:
    (attribution, the speaker's ``face_id`` or None)."""
    if not speech:
        return ATTR_NO_SPEECH, None
    if len(motions) == 1:
        return ATTR_ONLY, next(iter(motions))
    known = sorted(((m, fid) for fid, m in motions.items() if m is not None), reverse=True)
    if len(known) >= 2 and known[0][0] >= MIN_MOTION and known[0][0] >= MOTION_RATIO * known[1][0]:
        return ATTR_ACTIVE, known[0][1]
    return ATTR_NOT_TIED, None

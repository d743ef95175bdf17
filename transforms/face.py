"""Face branch: detect faces in the segment's frames, classify expressions, aggregate.

``RunInference(FaceHandler(config, drop))``; reads ``SegmentRecord.frames``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sentistream.transforms.config import FaceConfig
from sentistream.transforms.inference import SegmentModelHandler
from sentistream.transforms.records import (
    REASON_NO_FACE,
    REASON_NO_VIDEO,
    Frame,
    ModalityResult,
    SegmentRecord,
)

REASON_NO_FRAMES = "no_frames_in_segment"


def face_input(record: SegmentRecord) -> tuple[Frame, ...] | ModalityResult:
    """The segment's sampled frames, or why the face branch has nothing to look at."""
    if not record.has_video:
        return ModalityResult.absent("face", REASON_NO_VIDEO)
    if not record.frames:
        return ModalityResult.absent("face", REASON_NO_FRAMES)
    return record.frames


class FaceHandler(SegmentModelHandler[Any, tuple[Frame, ...]]):
    modality = "face"

    def __init__(self, config: FaceConfig, drop: Iterable[str] = ()) -> None:
        super().__init__(config.runtime, drop)
        self._config = config

    def load(self) -> Any:
        from sentistream.models.face.model import FaceExpressionModel

        return FaceExpressionModel.load(self._config.bundle, device=self._config.runtime.device)

    def prepare(self, record: SegmentRecord) -> tuple[Frame, ...] | ModalityResult:
        return face_input(record)

    def predict(self, model: Any, inputs: Sequence[tuple[Frame, ...]]) -> list[ModalityResult]:
        from sentistream.models.face.detect import crop_faces, detect_faces
        from sentistream.models.face.model import aggregate_segment

        cfg = self._config
        # Detect in every frame of every segment, then classify all crops in one call.
        # In "largest" mode only the largest face per frame is classified at all.
        found: list[list[tuple[float, Any]]] = []
        most_faces: list[int] = []
        crops: list[np.ndarray] = []
        for frames in inputs:
            per_segment: list[tuple[float, Any]] = []
            most = 0
            for frame in frames:
                boxes = detect_faces(
                    frame.rgb,
                    max_side=cfg.detect_max_side,
                    min_confidence=cfg.min_detect_confidence,
                    min_face_px=cfg.min_face_px,
                )
                most = max(most, len(boxes))
                if cfg.aggregate == "largest" and boxes:
                    boxes = [max(boxes, key=lambda b: b.w * b.h)]
                if boxes:
                    crops.append(crop_faces(frame.rgb, boxes))
                    per_segment.extend((frame.t, box) for box in boxes)
            found.append(per_segment)
            most_faces.append(most)
        probs = model.predict(np.concatenate(crops)) if crops else np.zeros((0, 7), np.float32)
        results: list[ModalityResult] = []
        offset = 0
        for frames, per_segment, most in zip(inputs, found, most_faces, strict=True):
            if not per_segment:
                results.append(ModalityResult.absent("face", REASON_NO_FACE, model.model_id))
                continue
            seg_probs = probs[offset : offset + len(per_segment)]
            offset += len(per_segment)
            agg = aggregate_segment(
                [(t, box, p) for (t, box), p in zip(per_segment, seg_probs, strict=True)],
                labels=model.labels,
                n_frames=len(frames),
                mode=cfg.aggregate,
            )
            assert agg is not None  # per_segment is not empty
            results.append(
                ModalityResult(
                    modality="face",
                    present=True,
                    valence=float(agg.valence),
                    confidence=float(agg.confidence),
                    model_id=model.model_id,
                    probs=dict(zip(model.labels, map(float, agg.probs), strict=True)),
                    detail={
                        "faces_scored": cfg.aggregate,
                        "frames": len(frames),
                        "frames_with_face": int(agg.n_frames_with_face),
                        "max_faces_in_frame": most,
                    },
                )
            )
        return results

"""Face branch: detect faces in the segment's frames, classify expressions, aggregate.

``RunInference(FaceHandler(config, drop))``; reads ``SegmentRecord.frames``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from sentistream.models.cache import shared_model
from sentistream.models.face.tracks import (
    ATTR_ALL,
    ATTR_LARGEST,
    ATTR_NOT_TIED,
    FaceTracker,
    attribute,
    mouth_motion,
    mouth_patch,
)
from sentistream.transforms.config import FaceConfig
from sentistream.transforms.inference import SegmentModelHandler
from sentistream.transforms.media.segmenting import KIND_CAPTIONS, KIND_VAD
from sentistream.transforms.records import (
    REASON_FACE_NOT_TIED,
    REASON_NO_FACE,
    REASON_NO_VIDEO,
    Element,
    Frame,
    ModalityResult,
    RecordingEnd,
    SegmentRecord,
)

REASON_NO_FRAMES = "no_frames_in_segment"
#: Recordings whose face tracks one handler keeps at once (a recording's are dropped at
#: its end; this bounds what recordings that never end, e.g. failed ones, can hold).
MAX_TRACKED = 64


class FaceInput(NamedTuple):
    """What the face step reads of a segment: its recording, whether it is speech, and
    its sampled frames."""

    video_id: str
    speech: bool
    frames: tuple[Frame, ...]


def face_input(record: SegmentRecord) -> FaceInput | ModalityResult:
    """The segment's sampled frames, or why the face branch has nothing to look at."""
    if not record.has_video:
        return ModalityResult.absent("face", REASON_NO_VIDEO)
    if not record.frames:
        return ModalityResult.absent("face", REASON_NO_FRAMES)
    speech = record.segmenter in (KIND_VAD, KIND_CAPTIONS)
    return FaceInput(record.ref.resolved_id, speech, record.frames)


class FaceHandler(SegmentModelHandler[Any, FaceInput]):
    """Faces per track: each detected face gets its recording's ``face_id``
    (``models/face/tracks.py``); the ``max_faces`` largest tracks of a segment are
    scored, and the row's face is the one ``aggregate`` says: ``speaker`` (the default)
    the active speaker's face (or the only face), ``largest`` the largest, ``all`` the
    mean of the scored faces. Several faces with none clearly talking give no face score
    (reason ``face_not_tied_to_speaker``); every scored face is in the detail."""

    modality = "face"

    def __init__(self, config: FaceConfig, drop: Iterable[str] = ()) -> None:
        super().__init__(config.runtime, drop)
        self._config = config
        self._tracks: OrderedDict[str, FaceTracker] = OrderedDict()

    def load(self) -> Any:
        from sentistream.models.face.model import FaceExpressionModel

        bundle, device = self._config.bundle, self._config.runtime.device
        return shared_model(
            ("face", bundle, device),
            lambda: FaceExpressionModel.load(bundle, device=device, channels_last=True),
        )

    def prepare(self, record: SegmentRecord) -> FaceInput | ModalityResult:
        return face_input(record)

    def run_batch(self, batch: Sequence[Element], model: Any) -> list[Element]:
        out = super().run_batch(batch, model)
        for el in batch:  # a recording's tracks end with it
            if isinstance(el, RecordingEnd):
                self._tracks.pop(el.ref.resolved_id, None)
        return out

    def _tracker(self, video_id: str) -> FaceTracker:
        tracker = self._tracks.pop(video_id, None) or FaceTracker()
        self._tracks[video_id] = tracker
        while len(self._tracks) > MAX_TRACKED:
            self._tracks.popitem(last=False)
        return tracker

    def _tracked(self, item: FaceInput) -> tuple[dict[str, list], int]:
        """face_id -> [(t, box, mouth patch, frame)] of the segment, and the most faces
        seen in one frame."""
        from sentistream.models.face.detect import detect_faces_many

        cfg = self._config
        tracker = self._tracker(item.video_id)
        tracks: dict[str, list] = {}
        most = 0
        found = detect_faces_many(
            [frame.rgb for frame in item.frames],
            threads=cfg.detect_threads,
            max_side=cfg.detect_max_side,
            min_confidence=cfg.min_detect_confidence,
            min_face_px=cfg.min_face_px,
        )
        for frame, boxes in zip(item.frames, found, strict=True):
            most = max(most, len(boxes))
            for fid, box in zip(tracker.assign(boxes), boxes, strict=True):
                tracks.setdefault(fid, []).append(
                    (frame.t, box, mouth_patch(frame.rgb, box), frame)
                )
        return tracks, most

    def predict(self, model: Any, inputs: Sequence[FaceInput]) -> list[ModalityResult]:
        from sentistream.models.face.detect import crop_faces

        cfg = self._config
        # Track the faces of every segment and decide which one is the speaker's (over
        # all of them), keep its largest tracks (and the speaker's), then classify all
        # their crops in one call. A failure leaves the trackers as they were, so the
        # one-by-one retry assigns the same ids.
        saved = {vid: list(t.last) for vid, t in self._tracks.items()}
        try:
            segments = []
            crops: list[np.ndarray] = []
            for item in inputs:
                tracks, most = self._tracked(item)
                by_size = sorted(
                    tracks, key=lambda f: -np.mean([b.area for _, b, _, _ in tracks[f]])
                )
                motions = {f: mouth_motion([d[2] for d in dets]) for f, dets in tracks.items()}
                attribution, face_id = self._choose(item, by_size, motions)
                kept = by_size[: cfg.max_faces] if cfg.max_faces else list(by_size)
                if face_id is not None and face_id not in kept:
                    kept.append(face_id)
                for fid in kept:
                    for _, box, _, frame in tracks[fid]:
                        crops.append(crop_faces(frame.rgb, [box]))
                chosen = (attribution, face_id)
                segments.append((item, {f: tracks[f] for f in kept}, motions, chosen, most))
            empty = np.zeros((0, 7), np.float32)
            probs = model.predict(np.concatenate(crops)) if crops else empty
        except Exception:
            for vid, last in saved.items():
                if vid in self._tracks:
                    self._tracks[vid].last = last
            raise
        results: list[ModalityResult] = []
        offset = 0
        for item, kept, motions, chosen, most in segments:
            if not kept:
                results.append(ModalityResult.absent("face", REASON_NO_FACE, model.model_id))
                continue
            per_track = {}
            for fid, dets in kept.items():
                seg_probs = probs[offset : offset + len(dets)]
                offset += len(dets)
                per_track[fid] = [
                    (t, b, p) for (t, b, _, _), p in zip(dets, seg_probs, strict=True)
                ]
            results.append(self._result(model, item, per_track, motions, chosen, most))
        return results

    def _choose(
        self, item: FaceInput, by_size: list[str], motions: dict[str, float | None]
    ) -> tuple[str, str | None]:
        """(attribution, the row's face_id) from every face of the segment, largest
        first (``aggregate`` ``all``: no single face)."""
        if not by_size:
            return ATTR_NOT_TIED, None
        if self._config.aggregate == "largest":
            return ATTR_LARGEST, by_size[0]
        if self._config.aggregate == "all":
            return ATTR_ALL, None
        attribution, face_id = attribute({f: motions[f] for f in by_size}, item.speech)
        if face_id is None and attribution != ATTR_NOT_TIED:
            face_id = by_size[0]  # no speech: the largest face, for what it shows
        return attribution, face_id

    def _result(
        self,
        model: Any,
        item: FaceInput,
        per_track: dict[str, list],
        motions: dict[str, float | None],
        chosen: tuple[str, str | None],
        most: int,
    ) -> ModalityResult:
        from sentistream.models.face.model import aggregate_segment

        cfg = self._config
        n = len(item.frames)
        aggs = {
            f: aggregate_segment(d, labels=model.labels, n_frames=n) for f, d in per_track.items()
        }
        attribution, face_id = chosen
        faces = [
            {
                "face_id": f,
                "valence": round(float(a.valence), 4),
                "confidence": round(float(a.confidence), 4),
                "expression": model.labels[int(np.argmax(a.probs))],
                "frames": int(a.n_frames_with_face),
                "mouth_motion": None if motions[f] is None else round(motions[f], 4),
                "box": _mean_box(per_track[f]),
            }
            for f, a in aggs.items()
            if a is not None
        ]
        detail = {
            "faces_scored": cfg.aggregate,
            "frames": n,
            "max_faces_in_frame": most,
            "attribution": attribution,
            "face_id": face_id,
            "faces": faces,
        }
        if cfg.aggregate == "all":
            every = [d for dets in per_track.values() for d in dets]
            agg = aggregate_segment(every, labels=model.labels, n_frames=n, mode="all")
        elif face_id is None:
            return ModalityResult(
                modality="face",
                present=False,
                reason=REASON_FACE_NOT_TIED,
                model_id=model.model_id,
                detail=detail,
            )
        else:
            agg = aggs[face_id]
        assert agg is not None
        detail["frames_with_face"] = int(agg.n_frames_with_face)
        return ModalityResult(
            modality="face",
            present=True,
            valence=float(agg.valence),
            confidence=float(agg.confidence),
            model_id=model.model_id,
            probs=dict(zip(model.labels, map(float, agg.probs), strict=True)),
            detail=detail,
        )


def _mean_box(dets: list) -> list[int]:
    """[x, y, w, h]: where a face was in the segment, on average (full-frame pixels)."""
    return [round(float(np.mean([getattr(b, k) for _, b, _ in dets]))) for k in "xywh"]

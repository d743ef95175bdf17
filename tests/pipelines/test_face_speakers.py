"""Two people on screen (a video call's two tiles) taking turns on one mono track: each
face has a stable face_id, and each speaker's rows score the face that is talking."""

from __future__ import annotations

import json

import duckdb
import pytest

from sentistream.pipelines import batch

pytestmark = pytest.mark.slow
TILE = 300  # the tiles of the two_person_calls fixture (tests/conftest.py)


def _rows(out) -> list[tuple]:
    return (
        duckdb.connect()
        .execute(
            "SELECT speaker, start_s, end_s, face_present, face_id, face_reason, detail_json "
            f"FROM read_parquet('{out}/scores/**/*.parquet') WHERE segmenter = 'vad' "
            "ORDER BY start_s"
        )
        .fetchall()
    )


def _side(cues, start: float, end: float) -> int:
    overlaps = [min(end, c.end_s) - max(start, c.start_s) for c in cues]
    return max(range(len(cues)), key=overlaps.__getitem__) % 2  # 0: the left tile talks


def test_each_speaker_gets_the_face_that_talks(two_person_calls, tmp_path):
    (path, cues), _ = two_person_calls
    out = tmp_path / "out"
    batch.run(["--input", str(path), "--output", str(out), "--no-asr", "--threads", "1"])
    rows = _rows(out)
    assert len(rows) >= len(cues)
    face_of_side: dict[int, str] = {}
    for speaker, start, end, present, face_id, reason, detail_json in rows:
        side = _side(cues, start, end)
        assert speaker == f"spk_{side}"
        face = json.loads(detail_json)["face"]
        assert face["max_faces_in_frame"] == 2 and len(face["faces"]) == 2
        assert present and reason is None, (start, face)
        assert face["attribution"] == "active_speaker" and face["face_id"] == face_id
        scored = next(f for f in face["faces"] if f["face_id"] == face_id)
        x, _, w, _ = scored["box"]
        assert (x + w / 2 < TILE) == (side == 0)  # the talking tile's face
        assert face_of_side.setdefault(side, face_id) == face_id  # stable through the call
    assert len(set(face_of_side.values())) == 2


def test_faces_not_tied_to_the_speaker_say_so(two_person_calls, tmp_path):
    _, (path, _) = two_person_calls
    out = tmp_path / "out"
    batch.run(["--input", str(path), "--output", str(out), "--no-asr", "--threads", "1"])
    rows = _rows(out)
    assert rows
    for _, _, _, present, face_id, reason, detail_json in rows:
        face = json.loads(detail_json)["face"]
        assert not present and face_id is None and reason == "face_not_tied_to_speaker"
        assert face["attribution"] == "not_tied" and len(face["faces"]) == 2
        assert all(f["valence"] is not None for f in face["faces"])  # scored, not attributed


def test_the_largest_face_on_request(two_person_calls, tmp_path):
    _, (path, _) = two_person_calls
    out = tmp_path / "out"
    flags = ["--no-asr", "--threads", "1", "--face-aggregate", "largest", "--face-tracks", "1"]
    batch.run(["--input", str(path), "--output", str(out), *flags])
    for _, _, _, present, face_id, _, detail_json in _rows(out):
        face = json.loads(detail_json)["face"]
        assert present and face["attribution"] == "largest_face" and len(face["faces"]) == 1
        assert face_id == face["faces"][0]["face_id"]

"""End to end: generated media of every kind through the real batch job, Parquet read back.

The invariant: every input ends as scores or as a dead letter with its reason.
"""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import duckdb
import numpy as np
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from sentistream.pipelines import batch
from sentistream.pipelines.demo.synth import (
    no_face_frames,
    talking_head_frames,
    trim_silence,
    tts,
    write_media,
    write_vtt,
)
from sentistream.transforms.config import DecodeConfig, PipelineConfig, PolicyConfig
from sentistream.transforms.media.captions import Cue
from sentistream.transforms.policy import parse_rules
from sentistream.transforms.records import SegmentRecord, VideoRef
from sentistream.transforms.schema import ScoreRow
from sentistream.transforms.score import ScoreVideos

pytestmark = pytest.mark.slow
FPS = 10.0
HAPPY = "I love this, it is wonderful and I am so happy!"


def _speech(text: str, seconds: float, at: float = 0.5) -> np.ndarray:
    import torch
    import torchaudio

    from sentistream.models.audio import SAMPLE_RATE

    audio, rate = tts(text)
    audio = trim_silence(audio)
    audio = torchaudio.functional.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()
    track = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    a = int(at * SAMPLE_RATE)
    track[a : a + audio.size] = audio[: track.size - a]
    return track


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    from skimage import data as skdata

    d = tmp_path_factory.mktemp("media")
    face = skdata.astronaut()
    seconds = 4.0
    n = int(seconds * FPS)
    speech = _speech(HAPPY, seconds)
    files = {
        "good": write_media(
            d / "good.mp4", frames=talking_head_frames(face, n, fps=FPS), fps=FPS, audio=speech
        ),
        "noface": write_media(
            d / "noface.webm", frames=no_face_frames(n, fps=FPS), fps=FPS, audio=speech
        ),
        "noaudio": write_media(
            d / "noaudio.mkv", frames=talking_head_frames(face, n, fps=FPS), fps=FPS
        ),
        "audio_only": write_media(d / "speech.wav", frames=None, audio=speech),
        "silent": write_media(
            d / "silent.mov",
            frames=talking_head_frames(face, n, fps=FPS),
            fps=FPS,
            audio=np.zeros_like(speech),
        ),
    }
    write_vtt(d / "good.vtt", [Cue(0.4, 3.5, HAPPY)])
    files["corrupt"] = d / "corrupt.mp4"
    files["corrupt"].write_bytes(files["good"].read_bytes()[:2000])
    files["empty"] = d / "empty.flv"
    files["empty"].write_bytes(b"")
    files["text"] = d / "notes.mp4"
    files["text"].write_text("this is not a video\n" * 50)
    return files


@pytest.fixture(scope="module")
def run_output(media, tmp_path_factory) -> tuple[Path, duckdb.DuckDBPyConnection]:
    out = tmp_path_factory.mktemp("out")
    argv = ["--output", str(out), "--fps", "2", "--threads", "1"]
    result = batch.run(
        argv + [x for p in media.values() for x in ("--input", str(p))],
        test_pipeline=test_pipeline.TestPipeline(runner="FnApiRunner"),
    )
    assert result.counters["sentistream.decode/videos"] == len(media)
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW scores AS SELECT * FROM read_parquet('{out}/scores/**/*.parquet', "
        "hive_partitioning=true)"
    )
    con.execute(
        f"CREATE VIEW dead AS SELECT * FROM read_parquet('{out}/dead_letters/**/*.parquet', "
        "hive_partitioning=true)"
    )
    return out, con


def _rows(con, uri: Path) -> list[dict]:
    cur = con.execute("SELECT * FROM scores WHERE source_uri = ? ORDER BY start_s", [str(uri)])
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_every_input_ends_as_scores_or_dead_letter(media, run_output):
    _, con = run_output
    scored = {r[0] for r in con.execute("SELECT DISTINCT source_uri FROM scores").fetchall()}
    dead = {r[0] for r in con.execute("SELECT DISTINCT source_uri FROM dead").fetchall()}
    assert scored | dead == {str(p) for p in media.values()}
    assert dead == {str(media[k]) for k in ("corrupt", "empty", "text")}
    stages = con.execute("SELECT DISTINCT stage FROM dead").fetchall()
    assert stages == [("decode",)]
    for (error,) in con.execute("SELECT error FROM dead").fetchall():
        assert error  # a reason, not an empty string


def test_talking_face_with_captions_scores_all_three_modalities(media, run_output):
    _, con = run_output
    rows = _rows(con, media["good"])
    assert len(rows) == 1
    row = rows[0]
    assert row["segmenter"] == "captions" and row["transcript"] == HAPPY
    assert row["transcript_source"] == "captions"
    assert row["face_present"] and row["voice_present"] and row["text_present"]
    assert row["modalities_present"] == "face,voice,text"
    assert row["face_valence"] > 0 and row["text_valence"] > 0.3
    assert row["fused_label"] == "positive" and 0 < row["fused_confidence"] <= 1
    assert row["face_model_id"] and row["voice_model_id"] and row["text_model_id"]
    assert row["date"] is not None  # hive partition column


def test_missing_modalities_say_why(media, run_output):
    _, con = run_output
    noface = _rows(con, media["noface"])
    assert noface and all(r["face_reason"] == "no_face" for r in noface)
    assert any(r["voice_present"] for r in noface)
    noaudio = _rows(con, media["noaudio"])
    assert noaudio and all(r["voice_reason"] == "no_audio_stream" for r in noaudio)
    assert all(r["segmenter"] == "window" for r in noaudio)
    assert any(r["face_present"] for r in noaudio)
    audio_only = _rows(con, media["audio_only"])
    assert audio_only and all(r["face_reason"] == "no_video_stream" for r in audio_only)
    assert any(r["voice_present"] for r in audio_only)
    silent = _rows(con, media["silent"])
    assert silent and all(r["voice_reason"] == "silence" for r in silent)
    # Without captions the words come from speech recognition; no audio, no words.
    for rows in (noface, audio_only):
        assert any(r["text_present"] and r["transcript_source"] == "asr" for r in rows)
        assert any("happy" in (r["transcript"] or "").lower() for r in rows)
    assert all(r["text_reason"] == "no_transcript" for r in noaudio)
    assert all(r["text_reason"] == "no_speech" for r in silent)


def test_segment_ids_are_deterministic(media, tmp_path):
    cfg = PipelineConfig(decode=DecodeConfig(fps=1.0), policy=PolicyConfig(rules=parse_rules("*=")))
    refs = [VideoRef(uri=str(media["good"])), VideoRef(uri=str(media["audio_only"]))]

    def ids():
        with test_pipeline.TestPipeline(runner="FnApiRunner") as p:
            rows = p | beam.Create(refs) | ScoreVideos(cfg, clock=lambda: 0.0)
            keys = (
                rows
                | "Segments" >> beam.Filter(lambda r: isinstance(r, ScoreRow))
                | "Key" >> beam.Map(lambda r: (r.source_uri, r.segment_id, r.modalities_enabled))
            )
            assert_that(keys, equal_to(expected), label="ids")

    from sentistream.transforms.decode import iter_segments

    expected = [
        (r.uri, rec.segment_id, "")
        for r in refs
        for rec in iter_segments(r, cfg.decode, cfg.segment, cfg.policy, diarize_cfg=cfg.diarize)
        if isinstance(rec, SegmentRecord)
    ]
    assert expected
    ids()
    ids()

"""``sentistream evaluate diarization`` on real speakers of the shared data, and a real
two-speaker conversation through the batch job."""

from __future__ import annotations

import json
import random

import duckdb
import pytest

from sentistream.models.audio import read_audio
from sentistream.models.speaker.der import der
from sentistream.pipelines import batch
from sentistream.pipelines.cli import main
from sentistream.pipelines.demo.synth import write_media
from sentistream.pipelines.evaluation.diarization import (
    POOLS,
    corpus_speakers,
    mix_conversation,
    voiced,
)

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_the_tune_and_eval_speakers_do_not_overlap():
    tune, evaluated = POOLS["tune"]["ravdess"], POOLS["eval"]["ravdess"]
    assert tune and evaluated and not set(tune) & set(evaluated)
    assert set(POOLS["eval"]) >= {"emodb", "tess"} and set(POOLS["tune"]) == {"ravdess"}


def test_a_real_two_speaker_conversation_is_diarized_by_the_batch_job(shared_data, tmp_path):
    files = corpus_speakers(shared_data, "emodb")
    rng = random.Random(3)
    speakers = ("03", "08")  # a man and a woman of Emo-DB

    def utterance(spk: str) -> object:
        return voiced(read_audio(rng.choice(files[spk])))

    mix, reference = mix_conversation(utterance, speakers, rng, turns=12)
    path = write_media(tmp_path / "call.wav", frames=None, audio=mix)
    out = tmp_path / "out"
    batch.run(["--input", str(path), "--output", str(out), "--no-asr", "--threads", "1"])
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT start_s, end_s, speaker FROM read_parquet('{out}/scores/**/*.parquet') "
            "WHERE segmenter = 'vad' ORDER BY start_s"
        )
        .fetchall()
    )
    assert {r[2] for r in rows} == {"spk_0", "spk_1"}
    assert der(reference, rows)["der"] < 0.25  # a working diarization, not a tuned figure


def test_the_evaluate_command_writes_a_report(shared_data, tmp_path, capsys):
    report = tmp_path / "dia.json"
    args = ["evaluate", "diarization", "--data", str(shared_data), "--count", "1"]
    assert main([*args, "--work", str(tmp_path / "work"), "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert set(data["results"]) >= {"tune/2spk", "tune/3spk", "eval/2spk", "eval/3spk"}
    for result in data["results"].values():
        assert 0.0 <= result["estimated"]["der"] <= 1.5
    assert data["cost"]["first_pass_s_per_audio_minute"] > 0
    assert "| tune/2spk |" in capsys.readouterr().out
    assert report.with_suffix(".md").is_file()

"""Speech recognition: packing, word assignment, guards, and the real model on speech."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from sentistream.models.asr.align import AsrWord, Span, assign_words
from sentistream.models.asr.transcriber import (
    AsrOptions,
    Transcriber,
    compression_ratio,
    finish,
    pack,
    trim_bounds,
)
from sentistream.models.audio import SAMPLE_RATE
from sentistream.models.training.asr_eval import edit_distance, normalise, number_words, wer


def _const(seconds: float, level: float) -> np.ndarray:
    return np.full(int(round(seconds * SAMPLE_RATE)), level, np.float32)


class FakeWhisper:
    """Stands in for ``faster_whisper.WhisperModel``: one word every 0.4 s of each loud
    run of the input, named after the run's level (``a20`` for 0.20), one Whisper segment
    per run. Counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio: np.ndarray, **kwargs: object):
        self.calls += 1
        assert kwargs["word_timestamps"] and not kwargs["vad_filter"]
        loud = np.abs(audio) > 0.005
        edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(int), [0]])))
        segments = []
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            name = f" a{round(float(np.abs(audio[a:b]).max()) * 100)}"
            times = np.arange(a, b, int(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
            words = [
                SimpleNamespace(
                    word=name, start=t, end=min(t + 0.3, b / SAMPLE_RATE), probability=0.9
                )
                for t in times
            ]
            segments.append(SimpleNamespace(words=words))
        return iter(segments), SimpleNamespace(language="en")


# ---------------------------------------------------------------------- packing


def test_pack_keeps_order_gaps_and_limit():
    audios = [_const(2.0, 0.1), _const(3.0, 0.2), _const(2.5, 0.3), _const(4.0, 0.4)]
    windows, alone = pack(audios, pack_s=10.0, gap_s=1.0)
    assert alone == []
    assert [[s.item for s in w.spans] for w in windows] == [[0, 1, 2], [3]]
    first = windows[0]
    assert [s.offset_s for s in first.spans] == pytest.approx([0.0, 3.0, 7.0])
    assert first.audio.size == int(9.5 * SAMPLE_RATE)  # no gap after the last segment
    assert np.all(first.audio[int(2.0 * SAMPLE_RATE) : int(3.0 * SAMPLE_RATE)] == 0)
    assert all(w.audio.size <= 10.0 * SAMPLE_RATE for w in windows)


def test_pack_sends_long_segments_alone_and_trims_edges():
    quiet, loud = _const(1.0, 0.0), _const(2.0, 0.5)
    padded = np.concatenate([quiet, loud, quiet])
    windows, alone = pack(
        [padded, _const(12.0, 0.2)], pack_s=10.0, gap_s=1.0, trim_level=0.01, pad_s=0.25
    )
    assert alone == [1]
    (span,) = windows[0].spans
    assert span.trim_s == pytest.approx(0.75)
    assert span.length_s == pytest.approx(2.5)
    assert trim_bounds(padded, level=0.01, pad_s=0.0) == (SAMPLE_RATE, 3 * SAMPLE_RATE)


def test_pack_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pack_s"):
        pack([_const(1, 0.1)], pack_s=0, gap_s=1)
    with pytest.raises(ValueError, match="1-D"):
        pack([np.zeros((2, 10), np.float32)], pack_s=5, gap_s=1)
    with pytest.raises(ValueError, match="pack_s"):
        AsrOptions(pack_s=40)


# ------------------------------------------------------------------- assignment


def _spans() -> list[Span]:
    return [Span(0, 0.0, 2.0, 0.5), Span(1, 3.0, 2.0, 0.0), Span(2, 6.0, 1.0, 0.0)]


def _words(text: str, *times: tuple[float, float]) -> list[AsrWord]:
    """Whisper-style words of ``text`` (a leading space each, probability 0.9) at ``times``."""
    return [AsrWord(f" {w}", s, e, 0.9) for w, (s, e) in zip(text.split(), times, strict=True)]


def test_assign_words_by_time_and_to_segment_time():
    words = _words("one two. three four.", (0.2, 0.6), (1.0, 1.8), (3.1, 3.5), (6.2, 6.6))
    out = assign_words(words, _spans(), tolerance_s=1.0)
    assert [[w.text for w in run] for run in out] == [[" one", " two."], [" three"], [" four."]]
    # relative to each segment's untrimmed audio: span 0 had 0.5 s trimmed off its head
    assert (out[0][0].start_s, out[0][0].end_s) == (0.7, 1.1)
    assert (out[2][0].start_s, out[2][0].end_s) == (0.2, 0.6)


def test_assign_words_keeps_a_late_sentence_end_with_its_sentence():
    # Whisper's alignment often puts the last word of a sentence, with zero duration,
    # at the start of the next speech: it still belongs to the sentence before.
    text = "Kids are by the door. Dogs sit."
    words = _words(
        text, (0.0, 0.4), (0.4, 0.6), (0.6, 0.9), (0.9, 3.0), (3.05, 3.05), (3.1, 3.5), (3.5, 4.0)
    )
    out = assign_words(words, _spans()[:2], tolerance_s=1.0, segment_starts=frozenset({0, 5}))
    assert ["".join(w.text for w in run) for run in out] == [" Kids are by the door.", " Dogs sit."]


def test_assign_words_drops_far_words_and_punctuation():
    words = _words("hi . ghost", (0.1, 0.4), (0.5, 0.6), (9.5, 9.9))  # ghost: 2.5 s after the spans
    out = assign_words(words, _spans(), tolerance_s=1.0)
    assert [[w.text for w in run] for run in out] == [[" hi"], [], []]


def test_finish_guards_low_confidence_and_sets_confidence():
    opts = AsrOptions(min_mean_prob=0.35)
    good = finish([AsrWord(" yes", 0, 1, 0.8), AsrWord(" sir.", 1, 2, 0.6)], "en", opts)
    assert good.text == "yes sir." and good.confidence == pytest.approx(0.7) and good.reason is None
    bad = finish([AsrWord(" you", 0, 1, 0.1), AsrWord(" know", 1, 2, 0.2)], "en", opts)
    assert (bad.text, bad.words, bad.confidence, bad.reason) == ("", (), 0.0, "low_confidence")
    assert finish([], "en", opts).reason == "no_words"
    assert compression_ratio("la " * 50) > 2.4 > compression_ratio("Kids are talking by the door.")


# ------------------------------------------------------------- transcriber (fake)


def test_packing_calls_the_model_once_per_window_and_splits_words_back():
    model = FakeWhisper()
    levels = [0.1, 0.2, 0.3, 0.4, 0.5]
    audios = [np.concatenate([_const(0.5, 0.0), _const(2.0, v)]) for v in levels]
    out = Transcriber(model, AsrOptions(pack_s=28.0)).transcribe(audios)
    assert model.calls == 1
    assert [r.text for r in out] == [" ".join([f"a{round(v * 100)}"] * 5) for v in levels]
    assert out[0].words[0].start_s == pytest.approx(0.5, abs=0.21)  # the audio's own time
    alone = FakeWhisper()
    one_by_one = Transcriber(alone, AsrOptions(pack_s=0)).transcribe(audios)
    assert alone.calls == 5 and [r.text for r in one_by_one] == [r.text for r in out]


def test_silence_never_reaches_the_model():
    model = FakeWhisper()
    out = Transcriber(model, AsrOptions()).transcribe([_const(3.0, 0.0), _const(2.0, 0.001)])
    assert model.calls == 0
    assert all(r.text == "" and r.confidence == 0.0 and r.reason == "silence" for r in out)


def test_a_skipped_segment_is_transcribed_again_alone():
    class SkipsThird(FakeWhisper):
        def transcribe(self, audio, **kwargs):
            segments, info = super().transcribe(audio, **kwargs)
            segments = list(segments)
            return iter(segments if len(segments) < 3 else segments[:2] + segments[3:]), info

    model = SkipsThird()
    transcriber = Transcriber(model, AsrOptions())
    out = transcriber.transcribe([_const(2.0, v) for v in (0.1, 0.2, 0.3, 0.4)])
    assert [r.text.split()[0] for r in out] == ["a10", "a20", "a30", "a40"]
    assert (model.calls, transcriber.retries) == (2, 1)


# ------------------------------------------------------------------------- WER


def test_normalise_and_wer():
    assert normalise("Say the word 'back'!  It's 21, OK?") == [
        "say",
        "the",
        "word",
        "back",
        "it's",
        "twenty",
        "one",
        "ok",
    ]
    assert number_words(1205) == "one thousand two hundred five"
    assert edit_distance(["a", "b", "c", "d"], ["a", "x", "c"]) == 2
    assert wer(["Kids are talking by the door"], ["kids are talking by the door."]) == 0.0
    assert wer(["a b c d", "e f"], ["a b", "e f g"]) == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="length"):
        wer(["a"], [])


# ------------------------------------------------------------------ real model

SENTENCES = (
    "The meeting is scheduled for Tuesday morning.",
    "Please update the address on my account.",
    "Thank you so much for your help today.",
    "My order arrived late and the box was damaged.",
)


@pytest.fixture(scope="module")
def whisper():  # noqa: ANN201 - faster_whisper type
    from sentistream.models.whisper import load_whisper_asr

    return load_whisper_asr(threads=1)


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    from sentistream.models.whisper import resample_to_16k
    from sentistream.pipelines.demo.synth import tts

    return [resample_to_16k(*tts(text)) for text in SENTENCES]


@pytest.mark.slow
def test_packed_words_go_back_to_the_right_segments(whisper, speech):
    transcriber = Transcriber(whisper, AsrOptions())
    out = transcriber.transcribe(speech)
    assert transcriber.calls == 1
    for text, result in zip(SENTENCES, out, strict=True):
        assert wer([text], [result.text]) <= 0.25, (text, result.text)
        assert 0.5 < result.confidence <= 1.0 and result.reason is None
        ends = [w.end_s for w in result.words]
        assert ends == sorted(ends) and result.words[0].start_s >= 0 and ends[-1] <= 4.0


@pytest.mark.slow
def test_silence_and_noise_give_no_text(whisper, speech):
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, 3 * SAMPLE_RATE).astype(np.float32)
    hum = (0.05 * np.sin(2 * np.pi * 50 * np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE)).astype(
        np.float32
    )
    silent = np.zeros(3 * SAMPLE_RATE, np.float32)
    out = Transcriber(whisper, AsrOptions()).transcribe([silent, speech[0], noise, hum])
    assert [r.text == "" for r in out] == [True, False, True, True]
    assert out[0].reason == "silence" and out[2].confidence == 0.0
    alone = Transcriber(whisper, replace(AsrOptions(), pack_s=0)).transcribe([noise, hum])
    assert [r.text for r in alone] == ["", ""]


@pytest.mark.slow
@pytest.mark.data
def test_wer_on_real_ravdess_speech(shared_data):
    from sentistream.models.training.asr_eval import read_labelled
    from sentistream.models.whisper import load_whisper_asr

    clips = read_labelled(shared_data, "ravdess_audio", limit=8)
    out = Transcriber(load_whisper_asr(threads=1), AsrOptions()).transcribe(
        [c.audio for c in clips]
    )
    assert wer([c.reference for c in clips], [r.text for r in out]) < 0.10

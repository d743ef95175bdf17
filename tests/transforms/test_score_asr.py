"""The transcript step with speech recognition (AsrHandler): which records are
transcribed, and what they get."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from sentistream.models.audio import SAMPLE_RATE as SR
from sentistream.transforms.asr import NAMESPACE, AsrHandler
from sentistream.transforms.config import AsrConfig, ModelRuntime
from sentistream.transforms.records import (
    DeadLetter,
    PolicyDecision,
    SegmentRecord,
    Transcript,
    VideoRef,
    make_segment_id,
)
from sentistream.transforms.text import text_input
from sentistream.transforms.transcript import asr_decision, settle_captions

ALL = PolicyDecision("p", ("face", "voice", "text"), "role:*")
NO_TEXT = PolicyDecision("p", ("face", "voice"), "role:agent")
CAPTION = "hello from the captions"
CAPTION_TRANSCRIPT = Transcript(CAPTION, "captions", 1.0)


class FakeWhisper:
    """Stands in for ``faster_whisper.WhisperModel``: a word ``a<level>`` every 0.4 s of
    each loud run (level = peak amplitude x 100). Module level, so Beam can pickle it."""

    def transcribe(self, audio, **kwargs):
        loud = np.abs(audio) > 0.005
        edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(int), [0]])))
        segments = []
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            name = f" a{round(float(np.abs(audio[a:b]).max()) * 100)}"
            words = [
                SimpleNamespace(word=name, start=t, end=min(t + 0.3, b / SR), probability=0.9)
                for t in np.arange(a, b, int(0.4 * SR)) / SR
            ]
            segments.append(SimpleNamespace(words=words))
        return iter(segments), SimpleNamespace(language="en")


def fake_factory() -> FakeWhisper:
    return FakeWhisper()


def _record(
    start: float,
    level: float | None = 0.2,
    *,
    policy: PolicyDecision = ALL,
    caption: str | None = None,
    segmenter: str = "vad",
    video: str = "v1",
) -> SegmentRecord:
    audio = None if level is None else np.full(2 * SR, level, np.float32)
    return SegmentRecord(
        ref=VideoRef(uri=f"/media/{video}.mp4", video_id=video),
        segment_id=make_segment_id(video, 0, start, "seg-v3"),
        channel=0,
        speaker="unknown",
        start_s=start,
        end_s=start + 2.0,
        segmenter=segmenter,
        has_video=False,
        has_audio=level is not None,
        policy=policy,
        audio=audio,
        caption=caption,
    )


def _config(**kw: object) -> AsrConfig:
    return AsrConfig(runtime=ModelRuntime(max_batch_size=8, threads=1), **kw)  # type: ignore[arg-type]


def test_decision_follows_policy_captions_audio_and_segmenter():
    cfg = _config()
    assert asr_decision(_record(0.0), cfg) == "transcribe"
    assert asr_decision(_record(0.0, policy=NO_TEXT), cfg) == "policy"
    assert asr_decision(_record(0.0, caption=CAPTION), cfg) == "captions"
    assert asr_decision(_record(0.0, caption=CAPTION), _config(prefer_captions=False)) == (
        "transcribe"
    )
    assert asr_decision(_record(0.0, level=None), cfg) == "no_audio"
    assert asr_decision(_record(0.0, segmenter="window"), cfg) == "no_speech_window"


def test_handler_fills_transcripts_and_leaves_the_rest():
    handler = AsrHandler(_config(), model_factory=fake_factory)
    model = handler.load_model()
    dead = DeadLetter("/media/x.mp4", "x", "decode", "ValueError", "bad")
    batch = [
        _record(5.0, 0.3),
        dead,
        _record(1.0, 0.1),
        _record(9.0, policy=NO_TEXT),
        _record(13.0, caption=CAPTION),
        _record(17.0, level=None),
        _record(21.0, segmenter="window"),
        _record(25.0, 0.0),  # digital silence from the VAD: energy gate, no model call
    ]
    out = list(handler.run_inference(batch, model))
    assert model.calls == 1  # the two speech segments packed into one window
    assert out[1] is dead
    assert out[3].transcript is None  # policy: words branch off, never transcribed
    assert out[5].transcript is None  # no audio, no captions: nothing to read
    assert out[4].transcript == CAPTION_TRANSCRIPT  # captions win
    first, second = out[0].transcript, out[2].transcript
    assert (first.text, first.source, first.language) == ("a30 a30 a30 a30 a30", "asr", "en")
    assert second.text.split() == ["a10"] * 5 and second.confidence == pytest.approx(0.9)
    assert first.words[0].start_s == pytest.approx(5.0, abs=0.21)  # recording time
    assert all(5.0 <= w.start_s <= w.end_s <= 7.0 for w in first.words)
    for empty in (out[6].transcript, out[7].transcript):
        assert (empty.text, empty.source, empty.confidence) == ("", "asr", 0.0)
        assert text_input(out[6]).reason == "no_speech"


def test_prefer_captions_off_replaces_the_caption_text():
    handler = AsrHandler(_config(prefer_captions=False), model_factory=fake_factory)
    (out,) = handler.run_inference([_record(0.0, caption=CAPTION)], handler.load_model())
    assert out.transcript.source == "asr" and out.transcript.text.startswith("a20")


def test_caption_text_is_the_fallback_and_inputs_are_dropped_as_told():
    class Failing(FakeWhisper):
        def transcribe(self, audio, **kwargs):
            raise RuntimeError("model broke")

    cfg = _config(prefer_captions=False)
    handler = AsrHandler(cfg, model_factory=Failing, drop=("audio", "caption"))
    batch = [_record(0.0, caption=CAPTION), _record(4.0, policy=NO_TEXT, caption=CAPTION)]
    out = list(handler.run_inference(batch, handler.load_model()))
    # Recognition failed (first) or was not allowed (second): the caption text stays.
    assert [r.transcript for r in out] == [CAPTION_TRANSCRIPT, CAPTION_TRANSCRIPT]
    assert all(r.audio is None and r.caption is None for r in out)


def test_without_asr_the_transcript_step_sets_the_caption_text():
    dead = DeadLetter("/media/x.mp4", "x", "decode", "ValueError", "bad")
    record = _record(0.0, caption=CAPTION)
    assert settle_captions(dead, ("caption",)) is dead
    out = settle_captions(record, ("caption",))
    assert out.transcript == CAPTION_TRANSCRIPT and out.caption is None
    assert out.audio is record.audio  # not named in drop: kept for a later step
    assert settle_captions(_record(4.0)).transcript is None


def _run(records: list[SegmentRecord], config: AsrConfig, expected: list) -> dict[str, int]:
    """Run the ASR step (fake model) on FnApiRunner; check (start, text) pairs; the counters."""
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    texts = (
        pipeline
        | beam.Create(records, reshuffle=False)
        | RunInference(AsrHandler(config, model_factory=fake_factory))
        | beam.Map(lambda r: (r.start_s, r.transcript.text if r.transcript else None))
    )
    assert_that(texts, equal_to(expected))
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    return {c.key.metric.name: c.committed for c in counters}


def test_pipeline_counts_transcriptions_and_never_transcribes_disabled_text():
    records = [_record(float(i), 0.1 * (i + 1), policy=NO_TEXT) for i in range(3)]
    records.append(_record(10.0, 0.5))
    expected = [(0.0, None), (1.0, None), (2.0, None), (10.0, "a50 a50 a50 a50 a50")]
    counters = _run(records, _config(), expected)
    assert counters["segments_transcribed"] == 1
    assert counters["skipped_policy"] == 3
    assert counters["model_calls"] == 1


@pytest.mark.slow
def test_real_model_transcribes_speech_and_not_silence():
    from sentistream.models.training.asr_eval import wer
    from sentistream.models.whisper import resample_to_16k
    from sentistream.pipelines.demo.synth import tts

    text = "Please update the address on my account."
    speech = resample_to_16k(*tts(text))
    said = replace(_record(3.0), audio=speech, end_s=3.0 + speech.size / SR)
    silent = _record(8.0, 0.0)
    handler = AsrHandler(_config())
    out = list(handler.run_inference([said, silent], handler.load_model()))
    transcript = out[0].transcript
    assert transcript.source == "asr" and wer([text], [transcript.text]) <= 0.15
    assert 0.5 < transcript.confidence <= 1.0
    assert all(said.start_s <= w.start_s <= w.end_s <= said.end_s for w in transcript.words)
    assert (out[1].transcript.text, out[1].transcript.source) == ("", "asr")
    assert text_input(out[1]).reason == "no_speech"


def test_dead_letters_pass_through_the_pipeline():
    dead = DeadLetter("/media/x.mp4", "x", "decode", "ValueError", "bad")
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    out = pipeline | beam.Create([dead]) | RunInference(AsrHandler(_config(), fake_factory))
    assert_that(out, equal_to([dead]))
    pipeline.run().wait_until_finish()

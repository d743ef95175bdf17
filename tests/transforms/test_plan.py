"""The data path: which steps run, what is decoded and carried, where each input is dropped."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from sentistream.models.audio import SAMPLE_RATE
from sentistream.pipelines.demo.synth import write_media, write_vtt
from sentistream.transforms.config import (
    AsrConfig,
    DecodeConfig,
    PipelineConfig,
    PolicyConfig,
    SegmentConfig,
)
from sentistream.transforms.decode import DecodeAndSegmentFn, iter_segments
from sentistream.transforms.media.captions import Cue
from sentistream.transforms.plan import ORDER, DataPath, plan
from sentistream.transforms.policy import parse_rules
from sentistream.transforms.records import RecordingEnd, SegmentRecord, VideoRef
from sentistream.transforms.schema import ScoreRow
from sentistream.transforms.score import ScoreVideos

CAPTION = "hello from the captions"


def config(rules: str, **parts: object) -> PipelineConfig:
    return PipelineConfig(policy=PolicyConfig(rules=parse_rules(rules)), **parts)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of 160x96 video at 10 fps with a tone, and a caption cue at 0.2-1.5 s (so
    segments: the cue, then windows of 5 s and 1.5 s)."""
    d = tmp_path_factory.mktemp("plan")
    frames = [np.full((96, 160, 3), 3 * i, np.uint8) for i in range(80)]
    t = np.arange(8 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    path = write_media(d / "clip.mp4", frames=frames, fps=10.0, audio=tone)
    write_vtt(d / "clip.vtt", [Cue(0.2, 1.5, CAPTION)])
    return path


def test_every_modality_on_runs_every_step_and_drops_after_the_last_reader():
    path = plan(PipelineConfig())
    assert path.steps == ORDER and path.asr
    assert path.decode == PipelineConfig().decode
    assert path.carried == ("frames", "audio", "caption")
    assert path.drops_after("face") == ("frames",)
    assert path.drops_after("transcript") == ("caption",)  # the voice step still reads audio
    assert path.drops_after("voice") == ("audio",)
    assert path.drops_after("text") == ()


def test_a_modality_no_rule_enables_is_neither_run_decoded_nor_carried():
    path = plan(config("agent=voice,text;customer=text"))
    assert path.steps == ("transcript", "voice", "text")
    assert path.decode.fps == 0.0  # no face step: video is not decoded at all
    assert "frames" not in path.carried
    words_only = plan(config("*=text"))
    assert words_only.steps == ("transcript", "text")
    assert words_only.drops_after("transcript") == ("caption", "audio")  # no voice step
    nothing = plan(config("*=", segment=SegmentConfig(prefer_captions=False)))
    assert nothing.steps == () and nothing.carried == ()


def test_speech_recognition_runs_only_when_some_rule_enables_text():
    assert not plan(config("*=face,voice")).asr
    assert not plan(PipelineConfig(asr=AsrConfig(enabled=False))).asr
    no_asr = plan(PipelineConfig(asr=AsrConfig(enabled=False)))
    assert no_asr.reads["transcript"] == ("caption",)


def test_drops_follow_the_step_list_not_the_step():
    reads = {"transcript": ("caption", "audio"), "voice": ("audio",)}
    both = DataPath(steps=("transcript", "voice"), reads=reads, decode=DecodeConfig())
    assert both.drops_after("transcript") == ("caption",)
    alone = DataPath(steps=("transcript",), reads=reads, decode=DecodeConfig())
    assert alone.drops_after("transcript") == ("caption", "audio")
    with pytest.raises(ValueError, match="in that order"):
        DataPath(steps=("voice", "face"), reads={}, decode=DecodeConfig())
    with pytest.raises(ValueError, match="unknown inputs"):
        DataPath(steps=("face",), reads={"face": ("pixels",)}, decode=DecodeConfig())


def test_records_carry_only_what_is_asked(clip: Path):
    cfg = PipelineConfig()
    ref = VideoRef(uri=str(clip))
    *full, end = iter_segments(ref, cfg.decode, cfg.segment, cfg.policy)
    assert isinstance(end, RecordingEnd) and end.segments == len(full) and end.tracks == 1
    assert end.duration_s == pytest.approx(8.0, abs=0.1)
    # the tone's RMS level: 20 log10(0.3 / sqrt(2)) = -13.5 dBFS, after AAC coding
    assert all(r.level_dbfs == pytest.approx(-13.5, abs=1.0) for r in full)
    assert full[0].segmenter == "captions" and full[0].caption == CAPTION
    assert all(r.policy is None for r in full)  # decided by the DecidePolicy step
    assert sum(len(r.frames) for r in full) > 0 and all(r.audio is not None for r in full)
    *bare, _ = iter_segments(ref, cfg.decode, cfg.segment, cfg.policy, carry=())
    assert [r.segment_id for r in bare] == [r.segment_id for r in full]
    assert all(r.frames == () and r.audio is None and r.caption is None for r in bare)
    assert [r.level_dbfs for r in bare] == [r.level_dbfs for r in full]  # without the audio


def _decode_frames(clip: Path, cfg: PipelineConfig) -> tuple[int, int]:
    """(frames counted by the decode step in a pipeline, frames on the records) for the
    data path of ``cfg``."""
    path = plan(cfg)
    ref = VideoRef(uri=str(clip))
    fn = DecodeAndSegmentFn(path.decode, cfg.segment, cfg.policy, path.carried)
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    _ = pipeline | beam.Create([ref]) | beam.ParDo(fn)
    result = pipeline.run()
    result.wait_until_finish()
    query = MetricsFilter().with_namespace("sentistream.decode").with_name("frames")
    (counter,) = result.metrics().query(query)["counters"]
    records = iter_segments(ref, path.decode, cfg.segment, cfg.policy, carry=path.carried)
    return counter.committed, sum(len(r.frames) for r in records if isinstance(r, SegmentRecord))


def test_no_frame_is_decoded_or_carried_when_no_rule_enables_face(clip: Path):
    assert _decode_frames(clip, config("agent=voice,text;*=text")) == (0, 0)
    counted, carried = _decode_frames(clip, config("agent=face;*=text"))
    assert counted == carried >= 12  # 7.8 s of segments sampled at the default 2 fps


def test_the_whole_transform_without_models_gives_rows_and_no_frames(clip: Path):
    cfg = config("*=", decode=DecodeConfig(fps=5.0))
    assert plan(cfg).decode.fps == 0.0
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    rows = pipeline | beam.Create([VideoRef(uri=str(clip))]) | ScoreVideos(cfg, clock=lambda: 0.0)
    summary = rows | beam.Map(
        lambda r: (
            (r.segmenter, r.transcript, r.face_reason, r.text_reason, r.policy_rule)
            if isinstance(r, ScoreRow)
            else (type(r).__name__, r.segments, r.talk_time_s, r.words, r.fused_label)
        )
    )
    off = "disabled_by_policy"
    assert_that(
        summary,
        equal_to(
            [("captions", CAPTION, off, off, "role:*")]
            + [("window", None, off, off, "role:*")] * 2
            # 1.3 s of captioned speech, 4 words; a tone, not a voice: nothing to
            # diarize (no speech turn to embed), so one speaker
            + [("CallRow", 3, 1.3, 4, "unknown")]
        ),
    )
    result = pipeline.run()
    result.wait_until_finish()
    query = MetricsFilter().with_namespace("sentistream.decode").with_name("frames")
    assert [c.committed for c in result.metrics().query(query)["counters"]] == [0]

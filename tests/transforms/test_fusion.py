import itertools

import pytest

from sentistream.transforms.fusion import fuse_fixed, label_for
from sentistream.transforms.records import MODALITIES, ModalityResult


def res(m, v, c):
    return ModalityResult(modality=m, present=True, valence=v, confidence=c)


ALL = ("face", "voice", "text")


def test_no_modality_present_is_unknown_with_zero_confidence():
    fused = fuse_fixed({"face": ModalityResult.absent("face", "no_face")}, ALL)
    assert fused.valence is None and fused.label == "unknown" and fused.confidence == 0
    assert fused.present == ()


def test_single_modality_is_used_alone_with_reduced_confidence():
    one = fuse_fixed({"text": res("text", 0.8, 0.9)}, ALL)
    assert one.valence == pytest.approx(0.8) and one.label == "positive"
    only_text_enabled = fuse_fixed({"text": res("text", 0.8, 0.9)}, ("text",))
    assert one.confidence < only_text_enabled.confidence
    assert only_text_enabled.confidence == pytest.approx(0.9)


def test_confidence_weights_the_mean_and_disagreement_lowers_confidence():
    fused = fuse_fixed({"face": res("face", 1.0, 0.9), "text": res("text", -1.0, 0.1)}, ALL)
    assert fused.valence > 0.5
    agree = fuse_fixed({"face": res("face", 0.6, 0.8), "text": res("text", 0.6, 0.8)}, ALL)
    disagree = fuse_fixed({"face": res("face", 0.6, 0.8), "text": res("text", -0.6, 0.8)}, ALL)
    assert agree.confidence > disagree.confidence


@pytest.mark.parametrize(
    "subset", [s for k in range(1, 4) for s in itertools.combinations(MODALITIES, k)]
)
def test_every_subset_of_present_modalities_gives_a_bounded_score(subset):
    results = {m: res(m, -0.5, 0.7) for m in subset}
    fused = fuse_fixed(results, ALL)
    assert fused.present == subset
    assert -1 <= fused.valence <= 1 and 0 <= fused.confidence <= 1
    assert fused.label == "negative"


def test_label_band():
    assert label_for(0.1, 0.2) == "neutral"
    assert label_for(-0.3, 0.2) == "negative"
    assert label_for(None, 0.2) == "unknown"


def test_learned_fusion_bundle_plugs_into_the_row():
    from sentistream.models.fusion.learned import LearnedFusion
    from sentistream.transforms.config import FusionConfig, PipelineConfig
    from sentistream.transforms.records import PolicyDecision, SegmentRecord, VideoRef
    from sentistream.transforms.rows import to_score_row

    learned = LearnedFusion.load("fusion-late-mlp")
    record = SegmentRecord(
        ref=VideoRef(uri="/x.mp4"),
        segment_id="s",
        channel=0,
        speaker="unknown",
        start_s=0.0,
        end_s=2.0,
        segmenter="vad",
        has_video=True,
        has_audio=True,
        policy=PolicyDecision("p", ("face", "voice", "text"), "role:*"),
        results={"text": res("text", -0.9, 0.9), "face": ModalityResult.absent("face", "no_face")},
    )
    cfg = PipelineConfig(fusion=FusionConfig(bundle="fusion-late-mlp"))
    row = to_score_row(record, cfg, 0.0, learned)
    assert row.fusion_model_id == learned.model_id
    assert row.fused_label == "negative" and row.modalities_present == "text"
    fixed = to_score_row(record, cfg, 0.0)
    assert fixed.fusion_model_id.startswith("fusion-fixed")

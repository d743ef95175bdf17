import pytest

from sentistream.transforms.config import PolicyConfig
from sentistream.transforms.policy import decide, parse_rules


def test_parse_rules_roundtrip():
    rules = parse_rules("agent=text; customer=face,voice,text ;*=")
    assert rules == (("agent", ("text",)), ("customer", ("face", "voice", "text")), ("*", ()))


@pytest.mark.parametrize("spec", ["agent", "=text", "agent=smell", ""])
def test_parse_rules_rejects_bad_specs(spec):
    with pytest.raises(ValueError, match="policy"):
        parse_rules(spec)


def test_role_rule_then_fallback():
    cfg = PolicyConfig(policy_id="eu", rules=parse_rules("agent=text;*=face,voice,text"))
    agent = decide(cfg, "agent", {})
    other = decide(cfg, "customer", {})
    assert agent.enabled == ("text",) and agent.rule == "role:agent" and agent.policy_id == "eu"
    assert other.enabled == ("face", "voice", "text") and other.rule == "role:*"
    assert not agent.allows("face") and other.allows("face")


def test_no_matching_rule_enables_nothing():
    cfg = PolicyConfig(rules=parse_rules("agent=text"))
    assert decide(cfg, "customer", {}).enabled == ()


def test_consent_narrows_and_source_hint_never_widens():
    cfg = PolicyConfig(rules=parse_rules("*=face,voice,text"), consent_key="consent")
    assert decide(cfg, "customer", {"consent": "true"}).enabled == ("face", "voice", "text")
    no = decide(cfg, "customer", {"consent": "no"})
    assert no.enabled == ("text",) and "no-consent" in no.rule
    narrow = decide(PolicyConfig(rules=parse_rules("*=text")), "x", {"modalities": "face,text"})
    assert narrow.enabled == ("text",)


def test_the_policy_step_decides_once_and_records_disabled_modalities():
    from sentistream.transforms.policy import apply_policy, enabled_anywhere
    from sentistream.transforms.records import DeadLetter, SegmentRecord, VideoRef

    cfg = PolicyConfig(rules=parse_rules("agent=text;customer=face,voice,text"))
    assert enabled_anywhere(cfg) == ("face", "voice", "text")
    assert enabled_anywhere(PolicyConfig(rules=parse_rules("agent=text;*=voice"))) == (
        "voice",
        "text",
    )
    where = {"ref": VideoRef(uri="/call.wav"), "segment_id": "s", "start_s": 0.0, "end_s": 1.0}
    found = {"channel": 0, "speaker": "agent", "segmenter": "vad"}
    record = SegmentRecord(**where, **found, has_video=False, has_audio=True)
    with pytest.raises(ValueError, match="no policy decision yet"):
        record.allows("text")
    decided = apply_policy(record, cfg)
    assert decided.policy == decide(cfg, "agent", {})
    assert decided.allows("text") and not decided.allows("face")
    assert {m: r.reason for m, r in decided.results.items()} == {
        "face": "disabled_by_policy",
        "voice": "disabled_by_policy",
    }
    dead = DeadLetter("/x.mp4", "x", "decode", "ValueError", "bad")
    assert apply_policy(dead, cfg) is dead

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

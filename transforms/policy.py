"""Modality policy: which modalities may run for a segment, decided before any model runs.

Emotion recognition from faces and voices is restricted in some jurisdictions (the EU AI
Act prohibits it for employees at the workplace). A disabled modality is never computed;
every output row records the policy id, the rule that applied and the enabled set.

The decision is taken once per segment, in the ``DecidePolicy`` step (``apply_policy``),
right after decoding; every later step reads it from the record (``SegmentRecord.allows``).
``enabled_anywhere`` is the construction-time view: the modalities some rule can enable
(``transforms/plan.py`` leaves the others out of the pipeline altogether).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sentistream.transforms.config import PolicyConfig
from sentistream.transforms.records import (
    MODALITIES,
    REASON_DISABLED_BY_POLICY,
    Element,
    ModalityResult,
    PolicyDecision,
    SegmentRecord,
)


def parse_rules(spec: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Parse ``"agent=text;customer=face,voice,text;*=text"`` into policy rules.

    An empty modality list (``"agent="``) disables every modality for that role.
    """
    rules: list[tuple[str, tuple[str, ...]]] = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        role, sep, mods = part.partition("=")
        if not sep or not role.strip():
            raise ValueError(f"policy rule {part!r} must look like 'role=mod1,mod2'")
        modalities = tuple(m.strip() for m in mods.split(",") if m.strip())
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown:
            raise ValueError(
                f"policy rule {part!r}: unknown modalities {unknown}; use {MODALITIES}"
            )
        rules.append((role.strip(), modalities))
    if not rules:
        raise ValueError(f"policy spec {spec!r} has no rules")
    return tuple(rules)


def decide(config: PolicyConfig, role: str, metadata: Mapping[str, str]) -> PolicyDecision:
    """The modalities enabled for a speaker ``role`` from a source with ``metadata``.

    Order: a role's own rule, else the ``*`` rule, else nothing. A consent requirement
    (``config.consent_key``) then narrows the set for sources without consent. A source may
    also narrow (never widen) the set through ``metadata["modalities"]`` ("text,voice").
    """
    rules = dict(config.rules)
    if role in rules:
        enabled, rule = rules[role], f"role:{role}"
    elif "*" in rules:
        enabled, rule = rules["*"], "role:*"
    else:
        enabled, rule = (), "no-rule"
    enabled, rule = _narrowed(config, enabled, rule, metadata)
    ordered = tuple(m for m in MODALITIES if m in enabled)
    return PolicyDecision(policy_id=config.policy_id, enabled=ordered, rule=rule)


def voice_consented(config: PolicyConfig, metadata: Mapping[str, str]) -> bool:
    """Whether a source's consent and modality hints leave voice analysis possible at all
    (whatever the role). Diarization computes voice embeddings, so it runs only then."""
    return "voice" in _narrowed(config, ("voice",), "", metadata)[0]


def _narrowed(
    config: PolicyConfig, enabled: tuple[str, ...], rule: str, metadata: Mapping[str, str]
) -> tuple[tuple[str, ...], str]:
    """``enabled`` narrowed by the consent requirement and the source's hint."""
    if config.consent_key is not None:
        consent = str(metadata.get(config.consent_key, "")).strip().lower()
        if consent != "true":
            enabled = tuple(m for m in enabled if m in config.no_consent_modalities)
            rule += f"+no-consent({config.consent_key})"
    hint = metadata.get("modalities")
    if hint is not None:
        allowed = {m.strip() for m in str(hint).split(",")}
        enabled = tuple(m for m in enabled if m in allowed)
        rule += "+source-hint"
    return enabled, rule


def enabled_anywhere(config: PolicyConfig) -> tuple[str, ...]:
    """Modalities that at least one rule can enable (consent and source hints only narrow)."""
    allowed = {m for _, mods in config.rules for m in mods}
    return tuple(m for m in MODALITIES if m in allowed)


def apply_policy(element: Element, config: PolicyConfig) -> Element:
    """The ``DecidePolicy`` step (pure): the record with its ``PolicyDecision`` and a
    ``disabled_by_policy`` result for each modality it does not enable; dead letters and
    recording ends pass."""
    if not isinstance(element, SegmentRecord):
        return element
    decision = decide(config, element.speaker, element.ref.metadata)
    results = dict(element.results)
    for m in MODALITIES:
        if not decision.allows(m):
            results[m] = ModalityResult.absent(m, REASON_DISABLED_BY_POLICY)
    return dataclasses.replace(element, policy=decision, results=results)

"""Modality policy: which modalities may run for a segment, decided before any model runs.

Emotion recognition from faces and voices is restricted in some jurisdictions (the EU AI
Act prohibits it for employees at the workplace). A disabled modality is never computed;
every output row records the policy id, the rule that applied and the enabled set.
"""

from __future__ import annotations

from collections.abc import Mapping

from sentistream.transforms.config import PolicyConfig
from sentistream.transforms.records import MODALITIES, PolicyDecision


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
    ordered = tuple(m for m in MODALITIES if m in enabled)
    return PolicyDecision(policy_id=config.policy_id, enabled=ordered, rule=rule)

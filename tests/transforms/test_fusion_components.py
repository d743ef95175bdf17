"""A learned fusion bundle is applied only to the component models it was trained on."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from sentistream.models.bundle import DEFAULT_BUNDLES, resolve_bundle
from sentistream.transforms.config import FusionConfig, PipelineConfig, VoiceConfig
from sentistream.transforms.score import load_fusion


def _voice_copy(tmp_path: Path, model_id: str) -> str:
    src = resolve_bundle(DEFAULT_BUNDLES["voice"]).parent
    dst = tmp_path / "my-voice"
    shutil.copytree(src, dst)
    meta = json.loads((dst / "bundle.json").read_text())
    meta["model_id"] = model_id
    (dst / "bundle.json").write_text(json.dumps(meta))
    return str(dst)


def test_fixed_rule_loads_nothing() -> None:
    assert load_fusion(PipelineConfig()) is None


def test_learned_fusion_accepts_the_default_components() -> None:
    config = PipelineConfig(fusion=FusionConfig(bundle=DEFAULT_BUNDLES["fusion"]))
    fusion = load_fusion(config)
    assert fusion is not None
    assert set(fusion.components) == {"face", "voice", "text"}


def test_other_components_are_a_clear_error_unless_allowed(tmp_path: Path) -> None:
    voice = VoiceConfig(bundle=_voice_copy(tmp_path, "my-voice@7"))
    config = PipelineConfig(fusion=FusionConfig(bundle=DEFAULT_BUNDLES["fusion"]), voice=voice)
    with pytest.raises(ValueError, match=r"trained on voice scores of .*my-voice@7"):
        load_fusion(config)
    allowed = dataclasses.replace(
        config, fusion=dataclasses.replace(config.fusion, allow_other_components=True)
    )
    assert load_fusion(allowed) is not None

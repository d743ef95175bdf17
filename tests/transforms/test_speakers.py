"""Diarized speakers' role rules, and which recordings are diarized."""

from __future__ import annotations

import pytest

from sentistream.transforms.config import DiarizeConfig, PolicyConfig
from sentistream.transforms.diarization import applies
from sentistream.transforms.media.decoding import MediaInfo
from sentistream.transforms.records import VideoRef
from sentistream.transforms.speakers import format_speaker_roles, parse_speaker_roles, role_of


def test_role_rules_parse_and_map_speakers():
    rules = parse_speaker_roles(" first = agent , spk_2=supervisor, *=customer ")
    assert rules == (("first", "agent"), ("spk_2", "supervisor"), ("*", "customer"))
    assert [role_of(i, rules, "unknown") for i in range(4)] == [
        "agent",
        "customer",
        "supervisor",
        "customer",
    ]
    assert format_speaker_roles(rules) == "first=agent,spk_2=supervisor,*=customer"
    assert parse_speaker_roles("") == ()
    assert role_of(0, (), "unknown") == "unknown"
    # a speaker's own rule wins over "first"
    assert role_of(0, parse_speaker_roles("first=agent,spk_0=customer"), "x") == "customer"


@pytest.mark.parametrize("spec", ["agent", "=agent", "first=", "boss=agent", "spk_x=a"])
def test_bad_role_rules_say_what_to_write(spec):
    with pytest.raises(ValueError, match="first"):
        parse_speaker_roles(spec)


def _info(channels: int) -> MediaInfo:
    return MediaInfo(True, channels > 0, channels, 10.0, 64, 64, 25.0, "mp4")


def test_which_recordings_are_diarized():
    ref, policy = VideoRef(uri="/a.mp4"), PolicyConfig()
    mono, stereo = _info(1), _info(2)
    assert applies(DiarizeConfig(), policy, mono, 1, ref)
    assert not applies(DiarizeConfig(), policy, stereo, 2, ref)  # channels are the speakers
    assert applies(DiarizeConfig(), policy, stereo, 1, ref)  # captioned: one downmixed track
    assert applies(DiarizeConfig(mode="all"), policy, stereo, 2, ref)
    assert not applies(DiarizeConfig(mode="off"), policy, mono, 1, ref)
    assert not applies(DiarizeConfig(), policy, _info(0), 1, ref)  # no audio
    live = VideoRef(uri="/a.mp4", live=True)
    assert not applies(DiarizeConfig(), policy, mono, 1, live)


def test_no_diarization_where_voice_analysis_is_ruled_out():
    """Diarization embeds voices: a source without consent (when consent is required for
    voice), or whose hint leaves voice out, is not diarized."""
    consent = PolicyConfig(consent_key="consent")
    yes = VideoRef(uri="/a.mp4", metadata={"consent": "true"})
    no = VideoRef(uri="/a.mp4", metadata={"consent": "false"})
    text_only = VideoRef(uri="/a.mp4", metadata={"modalities": "text"})
    assert applies(DiarizeConfig(), consent, _info(1), 1, yes)
    assert not applies(DiarizeConfig(), consent, _info(1), 1, no)
    assert not applies(DiarizeConfig(), PolicyConfig(), _info(1), 1, text_only)
    assert applies(DiarizeConfig(), PolicyConfig(), _info(1), 1, no)  # no consent required


def test_the_config_names_a_bad_value():
    with pytest.raises(ValueError, match="diarize mode"):
        DiarizeConfig(mode="stereo")
    with pytest.raises(ValueError, match="speakers"):
        DiarizeConfig(speakers=0)

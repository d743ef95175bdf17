"""Diarized speakers' role rules, and which recordings are diarized."""

from __future__ import annotations

import pytest

from sentistream.transforms.config import DiarizeConfig
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
    ref = VideoRef(uri="/a.mp4")
    mono, stereo = _info(1), _info(2)
    assert applies(DiarizeConfig(), mono, 1, ref)
    assert not applies(DiarizeConfig(), stereo, 2, ref)  # the channels are the speakers
    assert applies(DiarizeConfig(), stereo, 1, ref)  # captioned: one downmixed track
    assert applies(DiarizeConfig(mode="all"), stereo, 2, ref)
    assert not applies(DiarizeConfig(mode="off"), mono, 1, ref)
    assert not applies(DiarizeConfig(), _info(0), 1, ref)  # no audio
    assert not applies(DiarizeConfig(), mono, 1, VideoRef(uri="/a.mp4", live=True))


def test_the_config_names_a_bad_value():
    with pytest.raises(ValueError, match="diarize mode"):
        DiarizeConfig(mode="stereo")
    with pytest.raises(ValueError, match="speakers"):
        DiarizeConfig(speakers=0)

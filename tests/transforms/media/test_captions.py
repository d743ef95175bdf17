"""Caption parsing: WebVTT and SRT as real files write them, and the sidecar lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentistream.transforms.media.captions import Cue, find_sidecar, format_vtt, parse_captions

VTT = (
    "\ufeffWEBVTT - demo\nKind: captions\n\n"
    "NOTE written by hand\nspanning two lines\n\n"
    "STYLE\n::cue { color: yellow }\n\n"
    "intro-1\n00:00:01.000 --> 00:00:03.500 align:start position:10%\n"
    "<v Alice>Hello <i>there</i>,\nhow are you?</v>\n\n"
    "00:04.250 --> 00:06.000\n<v.loud Bob>Fine &amp; you&nbsp;too</v>\n\n"
    "00:00:07.000 --> 00:00:08.000\n<c.yellow>Bye</c> <00:00:07.500>now\n"
)
SRT = (
    "1\r\n00:00:01,000 --> 00:00:02,500\r\nFirst line\r\nsecond line\r\n\r\n"
    "2\r\n00:00:03,000 --> 00:00:04,000\r\n{\\an8}<b>Top</b> text\r\n\r\n"
)


def test_vtt_with_bom_settings_tags_and_voices() -> None:
    cues = parse_captions(VTT)
    assert cues == [
        Cue(1.0, 3.5, "Hello there, how are you?", "Alice"),
        Cue(4.25, 6.0, "Fine & you too", "Bob"),
        Cue(7.0, 8.0, "Bye now"),
    ]


def test_srt_with_crlf_multiline_and_ass_tags() -> None:
    assert parse_captions(SRT) == [
        Cue(1.0, 2.5, "First line second line"),
        Cue(3.0, 4.0, "Top text"),
    ]


def test_cues_are_sorted_and_empty_cues_dropped() -> None:
    text = "WEBVTT\n\n00:05.000 --> 00:06.000\nlater\n\n00:01.000 --> 00:02.000\n<i></i>\n\n"
    text += "00:02.000 --> 00:03.000\nearlier\n"
    assert [c.text for c in parse_captions(text)] == ["earlier", "later"]


def test_blank_and_header_only_give_no_cues() -> None:
    assert parse_captions("") == []
    assert parse_captions("\ufeffWEBVTT\n\n") == []


@pytest.mark.parametrize(
    "text",
    [
        "just some prose,\nnot captions at all\n",
        "WEBVTT\n\n00:01.000 --> banana\nhi\n",
        "1\n00:00:05,000 --> 00:00:04,000\nbackwards\n",
    ],
)
def test_unparseable_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="text"):
        parse_captions(text)


def test_format_vtt_round_trips() -> None:
    cues = [Cue(0.5, 2.25, "one", "Ann"), Cue(3723.004, 3725.0, "two & <three>")]
    text = format_vtt(cues)
    assert text.startswith("WEBVTT")
    back = parse_captions(text.replace("<three>", "&lt;three&gt;"))
    assert back[0] == cues[0]
    assert (back[1].start_s, back[1].end_s) == (3723.004, 3725.0)


def test_find_sidecar(tmp_path: Path) -> None:
    media = tmp_path / "call.mp4"
    media.write_bytes(b"x")
    assert find_sidecar(str(media)) is None
    (tmp_path / "call.srt").write_text(SRT)
    assert find_sidecar(str(media)) == str(tmp_path / "call.srt")
    (tmp_path / "call.vtt").write_text(VTT)
    assert find_sidecar(str(media)) == str(tmp_path / "call.vtt")  # .vtt preferred
    assert find_sidecar("gs://bucket/call.mp4") is None

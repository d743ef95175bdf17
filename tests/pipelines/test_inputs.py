"""Batch inputs: globs skip sidecars and fail loudly on no match; manifest lines become
refs, and a bad line is named by file and line number."""

from __future__ import annotations

import json

import pytest

from sentistream.pipelines.inputs import expand_inputs, read_manifest


def test_globs_expand_sorted_without_sidecars(tmp_path):
    for name in ("b.mp4", "a.mp4", "a.vtt", "notes.json"):
        (tmp_path / name).write_bytes(b"x")
    refs = expand_inputs([str(tmp_path / "*")], channel_roles=("agent", "customer"))
    assert [r.uri for r in refs] == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert {r.channel_roles for r in refs} == {("agent", "customer")}


def test_no_input_match_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="matches no media file"):
        expand_inputs([str(tmp_path / "*.mp4")])


def test_manifest_lines_become_refs(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [
        {"uri": "/m/1.mp4", "video_id": "one", "metadata": {"consent": True}},
        {"uri": "/m/2.mp4", "channel_roles": ["agent"], "caption_uri": "/m/2.vtt"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    one, two = read_manifest(str(path), ("customer",))
    assert (one.video_id, one.channel_roles, one.metadata) == (
        "one",
        ("customer",),
        {"consent": "True"},
    )
    assert (two.channel_roles, two.caption_uri) == (("agent",), "/m/2.vtt")
    path.write_text('{"uri": "/ok.mp4"}\n{"video_id": "no uri"}\n')
    with pytest.raises(ValueError, match=r"in.jsonl:2: bad manifest line"):
        read_manifest(str(path), None)

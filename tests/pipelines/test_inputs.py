"""Batch inputs: globs skip sidecars, fail loudly on no match and dead-letter what is not
a regular file; manifest lines parse with the event parser (typed), and a bad line is a
dead letter naming the file, the line and the field (an error with ``strict``)."""

from __future__ import annotations

import json
import os

import pytest

from sentistream.pipelines.inputs import STAGE_INPUTS, expand_inputs, read_manifest


def test_globs_expand_sorted_without_sidecars(tmp_path):
    for name in ("b.mp4", "a.mp4", "a.vtt", "notes.json"):
        (tmp_path / name).write_bytes(b"x")
    got = expand_inputs([str(tmp_path / "*")], channel_roles=("agent", "customer"))
    assert [r.uri for r in got.refs] == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert {r.channel_roles for r in got.refs} == {("agent", "customer")}
    assert got.dead_letters == []


def test_no_input_match_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="matches no media file"):
        expand_inputs([str(tmp_path / "*.mp4")])


def test_glob_matches_that_are_not_files_are_dead_letters_not_skipped(tmp_path):
    (tmp_path / "good.mp4").write_bytes(b"x")
    (tmp_path / "folder.mp4").mkdir()
    os.symlink(tmp_path / "missing.mp4", tmp_path / "dangling.mp4")
    os.symlink(tmp_path / "loop.mp4", tmp_path / "loop.mp4")
    os.mkfifo(tmp_path / "pipe.mp4")
    got = expand_inputs([str(tmp_path / "*.mp4")])
    assert [r.uri for r in got.refs] == [str(tmp_path / "good.mp4")]
    why = {os.path.basename(d.source_uri): d.error for d in got.dead_letters}
    assert set(why) == {"folder.mp4", "dangling.mp4", "loop.mp4", "pipe.mp4"}
    assert "a directory" in why["folder.mp4"]
    assert "dangling symlink" in why["dangling.mp4"]
    assert "cannot be inspected" in why["loop.mp4"]
    assert "FIFO" in why["pipe.mp4"]
    assert {d.stage for d in got.dead_letters} == {STAGE_INPUTS}
    assert {d.error_type for d in got.dead_letters} == {"not_a_regular_file"}
    with pytest.raises(ValueError, match="dangling.mp4.*which is a link to nothing"):
        expand_inputs([str(tmp_path / "*.mp4")], strict=True)


def test_manifest_lines_become_refs(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [
        {"uri": "/m/1.mp4", "video_id": "one", "metadata": {"consent": True}},
        {"uri": "/m/2.mp4", "channel_roles": ["agent"], "caption_uri": "/m/2.vtt"},
        {"uri": "/m/3.mp4", "video_id": 7},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    one, two, three = read_manifest(str(path), ("customer",)).refs
    assert (one.video_id, one.channel_roles, one.metadata) == (
        "one",
        ("customer",),
        {"consent": "true"},
    )
    assert (two.channel_roles, two.caption_uri) == (("agent",), "/m/2.vtt")
    assert three.video_id == "7"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"video_id": "no uri"}', "uri"),
        ('{"uri": 5}', "uri must be a string"),
        ('{"uri": null}', "uri"),
        ('{"uri": "/a.mp4", "video_id": {"x": 1}}', "video_id"),
        ('{"uri": "/a.mp4", "channel_roles": "agent,customer"}', "channel_roles"),
        ('{"uri": "/a.mp4", "channel_roles": [1, 2]}', "channel_roles"),
        ('{"uri": "/a.mp4", "metadata": {"k": [1]}}', "metadata"),
        ("[" * 100_000, "nested too deeply"),
        ("not json", "not valid UTF-8 JSON"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_a_bad_manifest_line_is_a_dead_letter_and_the_others_run(tmp_path, line, field):
    path = tmp_path / "in.jsonl"
    path.write_text(f'{{"uri": "/ok.mp4"}}\n{line}\n{{"uri": "/ok2.mp4"}}\n')
    got = read_manifest(str(path), None)
    assert [r.uri for r in got.refs] == ["/ok.mp4", "/ok2.mp4"]
    (dead,) = got.dead_letters
    assert dead.error.startswith(f"{path}:2: bad manifest line") and field in dead.error
    assert dead.stage == STAGE_INPUTS and len(dead.error) < 400
    with pytest.raises(ValueError, match=r"in.jsonl:2: bad manifest line"):
        read_manifest(str(path), None, strict=True)


def test_a_manifest_line_that_is_not_utf8_is_a_dead_letter(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"uri": "/ok.mp4"}\n{"uri": "/\xff\xfe.mp4"}\n')
    got = read_manifest(str(path), None)
    assert [r.uri for r in got.refs] == ["/ok.mp4"]
    assert "not valid UTF-8" in got.dead_letters[0].error


def test_a_video_id_used_twice_is_a_dead_letter(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [
        {"uri": "/m/a.mp4", "video_id": "call-1"},
        {"uri": "/m/b.mp4", "video_id": "call-1"},
        {"uri": "/m/c.mp4"},
        {"uri": "/m/c.mp4"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines))
    got = expand_inputs([], str(path))
    assert [r.uri for r in got.refs] == ["/m/a.mp4", "/m/c.mp4"]
    b, c = got.dead_letters
    assert b.error_type == "duplicate_video_id" and "'/m/a.mp4'" in b.error
    assert b.video_id == "call-1" and b.source_uri == "/m/b.mp4"
    assert "listed again" in c.error
    with pytest.raises(ValueError, match="already used"):
        expand_inputs([], str(path), strict=True)


def test_a_manifest_that_cannot_be_read_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--manifest .* cannot be read"):
        read_manifest(str(tmp_path), None)  # a directory
    with pytest.raises(ValueError, match="cannot be read"):
        read_manifest(str(tmp_path / "missing.jsonl"), None)

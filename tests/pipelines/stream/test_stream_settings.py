"""``StreamSettings`` and its flags: validation names the argument; the command line maps
onto the fields (defaults from the dataclass); a custom scorer loads by name."""

from __future__ import annotations

import dataclasses

import pytest

from sentistream.pipelines.flags import parser_with
from sentistream.pipelines.stream.graph import default_scorer, load_scorer
from sentistream.pipelines.stream.settings import (
    StreamSettings,
    add_stream_arguments,
    settings_from_args,
)


def _parse(argv: list[str]) -> StreamSettings:
    return settings_from_args(parser_with(None, add_stream_arguments).parse_args(argv))


def test_settings_errors_name_the_argument():
    with pytest.raises(ValueError, match="runtime"):
        StreamSettings(bootstrap="h:1", runtime="spark")
    with pytest.raises(ValueError, match="max_run_s"):
        StreamSettings(bootstrap="h:1", max_run_s=0)
    with pytest.raises(ValueError, match="kafka_io"):
        StreamSettings(bootstrap="h:1", runtime="loop", kafka_io="xlang")
    with pytest.raises(ValueError, match="bootstrap"):
        StreamSettings().read_config()


def test_no_flags_give_the_dataclass_defaults():
    assert _parse([]) == StreamSettings()


def test_flags_map_onto_fields():
    settings = _parse(
        [
            "--bootstrap",
            "k:9092",
            "--input-topic",
            "in",
            "--output",
            "",
            "--max-events",
            "3",
            "--max-run-minutes",
            "0",
            "--no-isolate-runs",
            "--idle-timeout",
            "1.5",
            "--no-check-exists",
            "--runtime",
            "loop",
            "--batch-events",
            "2",
        ]
    )
    assert settings == dataclasses.replace(
        StreamSettings(),
        bootstrap="k:9092",
        input_topic="in",
        output=None,
        max_events=3,
        max_run_s=None,
        isolate_runs=False,
        idle_timeout_s=1.5,
        check_exists=False,
        runtime="loop",
        batch_events=2,
    )
    assert _parse(["--max-run-minutes", "2"]).max_run_s == 120.0


def test_scorer_loads_by_module_or_file(tmp_path):
    assert load_scorer(None) is default_scorer
    assert load_scorer("sentistream.pipelines.stream.graph:default_scorer") is default_scorer
    path = tmp_path / "mine.py"
    path.write_text("def scorer(config):\n    return None\n")
    assert callable(load_scorer(f"{path}:scorer"))
    with pytest.raises(ValueError, match="--scorer"):
        load_scorer("no-colon")
    with pytest.raises(ValueError, match="not callable"):
        load_scorer(f"{path}:missing")

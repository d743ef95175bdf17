"""The processing options: one table, defaults read from the config dataclasses, parsed
once into the frozen ``PipelineConfig``."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from sentistream.pipelines.flags import Flag, field_value, from_args, replace_fields
from sentistream.pipelines.options import (
    AUTO_THREAD_FLAGS,
    MODEL_FLAGS,
    add_model_arguments,
    command_line_defaults,
    config_from_args,
)
from sentistream.transforms.config import PipelineConfig, SegmentConfig


def _config(argv: list[str]) -> PipelineConfig:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_no_flags_give_the_command_line_defaults():
    assert _config([]) == command_line_defaults()


def test_command_line_defaults_differ_from_the_library_only_in_model_runtimes():
    library = PipelineConfig()
    runtimes = ("face.runtime", "voice.runtime", "asr.runtime", "text.runtime")
    threads = ("voice.whisper_threads", "face.detect_threads", "decode.threads")
    changes = {path: field_value(library, path) for path in (*runtimes, *threads)}
    assert replace_fields(command_line_defaults(), changes) == library


def test_every_flag_default_is_its_field_and_shared_fields_agree():
    defaults = command_line_defaults()
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    parsed = parser.parse_args([])
    for flag in MODEL_FLAGS:
        if flag.name in AUTO_THREAD_FLAGS:  # None on the parser: resolved by config_from_args
            assert getattr(parsed, flag.dest) is None
            continue
        values = {field_value(defaults, path) for path in flag.paths}
        assert len(values) == 1, flag.name  # e.g. --device sets every runtime alike
        assert flag.value(getattr(parsed, flag.dest)) == field_value(defaults, flag.path)


def test_flags_set_their_fields():
    cfg = _config(
        [
            "--fps",
            "1",
            "--device",
            "cuda",
            "--threads",
            "3",
            "--whisper-threads",
            "2",
            "--no-captions",
            "--no-asr",
            "--asr-language",
            "",
            "--face-batch-size",
            "4",
            "--policy",
            "agent=text;*=face",
            "--fusion-bundle",
            "fusion-late-mlp",
        ]
    )
    assert cfg.decode.fps == 1.0
    assert {cfg.face.runtime.device, cfg.asr.runtime.device, cfg.text.runtime.device} == {"cuda"}
    assert (cfg.face.runtime.threads, cfg.voice.runtime.threads) == (3, 3)
    assert (cfg.voice.whisper_threads, cfg.asr.runtime.threads) == (2, 2)
    assert not cfg.segment.prefer_captions and not cfg.asr.enabled
    assert cfg.asr.language is None and cfg.face.runtime.max_batch_size == 4
    assert cfg.policy.rules == (("agent", ("text",)), ("*", ("face",)))
    assert cfg.fusion.bundle == "fusion-late-mlp"


def test_related_fields_are_validated_together():
    # min 20 > the default max 15: fine once max is 30 too (one replace per dataclass).
    cfg = _config(["--segment-min", "20", "--segment-max", "30"])
    assert (cfg.segment.min_s, cfg.segment.max_s) == (20.0, 30.0)
    with pytest.raises(ValueError, match="max_s"):
        _config(["--segment-min", "20"])


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="policy rule"):
        _config(["--policy", "agent"])
    with pytest.raises(ValueError, match="neutral_band"):
        _config(["--neutral-band", "2"])


def test_replace_fields_leaves_the_original_alone():
    base = PipelineConfig()
    changed = replace_fields(base, {"segment.min_s": 1.0, "face.runtime.threads": 2})
    assert base == PipelineConfig()
    assert changed.segment == dataclasses.replace(SegmentConfig(), min_s=1.0)
    assert changed.face.runtime.threads == 2


def test_a_flag_table_round_trips_any_frozen_dataclass():
    @dataclasses.dataclass(frozen=True)
    class Job:
        name: str = "a"
        roles: tuple[str, ...] = ()
        limit: int | None = None
        strict: bool = True

    flags = (
        Flag("--name", "name", "name"),
        Flag("--role", "roles", "role", repeat=True),
        Flag("--limit", "limit", "limit", value_type=int),
        Flag("--lenient", "strict", "lenient", negate=True),
    )
    parser = argparse.ArgumentParser()
    for flag in flags:
        flag.add_to(parser, Job())
    assert from_args(parser.parse_args([]), flags, Job()) == Job()
    argv = ["--name", "b", "--role", "x", "--role", "y", "--limit", "3", "--lenient"]
    assert from_args(parser.parse_args(argv), flags, Job()) == Job("b", ("x", "y"), 3, False)


def test_a_flag_whose_default_cannot_be_spelled_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Job:
        strict: bool = False
        roles: tuple[str, ...] = ("agent",)

    with pytest.raises(ValueError, match="--lenient"):
        Flag("--lenient", "strict", "lenient", negate=True).add_to(argparse.ArgumentParser(), Job())
    with pytest.raises(ValueError, match="--role"):
        Flag("--role", "roles", "role", repeat=True).add_to(argparse.ArgumentParser(), Job())


def test_thread_defaults_follow_the_cores_of_a_worker_process():
    """Worker processes that share the cores get one thread each (2 workers on 2 cores with
    2 threads each ran at 0.6-0.7x of 1 thread each: docs/scaling.md); a flag given wins."""
    import os

    from sentistream.pipelines.runner import cores_per_worker

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    one = config_from_args(parser.parse_args([]), cores=1)
    assert (one.voice.whisper_threads, one.asr.runtime.threads) == (1, 1)
    assert (one.face.detect_threads, one.decode.threads) == (1, 1)
    many = config_from_args(parser.parse_args([]), cores=16)
    assert (many.voice.whisper_threads, many.face.detect_threads, many.decode.threads) == (4, 2, 4)
    given = config_from_args(parser.parse_args(["--whisper-threads", "3"]), cores=1)
    assert (given.voice.whisper_threads, given.face.detect_threads) == (3, 1)

    cpus = os.cpu_count() or 1
    assert cores_per_worker([]) == cpus
    assert cores_per_worker([], workers=2) == max(1, cpus // 2)
    assert cores_per_worker(["--runner", "DirectRunner"], workers=cpus * 4) == 1
    assert cores_per_worker(["--runner=DaskRunner"]) == 1
    assert cores_per_worker(["--runner", "DataflowRunner"]) == 1

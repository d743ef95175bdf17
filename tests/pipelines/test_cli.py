"""The ``sentistream`` command: every subcommand registered, errors as one line with exit
code 2 (a missing ``demo`` extra names the extra), and the ``python -m`` entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sentistream.pipelines import cli
from sentistream.pipelines.demo import local as demo
from sentistream.pipelines.stream import command as stream


def test_parser_registers_every_command():
    parser = cli.build_parser()
    assert parser.parse_args(["stream", "--max-events", "3"]).func is stream.run_from_args
    assert parser.parse_args(["demo"]).func is demo.run_from_args
    assert parser.parse_args(["run"]).func is cli._cmd_run
    assert parser.parse_args(["sample"]).func is cli._cmd_sample
    assert parser.parse_args(["train", "face", "--data", "d", "--out", "o"]).command == "train"
    assert parser.parse_args(["dashboard", "out"]).func is cli._cmd_dashboard
    assert parser.parse_args(["report", "v1"]).func is cli._cmd_report


def test_dashboard_on_a_folder_that_is_not_there_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["dashboard", str(tmp_path / "nothing")]) == 2
    assert "is not an output folder" in capsys.readouterr().err


def test_run_without_the_demo_extra_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "skimage", None)  # as if scikit-image were absent
    assert cli.main(["run", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "sentistream[demo]" in err[0] and "scikit-image" in err[0]
    assert not (tmp_path / "out").exists()


def test_input_matching_nothing_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["run", "--input", str(tmp_path / "*.mp4")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"sentistream: error: --input {str(tmp_path / '*.mp4')!r} matches no media file"
    )


def test_bad_processing_option_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["run", "--input", str(tmp_path), "--policy", "agent"]) == 2
    assert "policy rule 'agent'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "flag"),
    [("sentistream.pipelines.batch", "--manifest"), ("sentistream.pipelines.stream", "--scorer")],
)
def test_python_m_entry_points_take_the_same_flags(module, flag):
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert flag in done.stdout and "--fps" in done.stdout and "--policy" in done.stdout


@pytest.mark.slow
def test_the_installed_command_ends_a_run_with_its_output_flushed(stereo_call, tmp_path):
    """``sentistream run`` ends the process as soon as the run is published (no
    interpreter teardown): its summary reaches stdout, its rows are on disk, its exit
    code is kept; an error still exits 2 with its one line."""
    from pathlib import Path

    import pyarrow.dataset as ds

    command = str(Path(sys.executable).parent / "sentistream")
    out = tmp_path / "out"
    done = subprocess.run(
        [command, "run", "--input", str(stereo_call[0]), "--output", str(out), "--no-asr",
         "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "speaker" in done.stdout and "fused" in done.stdout  # the summary table
    assert ds.dataset(out / "scores", format="parquet", partitioning="hive").count_rows() > 0
    bad = subprocess.run(
        [command, "run", "--input", str(tmp_path / "none*.mp4")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert bad.returncode == 2 and "matches no media file" in bad.stderr

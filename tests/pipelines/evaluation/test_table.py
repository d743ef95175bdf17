"""pipelines/evaluation/table.py: the README's models table is the reports' numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentistream.pipelines.evaluation import table


def test_readme_table_matches_the_reports() -> None:
    text = table.README.read_text(encoding="utf-8")
    assert table.splice(text, table.render()) == text, (
        "README models table is stale: run `sentistream evaluate table --write`"
    )


def test_every_row_reads_its_numbers_from_a_report(tmp_path: Path) -> None:
    row = table.Row(
        "m `{model_id}`",
        "held-out",
        "r.json",
        (table.Figure("accuracy", "a/acc"),),
        (table.Figure("majority", "a/maj"),),
        "cmd",
    )
    (tmp_path / "r.json").write_text(json.dumps({"model_id": "m@1", "a": {"acc": 0.8123}}))
    with pytest.raises(ValueError, match="no figure 'a/maj'"):
        table.render(tmp_path, [row])
    (tmp_path / "r.json").write_text(
        json.dumps({"model_id": "m@1", "a": {"acc": 0.8123, "maj": 0.5}})
    )
    out = table.render(tmp_path, [row])
    assert out.splitlines()[2] == "| m `m@1` | held-out | accuracy 0.812 | majority 0.500 | cmd |"
    with pytest.raises(ValueError, match="does not exist"):
        table.render(tmp_path / "none", [row])


def test_splice_replaces_only_the_marked_block() -> None:
    text = f"intro\n{table.BEGIN}\nold\n{table.END}\nrest\n"
    assert table.splice(text, "new\n") == f"intro\n{table.BEGIN}\nnew\n{table.END}\nrest\n"
    with pytest.raises(ValueError, match="markers"):
        table.splice("no markers", "x")

"""The import contract of STYLE.md, checked with import-linter (``[tool.importlinter]`` in
pyproject.toml): pipelines/ -> transforms/ -> models/, never upwards; models/ and
transforms/media/ free of Beam; no import cycles between siblings.

Plus the two ways such a check silently stops checking: an import graph that found no
modules (``sentistream`` is a namespace package the editable install maps with a path
hook; grimp cannot walk it, hence the three root packages), and a contract that can no
longer fail.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import grimp
from importlinter import api

REPO = Path(__file__).resolve().parent.parent
ROOTS = ("sentistream.pipelines", "sentistream.transforms", "sentistream.models")
CONTRACTS = {"layers", "models-no-beam", "media-no-beam", "no-cycles"}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_roots_resolve_to_this_checkout_and_the_graph_is_not_empty():
    for root in ROOTS:
        spec = importlib.util.find_spec(root)
        assert spec is not None and spec.origin is not None, root
        assert Path(spec.origin).resolve().is_relative_to(REPO), (root, spec.origin)
    graph = grimp.build_graph(*ROOTS, include_external_packages=True, cache_dir=None)
    assert len(graph.modules) > 100
    imported = graph.find_modules_directly_imported_by("sentistream.transforms.score")
    assert "apache_beam" in imported and "sentistream.transforms.plan" in imported


def test_pyproject_declares_the_contracts_on_these_roots():
    config = api.read_configuration(str(REPO / "pyproject.toml"))
    assert tuple(config["session_options"]["root_packages"]) == ROOTS
    assert {c["id"] for c in config["contracts_options"]} >= CONTRACTS


def test_the_import_contracts_hold():
    done = lint_imports()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


def test_the_check_fails_on_a_violation(tmp_path: Path):
    """The same tool, on contracts the code is known to break: transforms/ imports models/
    (so ``models`` above ``transforms`` is broken) and the score step imports Beam."""
    config = tmp_path / ".importlinter"
    config.write_text(
        "[importlinter]\n"
        "root_packages =\n    sentistream.transforms\n    sentistream.models\n"
        "include_external_packages = True\n\n"
        "[importlinter:contract:upside-down]\n"
        "name = models above transforms\ntype = layers\n"
        "layers =\n    sentistream.models\n    sentistream.transforms\n\n"
        "[importlinter:contract:score-no-beam]\n"
        "name = score without Beam\ntype = forbidden\n"
        "source_modules = sentistream.transforms.score\nforbidden_modules = apache_beam\n"
    )
    done = lint_imports(str(config))
    assert done.returncode != 0
    assert done.stdout.count("BROKEN") == 2, done.stdout
    assert "sentistream.transforms.score -> apache_beam" in done.stdout

"""The built wheel must be complete: Beam ships it to remote workers, and the editable
install can hide a subpackage or weights file the wheel lacks."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = [
    "sentistream.pipelines.cli",
    "sentistream.pipelines.batch",
    "sentistream.transforms.score",
    "sentistream.models.bundle",
]


def _source_modules() -> set[str]:
    names = set()
    for top in ("pipelines", "transforms", "models"):
        for path in (REPO / top).rglob("*.py"):
            rel = path.relative_to(REPO).with_suffix("")
            names.add("sentistream/" + "/".join(rel.parts) + ".py")
    return names


def test_editable_install_imports_namespaced_packages():
    import sentistream.models.bundle as bundle
    import sentistream.pipelines.cli as cli

    assert Path(cli.__file__).parent.name == "pipelines"
    assert bundle.shipped_weights_dir().is_dir()
    assert "models" not in sys.modules or not hasattr(sys.modules["models"], "bundle")


@pytest.mark.slow
def test_built_wheel_is_complete_and_imports(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("sentistream-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = _source_modules() - names
    assert not missing, f"modules missing from the wheel: {sorted(missing)}"
    prefix = "sentistream/models/weights/"
    weights = sorted(n[len(prefix) :] for n in names if n.startswith(prefix))
    shipped = sorted(
        str(p.relative_to(REPO / "models" / "weights"))
        for p in (REPO / "models" / "weights").glob("*/*")
        if p.is_file() and p.suffix in {".pt", ".json", ".md", ".txt"}
    )
    assert [n for n in weights if not n.endswith(".py")] == shipped
    for bundle in {n.split("/")[0] for n in shipped}:  # one folder per bundle, all parts in it
        assert {f"{bundle}/{f}" for f in ("bundle.json", "weights.pt", "card.md")} <= set(shipped)
    assert not any(n.startswith("sentistream/docs/") or "report" in n for n in weights)
    assert not any(n.startswith(("models/", "pipelines/", "transforms/")) for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    code = (
        "import importlib, sys\n"
        f"mods = {MODULES!r}\n"
        "for m in mods:\n"
        "    mod = importlib.import_module(m)\n"
        f"    assert mod.__file__.startswith({str(target)!r}), (m, mod.__file__)\n"
        "from sentistream.models.bundle import shipped_weights_dir\n"
        "print(len(list(shipped_weights_dir().glob('*/bundle.json'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(len({n.split("/")[0] for n in shipped}))

"""deploy/requirements.txt and the worker image stay in step with pyproject.toml."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
FIX = "regenerate it: python deploy/export_requirements.py > deploy/requirements.txt"


def _export() -> str:
    out = subprocess.run(
        [sys.executable, str(DEPLOY / "export_requirements.py")],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def _pins() -> dict[str, Requirement]:
    lines = (DEPLOY / "requirements.txt").read_text(encoding="utf-8").splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {r.name.lower(): r for r in reqs}


def test_requirements_txt_matches_pyproject():
    assert (DEPLOY / "requirements.txt").read_text(encoding="utf-8") == _export(), FIX


def test_requirements_keep_the_pairs_that_must_not_drift():
    pins = _pins()
    # torchaudio's wheel declares no torch dependency: both must be pinned, to one version.
    assert str(pins["torch"].specifier) == str(pins["torchaudio"].specifier)
    assert str(pins["torch"].specifier).startswith("==")
    for name, req in pins.items():
        assert not req.extras, f"{name}: no extras on workers (beam's [torch] pins an old torch)"


def test_dockerfile_base_image_matches_the_beam_pin():
    beam = str(_pins()["apache-beam"].specifier)
    assert beam.startswith("=="), "apache-beam must be pinned exactly for the worker image"
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"apache/beam_python(\d+)\.(\d+)_sdk:([\w.]+)", dockerfile)
    assert match, "deploy/Dockerfile must start FROM apache/beam_pythonX.Y_sdk:VERSION"
    assert match.group(3) == beam[2:], "the SDK image and the apache-beam pin differ"
    assert (int(match.group(1)), int(match.group(2))) >= (3, 11)


def test_export_rejects_a_pyproject_without_dependencies(tmp_path):
    sys.path.insert(0, str(DEPLOY))
    try:
        import export_requirements
    finally:
        sys.path.remove(str(DEPLOY))
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="dependencies"):
        export_requirements.requirements(bad)


def test_flink_manifest_matches_the_beam_pin():
    yaml = pytest.importorskip("yaml")
    beam = str(_pins()["apache-beam"].specifier)[2:]
    docs = list(yaml.safe_load_all((DEPLOY / "flink" / "sentistream-flink.yaml").read_text()))
    by_kind = {d["kind"]: d for d in docs}
    flink = by_kind["FlinkDeployment"]["spec"]
    flink_version = flink["flinkVersion"].removeprefix("v").replace("_", ".")
    job_server = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert job_server == f"apache/beam_flink{flink_version}_job_server:{beam}"
    containers = {c["name"]: c for c in flink["taskManager"]["podTemplate"]["spec"]["containers"]}
    assert containers["beam-worker-pool"]["args"] == ["--worker_pool"]
    assert containers["beam-worker-pool"]["ports"][0]["containerPort"] == 50000

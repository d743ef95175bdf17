"""Print the runtime dependencies pinned in pyproject.toml as a pip requirements file.

    python deploy/export_requirements.py > deploy/requirements.txt

``deploy/requirements.txt`` is what the worker container (``deploy/Dockerfile``) and
Dataflow's ``--requirements_file`` install; ``tests/deploy/test_requirements_sync.py``
fails when it drifts from pyproject.toml. Only ``[project].dependencies`` are exported
(the ``dev`` extra is not needed on workers), in pyproject's order.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
HEADER = (
    "# Generated from pyproject.toml by deploy/export_requirements.py; do not edit.\n"
    "# python deploy/export_requirements.py > deploy/requirements.txt\n"
)


def requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The ``[project].dependencies`` of ``pyproject``, as written there."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    deps = project.get("dependencies")
    if not deps:
        raise ValueError(f"{pyproject}: [project].dependencies is missing or empty")
    return [str(d).strip() for d in deps]


def render(pyproject: Path = PYPROJECT) -> str:
    """The requirements file's full text."""
    return HEADER + "".join(f"{dep}\n" for dep in requirements(pyproject))


if __name__ == "__main__":
    print(render(), end="")

"""Print a short hash of the dependency pins in pyproject.toml (venv cache key)."""

import hashlib
import json
import sys
import tomllib
from pathlib import Path

project = tomllib.loads(
    Path(__file__).resolve().parent.parent.joinpath("pyproject.toml").read_text()
)["project"]
key = json.dumps(
    [sys.version_info[:2], project["dependencies"], project.get("optional-dependencies", {})]
)
print(hashlib.sha256(key.encode()).hexdigest()[:16])

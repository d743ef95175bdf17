"""Reports of ``sentistream train`` / ``evaluate``: the JSON file and its Markdown copy
(rendered by :func:`sentistream.models.training.cards.render_markdown`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentistream.models.training.cards import render_markdown


def write_report(report: dict[str, Any], path: Path) -> None:
    """``path`` (JSON) and ``path`` with suffix ``.md`` (Markdown)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    path.with_suffix(".md").write_text(render_markdown(report), encoding="utf-8")

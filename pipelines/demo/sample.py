"""The built-in DEMO sample, behind the ``demo`` extra.

``sentistream run`` without ``--input``, ``sentistream demo`` and ``sentistream sample``
use a generated clip (``synth.make_sample``): speech from espeak-ng (``espeakng-loader``)
and NASA's public-domain astronaut portrait (``scikit-image``). Those packages are the
optional ``demo`` extra; without them the commands say which extra to install.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

# import name -> distribution name, of the ``demo`` extra in pyproject.toml
DEMO_PACKAGES = {"espeakng_loader": "espeakng-loader", "skimage": "scikit-image"}
DEMO_BANNER = "(a generated clip: NASA's public-domain astronaut portrait + synthesized speech)"


class MissingDemoExtra(ImportError):
    """The demo sample needs packages of the ``demo`` extra that are not installed."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sentistream`` (else ``~/.cache/sentistream``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sentistream"


def require_demo_extra() -> None:
    """Raise ``MissingDemoExtra`` naming the extra and the missing packages, if any."""
    missing = []
    for module, dist in DEMO_PACKAGES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    if missing:
        raise MissingDemoExtra(
            "the built-in demo sample needs the 'demo' extra: pip install 'sentistream[demo]' "
            f"(missing: {', '.join(missing)})"
        )


def builtin_sample(folder: Path | None = None) -> Path:
    """Write (or reuse) the demo sample in ``folder`` (default: the user cache)."""
    require_demo_extra()
    from sentistream.pipelines.demo.synth import make_sample

    return make_sample(folder if folder is not None else default_cache_dir() / "sample")

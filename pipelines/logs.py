"""The one logging setup of the command-line entry points."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

LEVEL_ENV = "SENTISTREAM_LOG"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Chatty at INFO while a stream runs (kafka-python per poll, Beam per bundle).
STREAM_NOISY = ("kafka", "apache_beam")


class QuietBeamImport(logging.Filter):
    """Beam logs 'apitools not found' on import when the GCP extras are absent: noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("apitools not found")


def default_level(fallback: str = "WARNING") -> str:
    """``$SENTISTREAM_LOG``, else ``fallback``."""
    return os.environ.get(LEVEL_ENV, fallback)


def configure_logging(level: str, *, quiet: Iterable[str] = ()) -> None:
    """Root logging at ``level`` (a name such as ``INFO``); the loggers in ``quiet`` at
    WARNING or above. Forced: importing Beam may already have configured the root logger."""
    logging.basicConfig(level=level.upper(), format=FORMAT, force=True)
    root = logging.getLogger()
    root.addFilter(QuietBeamImport())
    for name in quiet:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))

"""The progress of a batch run: files done of total, media seconds scored, real-time
factor and time left.

On a terminal one line is redrawn in place (on stderr, so stdout stays for results); when
stderr is not a terminal (a log file, CI) a plain, time-stamped line is written every
``log_every_s`` instead, and one at the end. The workers note each finished input
(``transforms/io/progress.py``); a thread here reads their notes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from typing import TextIO

from sentistream.transforms.io.progress import Progress, ProgressLog, read_progress


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(done: Progress, total: int, elapsed_s: float) -> str:
    """``12/168 files  734.0 s of media  5.2x real time  ETA 3:05`` (pure)."""
    rtf = done.media_s / elapsed_s if elapsed_s > 0 else 0.0
    left = total - done.inputs
    if done.inputs and left > 0:
        eta = _clock(elapsed_s / done.inputs * left)
    else:
        eta = "-:--" if left > 0 else "0:00"
    return (
        f"{done.inputs}/{total} files  {done.media_s:.1f} s of media  "
        f"{rtf:.1f}x real time  elapsed {_clock(elapsed_s)}  ETA {eta}"
    )


class ProgressDisplay:
    """Shows a run's progress while it runs: ``with ProgressDisplay(total) as p:`` then
    pass ``p.log`` to the pipeline (``ScoreVideos(progress=...)``).

    Args:
        total: inputs the run scores.
        stream: where to draw (default stderr); a terminal gets a redrawn line.
        interval_s: how often the notes are read.
        log_every_s: without a terminal, a log line this often (and one at the end).
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        interval_s: float = 0.5,
        log_every_s: float = 30.0,
    ) -> None:
        self.total = total
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval_s = interval_s
        self._log_every_s = log_every_s
        self._folder = tempfile.mkdtemp(prefix="sentistream-progress-")
        self.log = ProgressLog(self._folder)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._started = 0.0
        self.last = Progress(0, 0.0)

    def __enter__(self) -> ProgressDisplay:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._show(final=True)
        shutil.rmtree(self._folder, ignore_errors=True)

    def _run(self) -> None:
        last_log = time.monotonic()
        while not self._stop.wait(self._interval_s):
            if self._tty:
                self._show()
            elif time.monotonic() - last_log >= self._log_every_s:
                self._show()
                last_log = time.monotonic()

    def _show(self, final: bool = False) -> None:
        done = read_progress(self._folder)
        self.last = Progress(min(done.inputs, self.total), done.media_s)
        line = progress_line(self.last, self.total, time.monotonic() - self._started)
        if self._tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self._stream.write("\r" + line[:width].ljust(width) + ("\n" if final else ""))
            self._stream.flush()
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self._stream.write(f"{stamp} progress: {line}\n")
            self._stream.flush()

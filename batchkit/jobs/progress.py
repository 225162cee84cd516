"""Showing a job's progress while a handle waits: a status line on stderr (rewritten in place on a
terminal, one line per change otherwise), or the display a notebook plugs in.

Nothing here imports IPython. When batchkit is imported where IPython runs, `batchkit.notebook`
plugs in its HTML bar (`use_notebook_progress`); `auto_progress` asks it first.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TextIO

from batchkit.jobs.display import progress_text
from batchkit.models import Job


class ProgressDisplay(Protocol):
    """What shows a waiting job: each snapshot, then the final one. A display may also have
    `notice(job_id, finding)`, which a handle calls with the doctor's leading finding about a job
    that stays RUNNABLE (a `batchkit.doctor.findings.Finding`)."""

    def __call__(self, job: Job) -> None: ...

    def close(self, job: Job) -> None: ...


class Notice(Protocol):
    """What the status line shows of a doctor's finding (`Finding.why`)."""

    def why(self, job_id: str) -> str: ...


NotebookProgress = Callable[[], ProgressDisplay | None]
"""The notebook's display when this code runs in a Jupyter kernel, else None."""

_notebook_progress: NotebookProgress | None = None


def use_notebook_progress(factory: NotebookProgress) -> None:
    """Let `auto_progress` ask `factory` for a notebook display first (`batchkit.notebook`)."""
    global _notebook_progress
    _notebook_progress = factory


class TextProgress:
    """A status line on `stream`: rewritten in place on a terminal, else one line per change."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._last = ""
        self._width = 0

    def __call__(self, job: Job) -> None:
        line = progress_text(job)
        if line == self._last:
            return
        self._last = line
        if self._tty:
            self._stream.write("\r" + line.ljust(self._width))
            self._width = max(self._width, len(line))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def notice(self, job_id: str, finding: Notice) -> None:
        """The doctor's leading finding about a job that stays RUNNABLE, on its own line."""
        if self._tty and self._last:
            self._stream.write("\n")
        self._stream.write(finding.why(job_id) + "\n")
        self._stream.flush()

    def close(self, job: Job) -> None:
        self(job)
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def auto_progress(stream: TextIO | None = None) -> ProgressDisplay:
    """The right progress display for where this code runs: the notebook's in a Jupyter kernel,
    else a status line on `stream` (default stderr)."""
    shown = _notebook_progress() if _notebook_progress is not None else None
    return shown if shown is not None else TextProgress(stream)

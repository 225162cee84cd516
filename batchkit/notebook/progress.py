"""Showing a job's progress while a handle waits: an HTML bar updated in place in Jupyter, a status
line on stderr elsewhere (rewritten in place on a terminal, one line per change otherwise)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from batchkit.doctor.findings import Finding
from batchkit.models import Job
from batchkit.notebook.render import notice_html, progress_html, progress_text


def in_notebook() -> bool:
    """Whether we run inside a Jupyter kernel (IPython is looked up, never imported here)."""
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return False
    shell = ipython_module.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class HtmlProgress:
    """One HTML display, replaced at every update (an IPython display handle)."""

    def __init__(self) -> None:
        self._handle: Any = None

    def __call__(self, job: Job) -> None:
        from IPython.display import HTML, display

        view = HTML(progress_html(job))  # type: ignore[no-untyped-call]
        if self._handle is None:
            self._handle = display(view, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._handle.update(view)

    def close(self, job: Job) -> None:
        self(job)

    def notice(self, job_id: str, finding: Finding) -> None:
        """The doctor's leading finding about a job that stays RUNNABLE, shown once."""
        from IPython.display import HTML, display

        display(HTML(notice_html(job_id, finding)))  # type: ignore[no-untyped-call]


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

    def notice(self, job_id: str, finding: Finding) -> None:
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


def auto_progress(stream: TextIO | None = None) -> HtmlProgress | TextProgress:
    """The right progress display for where this code runs (text goes to `stream`, default
    stderr)."""
    return HtmlProgress() if in_notebook() else TextProgress(stream)

"""A job's progress in Jupyter: an HTML bar updated in place while a handle waits. The status line
used everywhere else is `batchkit.jobs.progress`, which asks this module first once `install()`
has plugged it in (`batchkit` does so when it is imported where IPython runs)."""

from __future__ import annotations

import html
import sys
from typing import Any

from batchkit.doctor.findings import Finding
from batchkit.jobs.display import progress_html
from batchkit.jobs.progress import use_notebook_progress
from batchkit.models import Job


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


def notice_html(job_id: str, finding: Finding) -> str:
    fix = f"<br><b>fix:</b> {html.escape(finding.fix)}" if finding.fix else ""
    return (
        f"<div><b>why {html.escape(job_id)}</b> ({html.escape(finding.verdict.value)}, "
        f"{html.escape(finding.check)}): {html.escape(finding.seen)}{fix}</div>"
    )


def notebook_progress() -> HtmlProgress | None:
    """The HTML bar in a Jupyter kernel, else None (the caller shows a status line)."""
    return HtmlProgress() if in_notebook() else None


def install() -> None:
    """Make what `Job.wait` shows (`jobs.progress.auto_progress`) an HTML bar in Jupyter."""
    use_notebook_progress(notebook_progress)

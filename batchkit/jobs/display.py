"""HTML and text for jobs in Jupyter and in a terminal: pure functions over job snapshots.

A handle's `_repr_html_` and a job list's table come from here; `jobs.progress` (a status line) and
`notebook.progress` (an HTML bar, the one that imports IPython) decide where the text goes. Every
value from a job is escaped: job names, reasons and commands are user data.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from batchkit.models import Job, JobKind, JobStatus

STATUS_COLORS = {
    JobStatus.SUBMITTED: "#9e9e9e",
    JobStatus.PENDING: "#9e9e9e",
    JobStatus.RUNNABLE: "#f0ad4e",
    JobStatus.STARTING: "#5bc0de",
    JobStatus.RUNNING: "#337ab7",
    JobStatus.SUCCEEDED: "#2e7d32",
    JobStatus.FAILED: "#c62828",
}

_BAR_ORDER = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.RUNNING, JobStatus.STARTING)


def counts(job: Job) -> tuple[dict[JobStatus, int], int]:
    """How many children (or, for a single job, the job itself) are in each status, and the
    total."""
    total = job.child_count
    if total == 0:
        return {job.status: 1}, 1
    tally: dict[JobStatus, int] = {}
    for name, count in job.status_summary.items():
        try:
            tally[JobStatus(name)] = tally.get(JobStatus(name), 0) + int(count)
        except ValueError:
            continue
    if job.status.is_final and sum(tally.values()) == 0:
        tally = {job.status: total}
    return tally, total


def _finished(tally: dict[JobStatus, int]) -> int:
    """How many of the counted jobs have ended (SUCCEEDED or FAILED)."""
    return tally.get(JobStatus.SUCCEEDED, 0) + tally.get(JobStatus.FAILED, 0)


def progress_text(job: Job, width: int = 30) -> str:
    """One status line: `name id [#######-----] 7/10 RUNNING (3 running, 1 failed) 12s`."""
    tally, total = counts(job)
    finished = _finished(tally)
    filled = int(width * finished / total) if total else 0
    bar = "#" * filled + "-" * (width - filled)
    details = ", ".join(
        f"{tally[s]} {s.value.lower()}"
        for s in (JobStatus.RUNNING, JobStatus.FAILED)
        if tally.get(s) and job.kind is not JobKind.SINGLE
    )
    line = f"{job.name} {job.job_id} [{bar}] {finished}/{total} {job.status.value}"
    if details:
        line += f" ({details})"
    elapsed = _elapsed(job)
    if elapsed:
        line += f" {elapsed}"
    if job.status is JobStatus.FAILED and job.status_reason:
        line += f" - {job.status_reason}"
    return line


def progress_html(job: Job) -> str:
    """A stacked bar (succeeded, failed, running, starting) with the status and counts."""
    tally, total = counts(job)
    segments = []
    for status in _BAR_ORDER:
        share = tally.get(status, 0) / total if total else 0.0
        if share > 0:
            segments.append(
                f'<div title="{tally[status]} {status.value}" style="width:{share * 100:.2f}%;'
                f'background:{STATUS_COLORS[status]};height:100%;float:left"></div>'
            )
    finished = _finished(tally)
    caption = f"{finished}/{total} done" if job.child_count else job.status.value
    return (
        '<div class="batchkit-progress" style="font-family:monospace;margin:2px 0">'
        f"{_badge(job.status)} <b>{html.escape(job.name)}</b> "
        f'<span style="color:#777">{html.escape(job.job_id)}</span>'
        '<div style="width:320px;height:10px;background:#eee;border-radius:3px;overflow:hidden;'
        f'margin:3px 0">{"".join(segments)}</div>'
        f"<span>{html.escape(caption)}{_elapsed_html(job)}</span>"
        f"{_reason_html(job)}</div>"
    )


def job_html(job: Job) -> str:
    """A small card for one job: status, ids, shape, resources, times, reason."""
    rows = [
        ("id", job.display_id),
        ("status", job.status.value),
        ("kind", job.kind.value),
        ("queue", job.queue),
        ("image", job.image or "(cluster default)"),
        (
            "resources",
            f"{job.resources.vcpus:g} vCPU, {job.resources.memory} MiB"
            + (f", {job.resources.gpus} GPU" if job.resources.gpus else ""),
        ),
        ("created", _when(job.created_at)),
        ("started", _when(job.started_at)),
        ("stopped", _when(job.stopped_at)),
        ("exit code", "" if job.exit_code is None else str(job.exit_code)),
        ("reason", job.status_reason or ""),
    ]
    body = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{html.escape(key)}</th>'
        f'<td style="text-align:left">{html.escape(value)}</td></tr>'
        for key, value in rows
        if value
    )
    return (
        '<div class="batchkit-job">'
        f"{progress_html(job)}"
        f'<details><summary>details</summary><table style="font-size:90%">{body}</table>'
        "</details></div>"
    )


def jobs_table_html(jobs: Sequence[Job]) -> str:
    """A status table like `batchkit stat`'s."""
    head = "".join(
        f'<th style="text-align:left">{name}</th>'
        for name in ("id", "name", "status", "progress", "started", "stopped", "exit", "reason")
    )
    rows = []
    for job in jobs:
        tally, total = counts(job)
        finished = _finished(tally)
        cells = (
            html.escape(job.display_id),
            html.escape(job.name),
            _badge(job.status),
            f"{finished}/{total}" if job.child_count else "",
            html.escape(_when(job.started_at)),
            html.escape(_when(job.stopped_at)),
            "" if job.exit_code is None else str(job.exit_code),
            html.escape(job.status_reason or ""),
        )
        rows.append(
            "<tr>" + "".join(f'<td style="text-align:left">{c}</td>' for c in cells) + "</tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="8"><i>no jobs</i></td></tr>')
    return (
        f'<table class="batchkit-jobs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def jobs_table_text(jobs: Sequence[Job]) -> str:
    """The same table as plain text, for a terminal."""
    lines = [f"{'id':<40} {'name':<20} {'status':<10} {'exit':>4}  reason"]
    for job in jobs:
        exit_code = "" if job.exit_code is None else str(job.exit_code)
        lines.append(
            f"{job.display_id:<40} {job.name[:20]:<20} {job.status.value:<10} {exit_code:>4}  "
            f"{job.status_reason or ''}"
        )
    return "\n".join(lines)


def _badge(status: JobStatus) -> str:
    return (
        f'<span style="background:{STATUS_COLORS[status]};color:white;padding:0 4px;'
        f'border-radius:3px;font-size:85%">{status.value}</span>'
    )


def _elapsed(job: Job) -> str:
    if job.started_at is None:
        return ""
    end = job.stopped_at if job.stopped_at is not None else int(time.time() * 1000)
    seconds = max(0, end - job.started_at) // 1000
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _elapsed_html(job: Job) -> str:
    elapsed = _elapsed(job)
    return f' <span style="color:#777">{elapsed}</span>' if elapsed else ""


def _reason_html(job: Job) -> str:
    if job.status is not JobStatus.FAILED or not job.status_reason:
        return ""
    color = STATUS_COLORS[JobStatus.FAILED]
    return f'<div style="color:{color}">{html.escape(job.status_reason)}</div>'


def _when(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_ms / 1000))

"""How the job commands render (the terminal, the job tables and sentences): data goes to stdout,
messages and progress to stderr. Log lines are printed by `cli.logprint`, queues and hosts by
`cli.queueprint`, clusters and images by `cli.clusterprint` and `cli.imageprint`.

Layouts follow awsbatch-cli so its users feel at home: awsbstat's table (tabulate's "simple"
format) and its details view (`{key:25}: {value}` lines and a 25-dash separator), awsbout's
`<ISO 8601 local time>: <message>` lines, awsbsub's and awsbkill's sentences. `--json` prints the
same data as JSON. Colour is used only on a terminal (and never when NO_COLOR is set).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from batchkit.models import Job, JobStatus

if TYPE_CHECKING:
    from batchkit.jobs.kill import KillResult

_STATUS_COLOURS = {
    JobStatus.SUCCEEDED: "32",
    JobStatus.FAILED: "31",
    JobStatus.RUNNING: "36",
    JobStatus.STARTING: "36",
}


class Terminal:
    """Where output goes: data to `out` (stdout), messages and progress to `err` (stderr)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._status_open = False  # a progress line waits on stderr without its newline

    @property
    def colour(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty()) and "NO_COLOR" not in os.environ

    def data(self, text: str) -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    def json(self, value: Any) -> None:
        self.data(json.dumps(value, indent=2, default=str))

    def json_line(self, value: Any) -> None:
        self.data(json.dumps(value, default=str))

    def message(self, text: str) -> None:
        self.end_status()
        self.err.write(text + "\n")
        self.err.flush()

    def status(self, text: str) -> None:
        """A progress line: rewritten in place on a terminal, one line per call elsewhere."""
        isatty = getattr(self.err, "isatty", None)
        if not (isatty and isatty()):
            self.message(text)
            return
        self.err.write("\r\x1b[K" + text)
        self.err.flush()
        self._status_open = True

    def end_status(self) -> None:
        if self._status_open:
            self.err.write("\n")
            self._status_open = False

    def paint_status(self, status: JobStatus) -> Callable[[str], str]:
        code = _STATUS_COLOURS.get(status)
        if not self.colour or code is None:
            return lambda cell: cell
        return lambda cell: f"\x1b[{code}m{cell}\x1b[0m"


def iso_time(epoch_ms: int | None) -> str:
    """awsbatch-cli's time format: local time, seconds precision, ISO 8601 with offset."""
    if epoch_ms is None:
        return "-"
    return _iso_second(epoch_ms // 1000)


@functools.lru_cache(maxsize=256)
def _iso_second(epoch_s: int) -> str:
    """One second, formatted once: `out` prefixes every line with its time, and a burst of lines
    shares a second (the local-time conversion is most of the cost of printing a line)."""
    return datetime.fromtimestamp(epoch_s).astimezone().isoformat()


def cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    paint: Sequence[Callable[[str], str] | None] | None = None,
    paint_column: int = 0,
) -> str:
    """tabulate's "simple" format: a header, dashes two wider than the header, left-aligned.
    `paint[i]` (colour codes, applied after padding so widths stay right) wraps row i's cell in
    `paint_column`."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [len(header) + 2 for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for index, row in enumerate(cells):
        painter = paint[index] if paint else None
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if painter is not None:
            padded[paint_column] = painter(padded[paint_column])
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"


def details(items: Sequence[Sequence[tuple[str, object]]]) -> str:
    """awsbatch-cli's details view: `key: value` lines, a 25-dash line after each item."""
    if not items:
        return "No items to show\n"
    out: list[str] = []
    for item in items:
        out.extend(f"{key:25}: {cell(value)!s}" for key, value in item)
        out.append("-" * 25)
    return "\n".join(out) + "\n"


JOB_COLUMNS = ("jobId", "jobName", "status", "startedAt", "stoppedAt", "exitCode")


def job_table(jobs: Sequence[Job], term: Terminal) -> str:
    """awsbstat's table; with a `queue` column after the name when the jobs come from more than
    one queue (`stat` of a multi-queue cluster without `--queue`)."""
    several = len({job.queue for job in jobs}) > 1
    columns = (*JOB_COLUMNS[:2], "queue", *JOB_COLUMNS[2:]) if several else JOB_COLUMNS
    rows = [
        (
            job.display_id,
            job.name,
            *((job.queue,) if several else ()),
            job.status.value,
            iso_time(job.started_at),
            iso_time(job.stopped_at),
            job.exit_code,
        )
        for job in jobs
    ]
    paint = [term.paint_status(job.status) for job in jobs]
    return table(columns, rows, paint, paint_column=columns.index("status"))


def job_json(job: Job) -> dict[str, Any]:
    """`--json` for a job: Batch's vocabulary, plus `userCommand` (what was typed, without the
    wrapper that `command` holds)."""
    from batchkit.jobs.wrapper import user_command

    return {**job.to_dict(), "userCommand": user_command(job.command)}


def job_details(jobs: Sequence[Job]) -> str:
    from batchkit.jobs.wrapper import user_command

    items = []
    for job in jobs:
        items.append(
            [
                ("jobId", job.display_id),
                ("jobName", job.name),
                ("createdAt", iso_time(job.created_at)),
                ("startedAt", iso_time(job.started_at)),
                ("stoppedAt", iso_time(job.stopped_at)),
                ("status", job.status.value),
                ("statusReason", job.status_reason),
                ("jobDefinition", _short_definition(job.job_definition)),
                ("jobQueue", _short_queue(job.queue)),
                ("command", shlex.join(user_command(job.command)) if job.command else None),
                ("exitCode", job.exit_code),
                ("reason", job.reason),
                ("vcpus", job.resources.vcpus),
                ("memory[MB]", job.resources.memory),
                ("nodes", job.nodes),
                ("logStream", None if job.is_parent else job.log_stream),
                ("log", None if job.is_parent else job.console_url),
                ("s3FolderUrl", job.s3_folder_url),
            ]
        )
    return details(items)


def _short_definition(arn: str) -> str:
    """`name:revision` out of a job definition ARN (awsbstat's rendering)."""
    return arn.rsplit("/", 1)[-1] if arn else ""


def _short_queue(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if arn else ""


def submitted(job: Job) -> str:
    return f"Job {job.job_id} ({job.name}) has been submitted."


def job_not_found(job_id: str) -> str:
    """awsbstat's and awsbkill's sentence for an unknown id."""
    return f"Job ({job_id}) not found."


def jobs_not_found(job_ids: Sequence[str], *, awsbatch_cli: bool) -> str:
    """Unknown ids: awsbatch-cli's sentences under its aliases (`awsbstat`, `awsbkill`), else
    batchkit's `error:` lines and one `hint:`, as every other error."""
    if awsbatch_cli:
        return "\n".join(job_not_found(job_id) for job_id in job_ids)
    lines = [f"error: job {job_id} not found" for job_id in job_ids]
    lines.append("hint: list jobs with `batchkit stat -s ALL`; ids are case-sensitive")
    return "\n".join(lines)


def no_events(job: Job) -> str:
    """`out` of a job whose stream holds nothing (yet): awsbout's sentence, then where the job
    stands, so an empty output is never a mystery."""
    reason = f": {job.status_reason}" if job.status_reason else ""
    return f"No events found for job ({job.job_id}) in the status ({job.status.value}){reason}"


def warning(text: str) -> str:
    return f"warning: {text}"


def failure_reason(job: Job) -> str | None:
    """Why a job did not succeed, for the end of `sub --wait` (None: nothing to say)."""
    if job.status is JobStatus.SUCCEEDED or not job.status_reason:
        return None
    facts = []
    if job.exit_code is not None:
        facts.append(f"exit code {job.exit_code}")
    if len(job.attempts) > 1:
        facts.append(f"after {len(job.attempts)} attempts")
    detail = f" ({', '.join(facts)})" if facts else ""
    return f"reason: {job.status_reason}{detail}"


def kill_message(result: KillResult) -> tuple[str, bool]:
    """awsbkill's sentences, and whether the outcome is an error (job not found)."""
    from batchkit.jobs.kill import KillOutcome

    status = result.status.value if result.status else ""
    if result.outcome is KillOutcome.NOT_FOUND:
        return job_not_found(result.job_id), True
    if result.outcome is KillOutcome.ALREADY_FINAL:
        return f"Job ({result.job_id}) is already in ({status}) status.", False
    return (
        f"Your job {result.outcome.value} request for job ({result.job_id}) in status "
        f"({status}) has been submitted.",
        False,
    )


def progress(job: Job) -> str:
    """One progress line for `--wait` (stderr)."""
    summary = ""
    if job.status_summary:
        order = {status.value: status.order for status in JobStatus}
        items = sorted(job.status_summary.items(), key=lambda kv: order.get(kv[0], len(order)))
        counts = ", ".join(f"{name} {count}" for name, count in items if count)
        summary = f" ({counts})" if counts else ""
    return f"Job {job.job_id} ({job.name}): {job.status.value}{summary}"


def doctor_report(report: dict[str, Any]) -> str:
    """`batchkit local doctor`: the executor each kind of job gets, and why."""
    rows: list[tuple[str, object]] = [
        ("home", report.get("home")),
        ("jobs without an image", report.get("plain_job_executor")),
        ("jobs with an image", report.get("image_job_executor")),
        ("reason", report.get("reason")),
    ]
    if report.get("engine_version"):
        rows.append(("docker engine", f"{report['engine_version']} at {report.get('endpoint')}"))
    if report.get("base_images"):
        rows.append(("base images", ", ".join(report["base_images"])))
    if report.get("error"):
        rows.append(("error", report["error"]))
    return "".join(f"{key:25}: {cell(value)}\n" for key, value in rows)

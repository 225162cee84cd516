"""How `out` (and `sub --follow`) print a job's output: each log line with its time, a page of
lines at a time, the header of a retried job's attempt, and the JSON of each (`--json`).

Apart from `batchkit.cli.output` so that commands which print no logs import none of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchkit.cli.output import iso_time

if TYPE_CHECKING:
    from batchkit.jobs.logtail import AttemptStart, LogBatch, TailItem
    from batchkit.logmodel import LogEvent


def log_line(item: TailItem, *, raw: bool) -> tuple[str, bool]:
    """One line of `out`, and whether it is data (stdout) rather than a notice (stderr)."""
    from batchkit.jobs.logtail import AttemptStart, LogLine

    if isinstance(item, AttemptStart):
        return attempt_header(item), False
    if not isinstance(item, LogLine):
        job = item.job
        reason = f": {job.status_reason}" if job.status_reason else ""
        return (
            f"No log stream found for job ({job.job_id}) "
            f"in the status ({job.status.value}){reason}",
            False,
        )
    event: LogEvent = item.event
    prefix = f"[{item.source}] " if item.source else ""
    if raw:
        return prefix + event.message, True
    return f"{prefix}{iso_time(event.timestamp)}: {event.message}", True


def log_block(batch: LogBatch, *, raw: bool) -> str:
    """The lines of one page of `out`, as one text (each line as `log_line` prints it).

    The page is printed a run of lines with the same time at a time (`LogEvents.runs`), so a
    million lines cost a few thousand joins, not a million formatted strings."""
    from batchkit.logmodel import LogEvents

    events = batch.events
    if not events:
        return ""
    if not isinstance(events, LogEvents):
        events = LogEvents([e.timestamp for e in events], [e.message for e in events])
    messages = events.messages
    if "\n" in "".join(messages):  # one ending with a newline gets no other (as `log_line`)
        messages = [m[:-1] if m.endswith("\n") else m for m in messages]
    prefix = f"[{batch.source}] " if batch.source else ""
    if raw:
        return prefix + ("\n" + prefix).join(messages) + "\n"
    parts: list[str] = []
    for stamp, start, end in events.runs():
        lead = f"{prefix}{iso_time(stamp)}: "
        parts.append(lead + ("\n" + lead).join(messages[start:end]) + "\n")
    return "".join(parts)


def attempt_header(item: AttemptStart) -> str:
    """`out` of a retried job: which attempt the following lines are (stderr)."""
    job_id = item.job.job_id
    if not item.chosen:
        return (
            f"job {job_id}: attempt {item.number} of {item.total}; the others with "
            f"`batchkit out --attempt N {job_id}` (or --attempt all)"
        )
    attempt = item.attempt
    if attempt is None:
        outcome = "in progress"
    else:
        outcome = f"exit code {attempt.exit_code}" if attempt.exit_code is not None else "ended"
        why = attempt.status_reason or attempt.reason
        outcome += f" ({why})" if why else ""
    return f"--- attempt {item.number} of {item.total}: {outcome} ---"


def log_json(item: TailItem) -> dict[str, Any] | None:
    from batchkit.jobs.logtail import AttemptStart, LogLine

    if isinstance(item, LogLine):
        return {**item.event.to_dict(), "jobId": item.job_id}
    if isinstance(item, AttemptStart):
        if not item.chosen:
            return None  # a notice for people; the events that follow say the same
        attempt = item.attempt
        return {
            "jobId": item.job.job_id,
            "attempt": item.number,
            "attempts": item.total,
            "exitCode": attempt.exit_code if attempt else None,
            "statusReason": attempt.status_reason if attempt else None,
            "logStream": attempt.log_stream if attempt else item.job.log_stream,
        }
    return {
        "jobId": item.job.job_id,
        "status": item.job.status.value,
        "logStream": None,
        "statusReason": item.job.status_reason,
    }

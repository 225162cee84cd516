"""Cancelling and terminating jobs, as awsbkill does: what each id came to.

A job that has not started (SUBMITTED, PENDING, RUNNABLE) is cancelled; one that is starting or
running is terminated; a finished job is left alone; an unknown id is reported, not raised. Both
are one `terminate_job` call to the provider, which (like Batch's TerminateJob) handles either.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from msgspec import Struct

from batchkit.models import JobStatus
from batchkit.providers.base import Provider


class KillOutcome(StrEnum):
    NOT_FOUND = "not-found"
    ALREADY_FINAL = "already-final"
    CANCELLATION = "cancellation"  # it had not started
    TERMINATION = "termination"  # it was starting or running


class KillResult(Struct, frozen=True):
    job_id: str
    outcome: KillOutcome
    status: JobStatus | None = None


_NOT_STARTED = (JobStatus.SUBMITTED, JobStatus.PENDING, JobStatus.RUNNABLE)


def kill_jobs(provider: Provider, job_ids: Sequence[str], reason: str) -> list[KillResult]:
    """Cancel or terminate each job, in the order given (any number of ids)."""
    found = {job.job_id: job for job in provider.describe_jobs(list(job_ids))}
    results: list[KillResult] = []
    for job_id in job_ids:
        job = found.get(job_id)
        if job is None:
            results.append(KillResult(job_id, KillOutcome.NOT_FOUND))
        elif job.status.is_final:
            results.append(KillResult(job_id, KillOutcome.ALREADY_FINAL, job.status))
        else:
            provider.terminate_job(job_id, reason)
            outcome = (
                KillOutcome.CANCELLATION if job.status in _NOT_STARTED else KillOutcome.TERMINATION
            )
            results.append(KillResult(job_id, outcome, job.status))
    return results

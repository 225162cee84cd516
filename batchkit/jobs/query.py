"""Which jobs `stat` shows, and in which order (awsbstat's rules).

* By status (no ids): the top-level jobs of every queue (or the one asked) in those statuses;
  with `expand`, each array or MNP parent is replaced by its children (listed by the provider,
  never guessed from the size).
  Sorted by status (lifecycle order), then start time, then id (children in index order).
* By ids: each id is described; a parent is followed by all of its children. Output follows the
  order of the ids given, parent first. Unknown ids are reported back, not silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct

from batchkit.errors import JobNotFoundError
from batchkit.models import Job, JobStatus
from batchkit.providers.base import Provider


def describe_job(provider: Provider, job_id: str) -> Job:
    """One job (a parent, `id:i` child or `id#n` node); `JobNotFoundError` if it does not exist."""
    for job in provider.describe_jobs([job_id]):
        if job.job_id == job_id:
            return job
    raise JobNotFoundError(job_id)


def status_sort_key(job: Job) -> tuple[int, int, str, int]:
    ident = job.id
    index = ident.array_index if ident.array_index is not None else ident.node_index
    return (job.status.order, job.started_at or -1, ident.parent, -1 if index is None else index)


def list_jobs(
    provider: Provider,
    statuses: Sequence[JobStatus],
    *,
    expand: bool = False,
    queue: str | None = None,
    details: bool = False,
) -> list[Job]:
    """The jobs of `queue` (None: every queue) in `statuses`; with `expand`, parents are
    replaced by their children (listed cheaply unless `details` asks for every field)."""
    jobs = provider.list_jobs(statuses, queue)
    if expand:
        parents = [job for job in jobs if job.is_parent]
        if details:
            children = {parent.job_id: provider.list_children(parent) for parent in parents}
        else:  # one batch for every parent: the provider may share calls between them
            children = provider.list_child_summaries_of(parents) if parents else {}
        jobs = [
            member
            for job in jobs
            for member in (children.get(job.job_id, []) if job.is_parent else [job])
        ]
    return sorted(jobs, key=status_sort_key)


def _children(provider: Provider, parent: Job, details: bool) -> list[Job]:
    return provider.list_children(parent) if details else provider.list_child_summaries(parent)


class JobsById(Struct, frozen=True):
    jobs: list[Job]
    missing: list[str]

    @property
    def single_simple(self) -> bool:
        """awsbstat shows details, not a table, when one id yields one job that is no parent."""
        return len(self.jobs) == 1 and not self.jobs[0].is_parent


def jobs_by_ids(provider: Provider, job_ids: Sequence[str], *, details: bool = False) -> JobsById:
    wanted = list(dict.fromkeys(job_ids))
    found = {job.job_id: job for job in provider.describe_jobs(wanted)}
    shown: list[Job] = []
    seen: set[str] = set()
    missing: list[str] = []
    for job_id in wanted:
        job = found.get(job_id)
        if job is None:
            missing.append(job_id)
            continue
        family = [job, *(_children(provider, job, details) if job.is_parent else [])]
        for member in family:
            if member.job_id not in seen:
                seen.add(member.job_id)
                shown.append(member)
    return JobsById(shown, missing)

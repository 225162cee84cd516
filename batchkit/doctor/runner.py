"""`Doctor`: the findings about one job, or about a whole cluster, most likely cause first.

It reads the job through the provider (describe, dependencies, the end of the failing attempt's
log) and everything else through the provider's fact source (`sources.AwsFacts` or
`sources.LocalFacts`). The number of calls is bounded: one job costs a handful of describes plus
a few per compute environment; a cluster check looks at no more than `max_jobs` stuck jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import cast

from msgspec.structs import replace

from batchkit.doctor import failure, localrules, queueing
from batchkit.doctor.findings import Finding, Report, Verdict
from batchkit.doctor.gather import Gatherer, environment_findings, job_findings
from batchkit.doctor.scene import Scene, minutes
from batchkit.doctor.sources import AwsFacts, LocalFacts
from batchkit.errors import BatchkitError, UsageError
from batchkit.jobs.query import describe_job
from batchkit.models import Job, JobStatus
from batchkit.providers.base import Provider

DEFAULT_OLDER_THAN_S = 600.0
LOG_LINES = 10
MAX_JOBS = 10
_WAITING = (JobStatus.RUNNABLE, JobStatus.STARTING)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str, *, flag: str = "--older-than") -> float:
    """`90`, `90s`, `10m`, `2h`, `1d` → seconds (a plain number is seconds)."""
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in _UNITS else "s"
    number_part = raw[:-1] if raw[-1:] in _UNITS else raw
    try:
        value = float(number_part)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:  # negative, unparsable or NaN
        raise UsageError(
            f"{flag} {text!r} is not a duration",
            hint="use seconds or a number with s, m, h or d: 600, 10m, 2h",
        )
    return value * _UNITS[unit]


class Doctor:
    """Diagnoses jobs and clusters of one provider (see the module docstring)."""

    def __init__(
        self,
        provider: Provider,
        facts: AwsFacts | LocalFacts,
        *,
        clock: Callable[[], float] = time.time,
        log_lines: int = LOG_LINES,
        max_jobs: int = MAX_JOBS,
    ) -> None:
        self._provider = provider
        self._aws: AwsFacts | None = None
        self._local_facts: LocalFacts | None = None
        if provider.kind == "local":
            self._local_facts = cast(LocalFacts, facts)
        else:
            self._aws = cast(AwsFacts, facts)
        self._clock = clock
        self._log_lines = log_lines
        self._max_jobs = max_jobs

    def _gatherer(self) -> Gatherer | None:
        return Gatherer(self._aws) if self._aws is not None else None

    # -- one job -----------------------------------------------------------------------------------

    def job(self, job_id: str) -> Report:
        job = describe_job(self._provider, job_id)
        findings = self._job_findings(job, self._gatherer())
        return Report(job.job_id, findings, status=job.status.value)

    def why(self, job: Job) -> Finding | None:
        """The leading finding about a RUNNABLE or FAILED job (for `stat` and `--wait`)."""
        if job.status not in (JobStatus.RUNNABLE, JobStatus.FAILED, JobStatus.PENDING):
            return None
        return Report(job.job_id, self._job_findings(job, None, log=False, cheap=True)).leading

    def _job_findings(
        self, job: Job, gather: Gatherer | None, *, log: bool = True, cheap: bool = False
    ) -> list[Finding]:
        job = self._failed_child(job)
        deps = self._dependencies(job)
        out: list[Finding] = [*queueing.dependencies(job, deps)]
        if job.status is JobStatus.FAILED:
            explained = failure.explain(job)
            if log:
                explained = failure.with_log(explained, self._log_tail(job))
            out.append(explained)
        elif job.status is JobStatus.SUCCEEDED:
            out.append(Finding("status", "status", Verdict.OK, "the job succeeded"))
        elif job.status is JobStatus.RUNNING:
            out.append(Finding("status", "status", Verdict.OK, "the job is running"))
        if self._local_facts is not None:
            if not job.status.is_final:  # the engine's state says nothing about an ended job
                out += localrules.local_rules(job, self._local_facts.scene(job))
        elif job.status in (JobStatus.RUNNABLE, JobStatus.STARTING):
            gather = gather or self._gatherer()
            assert gather is not None
            out += self._aws_waiting(job, gather, cheap=cheap)
            out += gather.skipped
        return [_about(f, job.job_id) for f in out]

    def _aws_waiting(self, job: Job, gather: Gatherer, *, cheap: bool) -> list[Finding]:
        scene = Scene(job, now_ms=int(self._clock() * 1000))
        scene.queue = gather.queue(job.queue) if job.queue else None
        if scene.queue is not None:
            envs = gather.environments(scene.queue.name, scene.queue.compute_environments)
            if envs is None:  # not read: "not checked" says why; nothing to judge them by
                return [*queueing.queue_state(scene.queue), *queueing.batch_reason(scene)]
            scene.environments = envs
        if cheap:
            return [
                *queueing.queue_state(scene.queue),
                *queueing.environment_state(scene.queue, scene.environments),
                *queueing.batch_reason(scene),
            ]
        return [
            *environment_findings(gather, scene.queue, scene.environments, scene.waited_s),
            *job_findings(gather, scene),
        ]

    def _failed_child(self, job: Job) -> Job:
        """For a FAILED array or multi-node parent: its first failed child, which has the
        reason and the log."""
        if job.status is not JobStatus.FAILED or not job.is_parent:
            return job
        try:
            children = self._provider.list_children(job)
        except BatchkitError:
            return job
        return next((c for c in children if c.status is JobStatus.FAILED), job)

    def _dependencies(self, job: Job) -> list[Job]:
        ids = [d.job_id for d in job.depends_on if d.job_id]
        if not ids:
            return []
        try:
            return self._provider.describe_jobs(ids)
        except BatchkitError:
            return []

    def _log_tail(self, job: Job) -> list[str]:
        stream = job.attempts[-1].log_stream if job.attempts else None
        stream = stream or job.log_stream
        if not stream:
            return []
        try:
            page = self._provider.get_log_events(
                stream, group=job.log_group, start_from_head=False, limit=self._log_lines
            )
        except BatchkitError:
            return []
        return [event.message for event in page.events][-self._log_lines :]

    # -- the whole cluster -------------------------------------------------------------------------

    def cluster(self, older_than_s: float = DEFAULT_OLDER_THAN_S) -> Report:
        """Every queue and compute environment, and every job RUNNABLE or STARTING for longer
        than `older_than_s`."""
        now_ms = int(self._clock() * 1000)
        queues = self._provider.queues()
        stuck = [
            job
            for queue in queues
            for job in self._provider.list_jobs(list(_WAITING), queue=queue.name)
            if job.created_at is not None and now_ms - job.created_at >= older_than_s * 1000
        ]
        stuck.sort(key=lambda j: j.created_at or 0)
        findings: list[Finding] = []
        gather = self._gatherer()
        if gather is not None:
            gather.knows(queues)
            oldest = (now_ms - (stuck[0].created_at or now_ms)) / 1000 if stuck else 0.0
            for queue in queues:
                envs = gather.environments(queue.name, queue.compute_environments)
                if envs is None:
                    findings += queueing.queue_state(queue)
                else:
                    findings += environment_findings(gather, queue, envs, oldest)
        elif self._local_facts is not None:
            findings += localrules.engine_rules(self._local_facts.scene(None))
        for job in stuck[: self._max_jobs]:
            full = describe_job(self._provider, job.job_id)
            findings += [
                f
                for f in self._job_findings(full, gather)
                if f.subject is not None and not _cluster_wide(f)
            ]
        findings.append(_stuck_summary(stuck, older_than_s, self._max_jobs))
        if gather is not None:
            findings += gather.skipped
        return Report(f"cluster {self._provider.cluster_name}", _unique(findings))


_CLUSTER_RULES = frozenset(
    {"queue-state", "environment-state", "network", "egress", "instances-joining", "spot-bid"}
)


def _cluster_wide(finding: Finding) -> bool:
    return finding.rule in _CLUSTER_RULES or finding.verdict is Verdict.NOT_CHECKED


def _about(finding: Finding, job_id: str) -> Finding:
    return finding if finding.subject is not None else replace(finding, subject=job_id)


def _unique(findings: Sequence[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str, str | None]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.rule, f.check, f.seen, f.subject)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _stuck_summary(stuck: Sequence[Job], older_than_s: float, limit: int) -> Finding:
    check = f"jobs RUNNABLE or STARTING for more than {minutes(older_than_s)}"
    if not stuck:
        return Finding("stuck-jobs", check, Verdict.OK, "none")
    more = f" (the oldest {limit} are diagnosed)" if len(stuck) > limit else ""
    ids = ", ".join(j.job_id for j in stuck[:5]) + (" …" if len(stuck) > 5 else "")
    return Finding(
        "stuck-jobs",
        check,
        Verdict.WARNING,
        f"{len(stuck)} jobs{more}: {ids}",
        fix="see the findings about each job below",
        likelihood=10,
    )

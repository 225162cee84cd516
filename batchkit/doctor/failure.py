"""Why a job FAILED: Batch's status reason, the container's reason and the exit code mapped to a
cause and a fix (AWS Batch user guide, "Troubleshooting AWS Batch" and the Amazon ECS developer
guide, "Stopped task error codes"), plus the end of the failing attempt's log."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from msgspec import Struct
from msgspec.structs import replace

from batchkit.doctor.findings import Finding, Verdict
from batchkit.doctor.scene import minutes, number
from batchkit.models import Attempt, Job

CHECK = "why the job failed"


class Failure(Struct, frozen=True):
    """The last attempt's facts, whichever field Batch put them in."""

    job: Job
    text: str
    """The status reason and the container reason, joined (what the patterns read)."""
    exit_code: int | None
    attempt: Attempt | None

    @classmethod
    def of(cls, job: Job) -> Failure:
        attempt = job.attempts[-1] if job.attempts else None
        parts = [job.status_reason, job.reason]
        if attempt is not None:
            parts += [attempt.reason, attempt.status_reason]
        text = " | ".join(dict.fromkeys(p for p in parts if p))
        exit_code = (
            job.exit_code if job.exit_code is not None else (attempt.exit_code if attempt else None)
        )
        return cls(job, text, exit_code, attempt)

    def has(self, *words: str) -> bool:
        low = self.text.lower()
        return any(word.lower() in low for word in words)


Rule = Callable[[Failure], Finding | None]


def _finding(seen: str, fix: str, likelihood: int = 95) -> Finding:
    return Finding("failure", CHECK, Verdict.PROBLEM, seen, fix=fix, likelihood=likelihood)


def cannot_pull(f: Failure) -> Finding | None:
    if not f.has("CannotPullContainerError", "CannotPullImage", "pull image manifest"):
        return None
    image = f.job.image or "the image"
    if f.has("denied", "unauthorized", "401", "403", "no basic auth", "authorization"):
        return _finding(
            f"CannotPullContainerError: access to {image} was refused",
            "give the execution/instance role ecr:GetAuthorizationToken, ecr:BatchGetImage and "
            "ecr:GetDownloadUrlForLayer on the repository, or use repository credentials for a "
            "private registry",
        )
    if f.has("not found", "manifest unknown", "does not exist", "repository not found"):
        return _finding(
            f"CannotPullContainerError: {image} does not exist (no such repository or tag)",
            "build and push it (`batchkit image build`), or fix the name given with --image",
        )
    if f.has("no matching manifest", "platform", "exec format"):
        return _finding(
            f"CannotPullContainerError: {image} has no build for the instance's architecture",
            "build the image for the instances' architecture (linux/amd64 or linux/arm64), or "
            "use matching `instance_types`",
        )
    if f.has("timeout", "i/o timeout", "dial tcp", "connection", "context canceled"):
        return _finding(
            f"CannotPullContainerError: the host could not reach the registry of {image}",
            "give the subnets a route to a NAT or internet gateway, or VPC endpoints for "
            "ecr.api, ecr.dkr and S3 (`batchkit doctor` without a job id checks the network)",
        )
    return _finding(
        f"CannotPullContainerError: {f.text}",
        "check the image name, that it exists, and that the hosts can reach its registry",
    )


def resource_initialization(f: Failure) -> Finding | None:
    if not f.has("ResourceInitializationError"):
        return None
    if f.has("secret", "ssm", "secretsmanager"):
        fix = "let the execution role read the secrets and give the subnets a route to "
        fix += "Secrets Manager / SSM (NAT or VPC endpoints)"
    elif f.has("log", "awslogs"):
        fix = "give the subnets a route to CloudWatch Logs (NAT or a logs VPC endpoint) and "
        fix += "let the execution role write logs"
    else:
        fix = "check the task's network (route to ECR, S3, CloudWatch Logs) and execution role"
    return _finding(f"ResourceInitializationError: {f.text}", fix)


def out_of_memory(f: Failure) -> Finding | None:
    if not (f.has("OutOfMemoryError", "OutOfMemory", "oom") or f.exit_code == 137):
        return None
    asked = f.job.resources.memory
    spot = f.has("Host EC2", "terminated")
    if spot:
        return None  # a reclaimed host also ends with 137: that rule speaks
    return _finding(
        f"the container was killed for memory (exit {f.exit_code or 137}): it asked for "
        f"{asked} MiB and needed more",
        f"ask for more memory: -m {asked * 2} (memory is a hard limit on Batch)",
    )


def host_terminated(f: Failure) -> Finding | None:
    if not re.search(r"host ec2 .*terminated", f.text, re.IGNORECASE):
        return None
    return _finding(
        f"the instance running the job went away ({f.text}): on a Spot queue, EC2 reclaimed it",
        "resubmit with --spot-retry (retries only attempts whose host was reclaimed) and -r 3, "
        "or use an on-demand queue for jobs that cannot be interrupted",
    )


def command_not_runnable(f: Failure) -> Finding | None:
    if f.exit_code not in (126, 127):
        return None
    what = "not found" if f.exit_code == 127 else "found but not executable"
    return _finding(
        f"exit {f.exit_code}: the command is {what} in image {f.job.image or '(default)'}",
        "check the command's path and its executable bit in this image, e.g. "
        f"`docker run --rm {f.job.image or 'IMAGE'} sh -c 'command -v <cmd>'`; a script "
        "submitted with -cf needs a shell the image has",
    )


def timed_out(f: Failure) -> Finding | None:
    if not f.has("duration exceeded timeout", "timed out", "timeout exceeded"):
        return None
    attempt = f.attempt
    ran = ""
    if attempt and attempt.started_at and attempt.stopped_at:
        ran = f" after running {minutes((attempt.stopped_at - attempt.started_at) / 1000)}"
    limit = f.job.timeout
    limit_text = f" (-t {limit}, {minutes(limit)})" if limit else ""
    return _finding(
        f"the attempt hit its timeout{limit_text}{ran}",
        f"raise the timeout: -t {limit * 2 if limit else 'SECONDS'}, or make the job faster",
    )


def cannot_start(f: Failure) -> Finding | None:
    if not f.has("CannotStartContainerError", "CannotCreateContainerError"):
        return None
    if f.has("log", "awslogs", "cloudwatch"):
        fix = "the log driver could not reach CloudWatch Logs: give the subnets a route to it "
        fix += "(NAT or a logs VPC endpoint) and check the log group exists"
    else:
        fix = "check the command and the image (`docker run` it locally) and the resource ask"
    return _finding(f"the container could not start: {f.text}", fix)


def docker_timeout(f: Failure) -> Finding | None:
    if not f.has("DockerTimeoutError"):
        return None
    return _finding(
        f"DockerTimeoutError: {f.text}",
        "the Docker daemon on the host was too slow (a large image, a busy or small root "
        "volume): retry with -r 2, use a smaller image or a larger `root_volume_gib`",
        80,
    )


def cannot_place(f: Failure) -> Finding | None:
    if not f.has("CannotPlaceJob"):
        return None
    r = f.job.resources
    return _finding(
        f.text,
        "ask for less (-p, -m, --gpus), or give the local engine more: BATCHKIT_LOCAL_VCPUS, "
        "BATCHKIT_LOCAL_MEMORY (MiB) and BATCHKIT_LOCAL_GPUS set its capacity (stop the idle "
        f"worker first); this job asked for {number(r.vcpus)} vCPUs and {r.memory} MiB",
        98,
    )


def terminated_by_user(f: Failure) -> Finding | None:
    if not f.has("Terminated by the user", "Cancelled", "canceled by"):
        return None
    return Finding(
        "failure",
        CHECK,
        Verdict.WARNING,
        f"stopped on request: {f.text}",
        fix="nothing to fix: resubmit if it was not meant",
        likelihood=90,
    )


def exit_code(f: Failure) -> Finding | None:
    code = f.exit_code
    if code is None or code == 0:
        return None
    return _finding(
        f"the command exited with {code}: {f.text or 'the program failed'}",
        f"read the end of its output (below, or `batchkit out {f.job.job_id}`); the program "
        "itself reported the error",
        70,
    )


def dependency_failed(f: Failure) -> Finding | None:
    if not f.has("Dependent Job failed", "dependency failed"):
        return None
    return _finding(
        "a job it depends on failed, so Batch failed it without running it",
        "fix the failed dependency (named under 'dependencies'), then resubmit both",
        96,
    )


RULES: tuple[Rule, ...] = (
    dependency_failed,
    cannot_place,
    host_terminated,
    cannot_pull,
    resource_initialization,
    cannot_start,
    docker_timeout,
    timed_out,
    out_of_memory,
    command_not_runnable,
    terminated_by_user,
    exit_code,
)


def explain(job: Job) -> Finding:
    """The first rule that recognises the failure, else what Batch said."""
    failure = Failure.of(job)
    for rule in RULES:
        found = rule(failure)
        if found is not None:
            return found
    return Finding(
        "failure",
        CHECK,
        Verdict.PROBLEM,
        failure.text or "FAILED with no reason given",
        fix=f"read the output (`batchkit out {job.job_id}`)",
        likelihood=50,
    )


def with_log(finding: Finding, lines: Sequence[str]) -> Finding:
    """The finding with the last lines of the failing attempt's output attached."""
    return replace(finding, details=tuple(lines)) if lines else finding

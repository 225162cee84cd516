"""Rules about the way to a compute environment: the queue and the environments' states, what
Batch itself says (the statusReason of a job at the head of its queue), instances that never join
the ECS cluster, an environment that does not scale up, a Spot bid, dependencies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from batchkit.clustermodel import Queue
from batchkit.computemodel import ComputeEnvironment, SpotPrice
from batchkit.doctor.findings import Finding, Verdict
from batchkit.doctor.scene import Scene, minutes
from batchkit.models import Job, JobStatus

STUCK_AFTER_S = 600.0
"""How long a RUNNABLE job waits before "not scaling" and "not joining" become problems."""

LOW_BID_PERCENT = 40
"""A Spot bid (percent of the On-Demand price) below this is flagged as likely too low."""

# What Batch says about a job blocking the head of its queue (AWS Batch user guide, "Jobs stuck
# in RUNNABLE status" and "Automatic remediation with jobStateTimeLimitActions").
BATCH_REASONS: Mapping[str, tuple[str, str]] = {
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": (
        "EC2 has no capacity for the instance types of every compute environment of the queue",
        "wait, or widen `instance_types` (more families) and the subnets (more Availability "
        "Zones) in batchkit.yaml; a queue's `blocked_job_timeouts` can cancel such jobs",
    ),
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": (
        "every compute environment's maxvCpus is smaller than what the job needs",
        "raise `max_vcpus` in batchkit.yaml, or ask for fewer vCPUs (-p) or nodes (-n)",
    ),
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": (
        "no compute environment may launch an instance type that meets the job's vCPU, "
        "memory or GPU ask",
        "ask for less (-p, -m, --gpus) or add larger `instance_types` in batchkit.yaml",
    ),
}

# Phrases of a compute environment's statusReason and what to check (AWS Batch user guide,
# "INVALID compute environment").
CE_REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("service role", "servicerole", "awsservicerolefor", "iam:passrole"),
        "the Batch service role (it must exist, trust batch.amazonaws.com and may be passed)",
    ),
    (
        ("instance profile", "instancerole", "iaminstanceprofile"),
        "the instance role: it must be an instance profile ARN with the "
        "AmazonEC2ContainerServiceforEC2Role policy",
    ),
    (("launch template", "launchtemplate"), "the launch template (it must exist, with a version)"),
    (("subnet",), "the subnets (they must exist, in the VPC of the security groups)"),
    (("security group", "securitygroup"), "the security groups (in the subnets' VPC)"),
    (("ami", "image id", "imageid"), "the AMI (an ECS-optimized image in this region)"),
    (("spot fleet", "spotfleet"), "the Spot Fleet role (needed for the BEST_FIT strategy)"),
)


def queue_state(queue: Queue | None) -> list[Finding]:
    if queue is None:
        return []
    check = f"queue {queue.name}"
    if queue.state != "ENABLED":
        return [
            Finding(
                "queue-state",
                check,
                Verdict.PROBLEM,
                f"the queue is {queue.state}: it takes jobs but starts none",
                fix=f"enable it: `aws batch update-job-queue --job-queue {queue.name} --state "
                "ENABLED` (or the Batch console, Job queues, Enable)",
                likelihood=100,
            )
        ]
    if queue.status not in ("VALID", "CREATING", "UPDATING"):
        return [
            Finding(
                "queue-state",
                check,
                Verdict.PROBLEM,
                f"the queue is {queue.status}: {queue.status_reason or 'no reason given'}",
                fix="fix what the reason names and `batchkit cluster update`",
                likelihood=99,
            )
        ]
    return [Finding("queue-state", check, Verdict.OK, f"{queue.state}, {queue.status}")]


def explain_environment_reason(reason: str | None) -> str | None:
    text = (reason or "").lower()
    for words, what in CE_REASONS:
        if any(word in text for word in words):
            return what
    return None


def environment_state(
    queue: Queue | None, environments: Sequence[ComputeEnvironment]
) -> list[Finding]:
    out: list[Finding] = []
    usable = [ce for ce in environments if ce.state == "ENABLED" and ce.status == "VALID"]
    for ce in environments:
        check = f"compute environment {ce.name}"
        verdict = Verdict.PROBLEM if not usable else Verdict.WARNING
        if ce.status == "INVALID":
            cause = explain_environment_reason(ce.status_reason)
            look = f"check {cause}" if cause else "fix what the reason names"
            out.append(
                Finding(
                    "environment-state",
                    check,
                    verdict,
                    f"INVALID: {ce.status_reason or 'no reason given'}",
                    fix=f"{look}, then `batchkit cluster update` (or the Batch console, "
                    "Compute environments)",
                    likelihood=99,
                )
            )
        elif ce.state != "ENABLED":
            out.append(
                Finding(
                    "environment-state",
                    check,
                    verdict,
                    f"the environment is {ce.state}: it launches nothing",
                    fix="enable it: `aws batch update-compute-environment --compute-environment "
                    f"{ce.name} --state ENABLED`",
                    likelihood=98,
                )
            )
        else:
            out.append(Finding("environment-state", check, Verdict.OK, f"{ce.state}, {ce.status}"))
    if queue is not None and not environments:
        out.append(
            Finding(
                "environment-state",
                f"queue {queue.name}: compute environments",
                Verdict.PROBLEM,
                "the queue has no compute environment",
                fix="attach one in batchkit.yaml (`queues[].compute_environments`)",
                likelihood=99,
            )
        )
    return out


def batch_reason(scene: Scene) -> list[Finding]:
    """What Batch says about the job when it blocks the head of its queue."""
    reason = scene.job.status_reason or ""
    code = reason.split(" ", 1)[0].rstrip(".:")
    known = BATCH_REASONS.get(code)
    if known is None:
        if ":" in code and code.split(":", 1)[0] in ("CAPACITY", "MISCONFIGURATION"):
            return [
                Finding(
                    "batch-reason",
                    "what AWS Batch says",
                    Verdict.PROBLEM,
                    f"the job blocks its queue: {reason}",
                    fix="see the findings below; the AWS Batch user guide lists this reason "
                    "under 'Jobs stuck in RUNNABLE status'",
                    likelihood=92,
                )
            ]
        return []
    what, fix = known
    verdict = Verdict.WARNING if code.startswith("CAPACITY") else Verdict.PROBLEM
    return [
        Finding(
            "batch-reason",
            "what AWS Batch says",
            verdict,
            f"{code}: {what}",
            fix=fix,
            likelihood=96,
        )
    ]


def instances_joining(
    environments: Sequence[ComputeEnvironment], joined: Mapping[str, int | None], waited_s: float
) -> list[Finding]:
    """Instances requested (desiredvCpus > 0) but none registered with the ECS cluster behind
    the environment: they start but never join (role, AMI, user data, no route to ECS).
    `waited_s`: how long the oldest waiting job has waited."""
    out: list[Finding] = []
    for ce in environments:
        count = joined.get(ce.name)
        if ce.is_fargate or count is None or ce.desired_vcpus <= 0:
            continue
        check = f"compute environment {ce.name}: instances joining ECS"
        if count:
            out.append(
                Finding(
                    "instances-joining",
                    check,
                    Verdict.OK,
                    f"{count} container instances joined",
                )
            )
            continue
        long = waited_s >= STUCK_AFTER_S
        out.append(
            Finding(
                "instances-joining",
                check,
                Verdict.PROBLEM if long else Verdict.WARNING,
                f"desiredvCpus is {ce.desired_vcpus} but no instance has joined the ECS "
                f"cluster after {minutes(waited_s)}",
                fix="look at the instances in the EC2 console (Auto Scaling activity, system "
                "log): the instance role needs AmazonEC2ContainerServiceforEC2Role, the AMI must "
                "be ECS-optimized, custom user data must not stop the ECS agent, and the subnet "
                "needs a route to ECS",
                likelihood=88 if long else 40,
            )
        )
    return out


def scaling(scene: Scene) -> list[Finding]:
    """An enabled, valid environment that has asked for no instance while the job waits."""
    if scene.job.status is not JobStatus.RUNNABLE or scene.waited_s < STUCK_AFTER_S:
        return []
    out: list[Finding] = []
    for ce in scene.environments:
        if ce.state != "ENABLED" or ce.status != "VALID" or ce.desired_vcpus > 0:
            continue
        out.append(
            Finding(
                "scaling",
                f"compute environment {ce.name}: desiredvCpus",
                Verdict.WARNING,
                f"desiredvCpus is still 0 after {minutes(scene.waited_s)} with the job RUNNABLE",
                fix="Batch scales up only for the job at the head of the queue: look for a job "
                "ahead of this one that cannot run (`batchkit doctor` without a job id), and at "
                "the findings about instance types and maxvCpus",
                likelihood=60,
            )
        )
    return out


def spot_bid(
    environments: Sequence[ComputeEnvironment], prices: Mapping[str, Sequence[SpotPrice]]
) -> list[Finding]:
    out: list[Finding] = []
    for ce in environments:
        if ce.compute_type != "SPOT" or ce.bid_percentage is None:
            continue
        if ce.bid_percentage >= LOW_BID_PERCENT:
            continue
        seen_prices = prices.get(ce.name) or ()
        cheapest = sorted(seen_prices, key=lambda p: p.price)[:3]
        quoted = ", ".join(
            f"{p.instance_type} ${p.price:.4f}/h in {p.availability_zone}" for p in cheapest
        )
        out.append(
            Finding(
                "spot-bid",
                f"compute environment {ce.name}: Spot bid",
                Verdict.WARNING,
                f"bidPercentage is {ce.bid_percentage} % of the On-Demand price; Batch launches "
                "no Spot instance while the Spot price is above it"
                + (f" (Spot now: {quoted})" if quoted else ""),
                fix=f"raise `bid_percentage` of environment {ce.name} in batchkit.yaml (or remove "
                "it: 100 %), or use SPOT_PRICE_CAPACITY_OPTIMIZED",
                likelihood=65,
            )
        )
    return out


def dependencies(job: Job, described: Sequence[Job]) -> list[Finding]:
    """A PENDING job waits for its dependencies; a failed dependency fails it."""
    ids = [d.job_id for d in job.depends_on if d.job_id]
    if not ids:
        if job.status is JobStatus.PENDING:
            return [
                Finding(
                    "dependencies",
                    "dependencies",
                    Verdict.OK,
                    "PENDING without dependencies: an array job's children or a SEQUENTIAL "
                    "array wait for each other",
                )
            ]
        return []
    by_id = {d.job_id: d for d in described}
    failed = [by_id[i] for i in ids if i in by_id and by_id[i].status is JobStatus.FAILED]
    waiting = [by_id[i] for i in ids if i in by_id and not by_id[i].status.is_final]
    missing = [i for i in ids if i not in by_id]
    if failed:
        names = ", ".join(
            f"{d.job_id} ({d.name}): {d.status_reason or d.reason or 'FAILED'}" for d in failed
        )
        return [
            Finding(
                "dependencies",
                "dependencies",
                Verdict.PROBLEM,
                f"a dependency failed, so this job fails too: {names}",
                fix="fix and resubmit the failed dependency (`batchkit doctor "
                f"{failed[0].job_id}`), then this job",
                likelihood=97,
            )
        ]
    if waiting:
        names = ", ".join(f"{d.job_id} ({d.name}) {d.status.value}" for d in waiting)
        return [
            Finding(
                "dependencies",
                "dependencies",
                Verdict.WARNING if job.status is JobStatus.PENDING else Verdict.OK,
                f"waiting for {len(waiting)} of {len(ids)} dependencies: {names}",
                fix=f"nothing to change: it starts when they succeed (`batchkit doctor "
                f"{waiting[0].job_id}` if one of them is stuck)",
                likelihood=80,
            )
        ]
    seen = f"all {len(ids)} dependencies succeeded"
    if missing:
        seen = f"{len(missing)} dependencies are no longer listed by Batch: {', '.join(missing)}"
    return [Finding("dependencies", "dependencies", Verdict.OK, seen)]


def environment_names(environments: Sequence[ComputeEnvironment]) -> str:
    return ", ".join(ce.name for ce in environments)

"""The doctor's rules as pure functions: each against the facts that trigger it (and the ones
that must not), without any AWS or engine behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.clustermodel import Queue
from batchkit.computemodel import (
    ComputeEnvironment,
    InstanceType,
    LocalScene,
    NatGateway,
    Route,
    SecurityGroup,
    SpotPrice,
    Subnet,
)
from batchkit.doctor import capacity, failure, localrules, network, queueing
from batchkit.doctor.findings import Finding, Report, Verdict, ordered
from batchkit.doctor.runner import parse_age
from batchkit.doctor.scene import Scene
from batchkit.errors import UsageError
from batchkit.models import Job, JobStatus, Resources

CE = ComputeEnvironment("ce", "arn:ce", "ENABLED", "VALID", compute_type="EC2", max_vcpus=16,
                        instance_types=("m5.large",), subnets=("subnet-1",),
                        security_groups=("sg-1",))  # fmt: skip
M5_LARGE = InstanceType("m5.large", 2, 8192)


def job(**fields: object) -> Job:
    fields.setdefault("status", JobStatus.RUNNABLE)
    return Job("j-1", "name", **fields)  # type: ignore[arg-type]


def scene(
    ask: Resources, *envs: ComputeEnvironment, types: list[InstanceType] | None = None
) -> Scene:
    built = Scene(job(resources=ask, queue="q"), now_ms=0, environments=list(envs or (CE,)))
    for ce in built.environments:
        if types is not None:
            built.instance_types[ce.name] = types
    return built


@pytest.mark.parametrize(
    ("text", "seconds"), [("600", 600), ("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400)]
)
def test_ages(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "m", "nan"])
def test_bad_ages_name_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--older-than"):
        parse_age(text)


def test_findings_are_ordered_problem_first_then_likelihood() -> None:
    found = ordered(
        [
            Finding("a", "a", Verdict.OK, "x"),
            Finding("b", "b", Verdict.WARNING, "x", likelihood=90),
            Finding("c", "c", Verdict.PROBLEM, "x", likelihood=10),
            Finding("d", "d", Verdict.PROBLEM, "x", likelihood=80),
            Finding("e", "e", Verdict.NOT_CHECKED, "x"),
        ]
    )
    assert [f.rule for f in found] == ["d", "c", "b", "e", "a"]
    assert Report("j", found).leading is not None
    assert Report("j", [Finding("a", "a", Verdict.OK, "x")]).leading is None


def test_usable_memory_keeps_what_ecs_keeps() -> None:
    assert capacity.usable_memory(M5_LARGE) == 7955  # 8192 - 2.5 % - 32 MiB
    assert [
        f.verdict for f in capacity.instance_fit(scene(Resources(2, 7955), types=[M5_LARGE]))
    ] == [Verdict.OK]
    assert [
        f.verdict for f in capacity.instance_fit(scene(Resources(2, 7956), types=[M5_LARGE]))
    ] == [Verdict.PROBLEM]


def test_a_mismatch_in_one_of_two_environments_is_only_a_warning() -> None:
    big = ComputeEnvironment("big", "arn:big", "ENABLED", "VALID", compute_type="EC2")
    built = scene(Resources(4, 1024), CE, big)
    built.instance_types = {"ce": [M5_LARGE], "big": [InstanceType("m5.xlarge", 4, 16384)]}
    verdicts = {f.check: f.verdict for f in capacity.instance_fit(built)}
    assert verdicts == {
        "compute environment ce: instance types": Verdict.WARNING,
        "compute environment big: instance types": Verdict.OK,
    }


def test_a_multi_node_job_needs_all_its_vcpus_at_once() -> None:
    built = scene(Resources(4, 1024))
    built.job.nodes = 5
    [found] = capacity.max_vcpus(built)
    assert found.verdict is Verdict.PROBLEM and "needs 20 vCPUs" in found.seen


@pytest.mark.parametrize(
    ("vcpus", "memory", "ok"),
    [(0.25, 512, True), (0.25, 4096, False), (1, 2048, True), (1, 1024, False), (3, 8192, False),
     (16, 122880, True), (8, 20480, True), (8, 18432, False)],
)  # fmt: skip
def test_fargate_combinations(vcpus: float, memory: int, ok: bool) -> None:
    fargate = ComputeEnvironment("f", "arn:f", "ENABLED", "VALID", compute_type="FARGATE")
    [found] = capacity.fargate_combination(scene(Resources(vcpus, memory), fargate))
    assert (found.verdict is Verdict.OK) is ok


def test_an_architecture_the_instances_do_not_have() -> None:
    built = scene(Resources(1, 512), types=[M5_LARGE])
    [found] = capacity.architecture(built, ("arm64",))
    assert found.verdict is Verdict.PROBLEM and "x86_64" in found.seen
    assert capacity.architecture(built, ("amd64", "x86_64")) == []


def net(subnet: Subnet, **kwargs: object) -> list[Finding]:
    facts = network.Network(
        [subnet],
        kwargs.get("nats", []),  # type: ignore[arg-type]
        kwargs.get("endpoints", []),  # type: ignore[arg-type]
        [SecurityGroup("sg-1", egress_rules=1)],
    )
    return network.routes(CE, facts, "us-east-1")


def test_routes_through_gateways() -> None:
    nat = Subnet("subnet-1", "vpc-1", routes=(Route("0.0.0.0/0", "nat-1"),))
    assert net(nat, nats=[NatGateway("nat-1", "subnet-2", "available")])[0].verdict is Verdict.OK
    assert net(nat, nats=[NatGateway("nat-1", "subnet-2", "deleted")])[0].verdict is Verdict.PROBLEM
    igw = Subnet("subnet-1", "vpc-1", routes=(Route("0.0.0.0/0", "igw-1"),))
    assert net(igw)[0].verdict is Verdict.PROBLEM  # no public IP on launch
    public = Subnet("subnet-1", "vpc-1", public_ip_on_launch=True, routes=igw.routes)
    assert net(public)[0].verdict is Verdict.OK
    transit = Subnet("subnet-1", "vpc-1", routes=(Route("0.0.0.0/0", "tgw-1"),))
    assert net(transit)[0].verdict is Verdict.WARNING


def test_egress_needs_one_open_group_of_several() -> None:
    facts = network.Network(
        [], [], [], [SecurityGroup("sg-1"), SecurityGroup("sg-2", egress_rules=1)]
    )
    assert network.egress(CE, facts)[0].verdict is Verdict.OK
    closed = network.Network([], [], [], [SecurityGroup("sg-1")])
    assert network.egress(CE, closed)[0].verdict is Verdict.PROBLEM


@pytest.mark.parametrize(
    ("reason", "what"),
    [
        (
            "CLIENT_ERROR - Not authorized to perform iam:PassRole on the service role",
            "service role",
        ),
        ("CLIENT_ERROR - The launch template lt-1 does not exist", "launch template"),
        ("INVALID subnet subnet-1 does not exist", "subnets"),
        ("something else entirely", None),
    ],
)
def test_invalid_environment_reasons_are_explained(reason: str, what: str | None) -> None:
    explained = queueing.explain_environment_reason(reason)
    assert (explained is None) if what is None else (what in (explained or ""))


def test_a_queue_is_checked_before_its_environments() -> None:
    off = Queue("q", "arn:q", 1, "DISABLED", "VALID")
    [found] = queueing.queue_state(off)
    assert found.verdict is Verdict.PROBLEM and found.likelihood == 100


def test_capacity_from_batch_is_a_warning_misconfiguration_a_problem() -> None:
    capacity_reason = scene(Resources())
    capacity_reason.job.status_reason = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - no capacity"
    assert queueing.batch_reason(capacity_reason)[0].verdict is Verdict.WARNING
    other = scene(Resources())
    other.job.status_reason = "MISCONFIGURATION:SOMETHING_NEW - text"
    assert queueing.batch_reason(other)[0].verdict is Verdict.PROBLEM
    assert queueing.batch_reason(scene(Resources())) == []


def test_the_first_failure_rule_that_matches_wins() -> None:
    spot_and_137 = job(status=JobStatus.FAILED, exit_code=137,
                       status_reason="Host EC2 (instance i-1) terminated.")  # fmt: skip
    assert "--spot-retry" in (failure.explain(spot_and_137).fix or "")
    nothing = failure.explain(job(status=JobStatus.FAILED))
    assert nothing.seen == "FAILED with no reason given" and "batchkit out j-1" in (
        nothing.fix or ""
    )


def local(**fields: object) -> LocalScene:
    base: dict[str, object] = {
        "total": Resources(2, 4096, 0),
        "free": Resources(2, 4096, 0),
        "running_jobs": 0,
        "waiting_jobs": 1,
        "worker_pid": 42,
    }
    base.update(fields)
    return LocalScene(**base)  # type: ignore[arg-type]


def test_local_capacity_now_and_ever() -> None:
    assert (
        localrules.capacity(job(resources=Resources(4, 512)), local())[0].verdict is Verdict.PROBLEM
    )
    busy = local(free=Resources(0, 4096, 0), running_jobs=1)
    assert localrules.capacity(job(resources=Resources(1, 512)), busy)[0].verdict is Verdict.WARNING
    assert localrules.capacity(job(resources=Resources(1, 512)), local())[0].verdict is Verdict.OK


def test_local_worker_crash_shows_the_end_of_its_log() -> None:
    crashed = local(
        worker_pid=None, worker_log_tail=("start", "Traceback (most recent call last):", "  boom")
    )
    [found] = localrules.worker(job(status=JobStatus.RUNNING), crashed)
    assert found.verdict is Verdict.PROBLEM and "stopped" in found.seen
    assert found.details[-1] == "  boom"


def test_the_spot_bid_rule_is_a_threshold_not_a_comparison_with_the_price() -> None:
    def spot(bid: int) -> ComputeEnvironment:
        return ComputeEnvironment("spot", "arn:spot", "ENABLED", "VALID", compute_type="SPOT",
                                  bid_percentage=bid)  # fmt: skip

    quoted = {"spot": [SpotPrice("m5.large", "us-east-1a", 0.09)]}  # quoted, never weighed
    [low] = queueing.spot_bid([spot(queueing.LOW_BID_PERCENT - 1)], quoted)
    assert low.verdict is Verdict.WARNING and "m5.large $0.0900/h in us-east-1a" in low.seen
    # at the threshold nothing is said, whatever the Spot price
    assert queueing.spot_bid([spot(queueing.LOW_BID_PERCENT)], quoted) == []


def test_the_docs_state_the_spot_bid_threshold() -> None:
    text = (Path(__file__).parents[2] / "docs" / "doctor.md").read_text()
    [row] = [line for line in text.splitlines() if line.startswith("| `spot-bid` |")]
    assert f"fixed threshold of {queueing.LOW_BID_PERCENT} %" in row
    assert "not a comparison" in row and "never set against the Spot price" in row

"""Gathering what the AWS rules read, within limits: every call read-only, each kind of fact read
once per run (cached), at most `MAX_ENVIRONMENTS` compute environments a run (and so their
instance types, networks, ECS clusters and Spot prices). A call that is refused, or a queue
whose environments would pass the limit, becomes a "not checked" finding, never a failure of the
run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from batchkit.clustermodel import Queue
from batchkit.computemodel import ComputeEnvironment, InstanceType, SpotPrice
from batchkit.doctor import capacity, network, queueing
from batchkit.doctor.findings import Finding, Verdict, not_checked
from batchkit.doctor.network import Network
from batchkit.doctor.scene import Scene
from batchkit.doctor.sources import AwsFacts
from batchkit.errors import AccessDeniedError, BatchkitError

T = TypeVar("T")

MAX_ENVIRONMENTS = 6
"""A queue has at most 3 compute environments; a run reads at most this many distinct ones (a
whole-cluster check leaves out the queues past it, the default queue first in)."""

MAX_SPOT_TYPES = 20


class Gatherer:
    """One run's reads (cached) and the findings of checks it could not make."""

    def __init__(self, facts: AwsFacts) -> None:
        self.facts = facts
        self.skipped: list[Finding] = []
        self._cache: dict[tuple[str, tuple[str, ...]], object] = {}
        self._environments: dict[str, ComputeEnvironment | None] = {}
        """Every environment read so far, by the name or ARN it was asked by (None: absent)."""
        self._refused: set[str] = set()

    def _read(
        self, what: str, rule: str, check: str, key: tuple[str, ...], read: Callable[[], T]
    ) -> T | None:
        cache_key = (what, key)
        if cache_key in self._cache:
            return self._cache[cache_key]  # type: ignore[return-value]
        try:
            value: T | None = read()
        except AccessDeniedError as err:
            self.skipped.append(not_checked(rule, check, err.permission))
            value = None
        except BatchkitError as err:
            self.skipped.append(
                Finding(rule, check, Verdict.NOT_CHECKED, f"could not check: {err}", likelihood=0)
            )
            value = None
        self._cache[cache_key] = value
        return value

    def queue(self, name: str) -> Queue | None:
        found = self._read(
            "queues", "queue-state", f"queue {name}", (name,), lambda: self.facts.queues([name])
        )
        return found[0] if found else None

    def knows(self, queues: Sequence[Queue]) -> None:
        """Queues already read (a cluster check lists them first): `queue` answers from them."""
        for q in queues:
            self._cache[("queues", (q.name,))] = [q]
            self._cache[("queues", (q.arn,))] = [q]

    def environments(self, queue: str, names: Sequence[str]) -> list[ComputeEnvironment] | None:
        """The compute environments of `queue` in its order, each read once per run; None when
        they were not read: the call was refused, or they would take the run past `MAX_ENVIRONMENTS`
        (a "not checked" finding says which)."""
        wanted = list(dict.fromkeys(names))
        new = [name for name in wanted if name not in self._environments]
        if len(self._environments) + len(new) > MAX_ENVIRONMENTS:
            left_out = ", ".join(name.rsplit("/", 1)[-1] for name in new)
            self.skipped.append(
                Finding(
                    "environment-state",
                    f"queue {queue}: compute environments",
                    Verdict.NOT_CHECKED,
                    f"not checked: one run reads at most {MAX_ENVIRONMENTS} compute "
                    f"environments; left out: {left_out}",
                    fix=f"`batchkit doctor JOB_ID` of a job in queue {queue} checks them",
                    likelihood=0,
                )
            )
            return None
        if new:
            found = self._read(
                "environments",
                "environment-state",
                "compute environments",
                tuple(new),
                lambda: self.facts.compute_environments(new),
            )
            for name in new:
                self._environments[name] = next(
                    (ce for ce in found or () if name in (ce.name, ce.arn)), None
                )
                if found is None:
                    self._refused.add(name)
        if self._refused.intersection(wanted):
            return None
        return [ce for name in wanted if (ce := self._environments.get(name)) is not None]

    def instance_types(self, ce: ComputeEnvironment) -> list[InstanceType] | None:
        return self._read(
            "types",
            "instance-fit",
            f"compute environment {ce.name}: instance types",
            ce.instance_types,
            lambda: self.facts.instance_types(ce.instance_types),
        )

    def network(self, ce: ComputeEnvironment) -> Network:
        check = f"compute environment {ce.name}: network"
        subnets = self._read(
            "subnets", "network", check, ce.subnets, lambda: self.facts.subnets(ce.subnets)
        )
        vpcs = tuple(sorted({s.vpc_id for s in subnets or ()}))
        needs_nat = any(
            (s.default_route() or _NO_ROUTE).target.startswith("nat-") for s in subnets or ()
        )
        needs_endpoints = any(s.default_route() is None for s in subnets or ())
        nats = (
            self._read("nats", "network", check, vpcs, lambda: self.facts.nat_gateways(vpcs))
            if needs_nat
            else []
        )
        endpoints = (
            self._read("endpoints", "network", check, vpcs, lambda: self.facts.vpc_endpoints(vpcs))
            if needs_endpoints
            else []
        )
        groups = self._read(
            "groups",
            "egress",
            f"compute environment {ce.name}: security groups",
            ce.security_groups,
            lambda: self.facts.security_groups(ce.security_groups),
        )
        return Network(subnets, nats, endpoints, groups)

    def joined(self, ce: ComputeEnvironment) -> int | None:
        if ce.is_fargate or not ce.ecs_cluster_arn or ce.desired_vcpus <= 0:
            return None
        arn = ce.ecs_cluster_arn
        return self._read(
            "joined",
            "instances-joining",
            f"compute environment {ce.name}: instances joining ECS",
            (arn,),
            lambda: self.facts.container_instance_count(arn),
        )

    def spot_prices(self, ce: ComputeEnvironment) -> list[SpotPrice]:
        if ce.compute_type != "SPOT" or ce.bid_percentage is None:
            return []
        if ce.bid_percentage >= queueing.LOW_BID_PERCENT:
            return []
        types = [t.name for t in self.instance_types(ce) or ()][:MAX_SPOT_TYPES]
        key = tuple(types)
        return (
            self._read(
                "spot",
                "spot-bid",
                f"compute environment {ce.name}: Spot bid",
                key,
                lambda: self.facts.spot_prices(list(key)),
            )
            or []
        )

    def architectures(self, image: str | None) -> tuple[str, ...] | None:
        if not image:
            return None
        return self._read(
            "architectures",
            "architecture",
            f"image {image}: architecture",
            (image,),
            lambda: self.facts.image_architectures(image),
        )


class _NoRoute:
    target = ""


_NO_ROUTE = _NoRoute()


def environment_findings(
    gather: Gatherer,
    queue: Queue | None,
    environments: Sequence[ComputeEnvironment],
    waited_s: float,
) -> list[Finding]:
    """What holds for every job of the queue: states, network, security groups, joining, bids."""
    out = [*queueing.queue_state(queue), *queueing.environment_state(queue, environments)]
    joined: dict[str, int | None] = {}
    prices: dict[str, list[SpotPrice]] = {}
    for ce in environments:
        if ce.type == "MANAGED" and ce.state == "ENABLED":
            net = gather.network(ce)
            out += network.routes(ce, net, gather.facts.region)
            out += network.egress(ce, net)
        joined[ce.name] = gather.joined(ce)
        prices[ce.name] = gather.spot_prices(ce)
    out += queueing.instances_joining(environments, joined, waited_s)
    out += queueing.spot_bid(environments, prices)
    return out


def job_findings(gather: Gatherer, scene: Scene) -> list[Finding]:
    """What depends on the job's ask: Batch's reason, maxvCpus, instance types, GPUs, Fargate."""
    for ce in scene.environments:
        if not ce.is_fargate and ce.type == "MANAGED":
            types = gather.instance_types(ce)
            if types is not None:
                scene.instance_types[ce.name] = types
    return [
        *queueing.batch_reason(scene),
        *capacity.architecture(scene, gather.architectures(scene.job.image)),
        *capacity.max_vcpus(scene),
        *capacity.instance_fit(scene),
        *capacity.gpus(scene),
        *capacity.fargate_combination(scene),
        *queueing.scaling(scene),
    ]

"""Rules about the network of a compute environment: can its instances (or Fargate tasks) reach
ECR, S3, ECS and CloudWatch Logs? Through an internet gateway with a public IP, a NAT gateway, or
VPC endpoints for every one of those services; and may their security groups send anything?

(AWS Batch user guide, "Jobs stuck in RUNNABLE status": instances need outbound access to ECS,
and "VPC endpoints" in the Amazon ECR user guide: ecr.api, ecr.dkr and the S3 gateway endpoint,
plus logs for the awslogs driver.)
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct

from batchkit.computemodel import ComputeEnvironment, NatGateway, SecurityGroup, Subnet, VpcEndpoint
from batchkit.doctor.findings import Finding, Verdict

ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "s3", "logs")
EC2_ENDPOINT_SERVICES = ("ecs", "ecs-agent", "ecs-telemetry")


class Network(Struct, frozen=True):
    """What was read about one environment's network (None: not checked)."""

    subnets: Sequence[Subnet] | None
    nat_gateways: Sequence[NatGateway] | None
    endpoints: Sequence[VpcEndpoint] | None
    security_groups: Sequence[SecurityGroup] | None


def _missing_endpoints(
    ce: ComputeEnvironment, subnet: Subnet, endpoints: Sequence[VpcEndpoint], region: str
) -> list[str]:
    wanted = ENDPOINT_SERVICES + (() if ce.is_fargate else EC2_ENDPOINT_SERVICES)
    have = {
        e.service_name.rsplit(".", 1)[-1] if e.service_name.endswith(".s3") else e.service_name
        for e in endpoints
    }
    missing: list[str] = []
    for service in wanted:
        names = {f"com.amazonaws.{region}.{service}", service}
        if not names & have:
            missing.append(service)
    return missing


def _subnet_verdict(
    ce: ComputeEnvironment, subnet: Subnet, network: Network, region: str
) -> tuple[bool | None, str]:
    """(True: reaches AWS, False: does not, None: cannot tell) and what was seen."""
    route = subnet.default_route()
    target = route.target if route else ""
    if target.startswith("nat-"):
        nats = {n.nat_gateway_id: n for n in network.nat_gateways or ()}
        nat = nats.get(target)
        if network.nat_gateways is not None and (nat is None or nat.state != "available"):
            state = nat.state if nat else "missing"
            return False, f"{subnet.subnet_id}: default route to NAT gateway {target} ({state})"
        return True, f"{subnet.subnet_id}: default route to NAT gateway {target}"
    if target.startswith("igw-"):
        if subnet.public_ip_on_launch or ce.is_fargate:
            extra = (
                " (Fargate: the job definition must assign a public IP)" if ce.is_fargate else ""
            )
            return True, f"{subnet.subnet_id}: default route to {target}{extra}"
        return False, (
            f"{subnet.subnet_id}: default route to {target} but instances get no public IP "
            "(MapPublicIpOnLaunch is off), so they cannot use it"
        )
    if target:
        return None, f"{subnet.subnet_id}: default route to {target} (cannot tell where it leads)"
    if network.endpoints is None:
        return None, f"{subnet.subnet_id}: no default route; VPC endpoints not checked"
    missing = _missing_endpoints(ce, subnet, network.endpoints, region)
    if not missing:
        return True, f"{subnet.subnet_id}: no default route, VPC endpoints for every service"
    return False, (
        f"{subnet.subnet_id}: no route to an internet or NAT gateway and no VPC endpoint for "
        + ", ".join(missing)
    )


def routes(ce: ComputeEnvironment, network: Network, region: str) -> list[Finding]:
    if network.subnets is None or not ce.subnets:
        return []
    check = f"compute environment {ce.name}: network"
    results = [_subnet_verdict(ce, s, network, region) for s in network.subnets]
    bad = [seen for ok, seen in results if ok is False]
    good = [seen for ok, seen in results if ok is True]
    unknown = [seen for ok, seen in results if ok is None]
    if bad:
        verdict = Verdict.PROBLEM if not good else Verdict.WARNING
        return [
            Finding(
                "network",
                check,
                verdict,
                "; ".join(bad) + ": instances and tasks there cannot pull images or send logs",
                fix="give the subnets a route to a NAT gateway, or add VPC endpoints for ECR "
                "(ecr.api, ecr.dkr), S3 (gateway), CloudWatch Logs and ECS, or use public "
                "subnets with MapPublicIpOnLaunch; then `batchkit cluster update`",
                likelihood=85 if verdict is Verdict.PROBLEM else 45,
            )
        ]
    if unknown:
        return [Finding("network", check, Verdict.WARNING, "; ".join(unknown), likelihood=20)]
    return [Finding("network", check, Verdict.OK, "; ".join(good))]


def egress(ce: ComputeEnvironment, network: Network) -> list[Finding]:
    if network.security_groups is None or not ce.security_groups:
        return []
    check = f"compute environment {ce.name}: security groups"
    closed = [g for g in network.security_groups if g.egress_rules == 0]
    if closed and len(closed) == len(network.security_groups):
        names = ", ".join(f"{g.group_id} ({g.name})" for g in closed)
        return [
            Finding(
                "egress",
                check,
                Verdict.PROBLEM,
                f"no outbound rule in {names}: instances cannot reach ECS, ECR or S3",
                fix="allow outbound HTTPS (443) to 0.0.0.0/0 or the VPC endpoints in the "
                "security group (EC2 console, Security Groups, Outbound rules)",
                likelihood=84,
            )
        ]
    counts = ", ".join(
        f"{g.group_id}: {g.egress_rules} outbound rules" for g in network.security_groups
    )
    return [Finding("egress", check, Verdict.OK, counts)]

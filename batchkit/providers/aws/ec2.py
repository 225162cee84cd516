"""The EC2 gateway: what `batchkit doctor` reads about instance types, subnets and their routes,
NAT gateways, VPC endpoints, security groups and Spot prices. Read-only calls, each through the
rate-limited `Api`, returning `batchkit.computemodel` objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from batchkit.providers.aws.session import Api

# The compute model is imported by the calls that return it: the AWS provider imports this
# gateway, and every command (`sub`, `stat`) would otherwise pay for the model's tables.
if TYPE_CHECKING:
    from batchkit.computemodel import (
        InstanceType,
        NatGateway,
        Route,
        SecurityGroup,
        SpotPrice,
        Subnet,
        VpcEndpoint,
    )

FILTER_VALUES = 200
"""EC2 accepts up to 200 values in one filter (EC2 API reference, "Filtering your resources")."""

TYPES_PAGE = 100
"""DescribeInstanceTypes' largest page (MaxResults 5-100)."""

BATCH_BUNDLES: Mapping[str, tuple[str, ...]] = {
    # AWS Batch API reference, ComputeResource.instanceTypes: `optimal` picks from the
    # default_x86_64 families since 2025-11-01 (c4/m4/r4/c5/m5/r5 before; both are listed so
    # that the largest type is never underestimated); default_arm64 from the Graviton families.
    "optimal": ("m6i", "c6i", "r6i", "c7i", "m5", "c5", "r5", "m4", "c4", "r4"),
    "default_x86_64": ("m6i", "c6i", "r6i", "c7i"),
    "default_arm64": ("m6g", "c6g", "r6g", "c7g"),
}


def expand_instance_types(names: Sequence[str]) -> list[str]:
    """A compute environment's `instanceTypes` as DescribeInstanceTypes filter values: a bundle
    (`optimal`, `default_x86_64`) becomes its families, a family (`m5`) becomes `m5.*`, a size
    stays as it is."""
    values: list[str] = []
    for name in names:
        for item in BATCH_BUNDLES.get(name, (name,)):
            value = item if "." in item else f"{item}.*"
            if value not in values:
                values.append(value)
    return values


def instance_type_from(item: Mapping[str, Any]) -> InstanceType:
    from batchkit.computemodel import InstanceType

    gpus = sum(int(g.get("Count", 0)) for g in (item.get("GpuInfo") or {}).get("Gpus") or ())
    processor = item.get("ProcessorInfo") or {}
    return InstanceType(
        name=str(item["InstanceType"]),
        vcpus=int((item.get("VCpuInfo") or {}).get("DefaultVCpus", 0)),
        memory=int((item.get("MemoryInfo") or {}).get("SizeInMiB", 0)),
        gpus=gpus,
        architectures=tuple(str(a) for a in processor.get("SupportedArchitectures") or ()),
    )


def _routes(table: Mapping[str, Any]) -> tuple[Route, ...]:
    from batchkit.computemodel import Route

    routes: list[Route] = []
    for item in table.get("Routes") or ():
        if item.get("State") == "blackhole":
            continue
        destination = item.get("DestinationCidrBlock") or item.get("DestinationIpv6CidrBlock")
        destination = destination or item.get("DestinationPrefixListId") or ""
        target = next(
            (
                str(item[key])
                for key in (
                    "GatewayId",
                    "NatGatewayId",
                    "TransitGatewayId",
                    "VpcPeeringConnectionId",
                    "NetworkInterfaceId",
                    "InstanceId",
                    "EgressOnlyInternetGatewayId",
                )
                if item.get(key)
            ),
            "",
        )
        routes.append(Route(str(destination), target))
    return tuple(routes)


class Ec2Gateway:
    """EC2, read-only, spoken in `batchkit.computemodel`."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def instance_types(self, names: Sequence[str]) -> list[InstanceType]:
        """The instance types a compute environment may launch (`names` as Batch takes them:
        sizes, families, `optimal`), through the `instance-type` filter, which takes wildcards."""
        values = expand_instance_types(names)
        found: dict[str, InstanceType] = {}
        for i in range(0, len(values), FILTER_VALUES):
            for page in self._api.paginate(
                "describe_instance_types",
                cursor_in="NextToken",
                cursor_out="NextToken",
                Filters=[{"Name": "instance-type", "Values": values[i : i + FILTER_VALUES]}],
                MaxResults=TYPES_PAGE,
            ):
                for item in page.get("InstanceTypes") or ():
                    kind = instance_type_from(item)
                    found[kind.name] = kind
        return sorted(found.values(), key=lambda t: t.name)

    def subnets(self, subnet_ids: Sequence[str]) -> list[Subnet]:
        """These subnets with the routes of their route table: the one associated with the
        subnet, else the main table of its VPC (VPC user guide, "Route tables")."""
        from batchkit.computemodel import Subnet

        ids = list(dict.fromkeys(subnet_ids))
        if not ids:
            return []
        raw: list[Mapping[str, Any]] = []
        for page in self._api.paginate(
            "describe_subnets",
            cursor_in="NextToken",
            cursor_out="NextToken",
            Filters=[{"Name": "subnet-id", "Values": ids}],
        ):
            raw.extend(page.get("Subnets") or ())
        vpcs = sorted({str(s["VpcId"]) for s in raw})
        tables: list[Mapping[str, Any]] = []
        if vpcs:
            for page in self._api.paginate(
                "describe_route_tables",
                cursor_in="NextToken",
                cursor_out="NextToken",
                Filters=[{"Name": "vpc-id", "Values": vpcs}],
            ):
                tables.extend(page.get("RouteTables") or ())
        by_subnet: dict[str, Mapping[str, Any]] = {}
        main: dict[str, Mapping[str, Any]] = {}
        for table in tables:
            for association in table.get("Associations") or ():
                if association.get("Main"):
                    main[str(table.get("VpcId"))] = table
                elif association.get("SubnetId"):
                    by_subnet[str(association["SubnetId"])] = table
        out: list[Subnet] = []
        for item in raw:
            subnet_id, vpc = str(item["SubnetId"]), str(item["VpcId"])
            table = by_subnet.get(subnet_id) or main.get(vpc) or {}
            out.append(
                Subnet(
                    subnet_id=subnet_id,
                    vpc_id=vpc,
                    availability_zone=str(item.get("AvailabilityZone", "")),
                    public_ip_on_launch=bool(item.get("MapPublicIpOnLaunch")),
                    routes=_routes(table),
                )
            )
        return out

    def nat_gateways(self, vpc_ids: Sequence[str]) -> list[NatGateway]:
        from batchkit.computemodel import NatGateway

        found: list[NatGateway] = []
        for page in self._api.paginate(
            "describe_nat_gateways",
            cursor_in="NextToken",
            cursor_out="NextToken",
            Filters=[{"Name": "vpc-id", "Values": list(vpc_ids)}],
        ):
            found.extend(
                NatGateway(str(n["NatGatewayId"]), str(n.get("SubnetId", "")), str(n["State"]))
                for n in page.get("NatGateways") or ()
            )
        return found

    def vpc_endpoints(self, vpc_ids: Sequence[str]) -> list[VpcEndpoint]:
        from batchkit.computemodel import VpcEndpoint

        found: list[VpcEndpoint] = []
        for page in self._api.paginate(
            "describe_vpc_endpoints",
            cursor_in="NextToken",
            cursor_out="NextToken",
            Filters=[{"Name": "vpc-id", "Values": list(vpc_ids)}],
        ):
            found.extend(
                VpcEndpoint(
                    service_name=str(e["ServiceName"]),
                    endpoint_type=str(e.get("VpcEndpointType", "")),
                    subnets=tuple(str(s) for s in e.get("SubnetIds") or ()),
                    route_tables=tuple(str(r) for r in e.get("RouteTableIds") or ()),
                )
                for e in page.get("VpcEndpoints") or ()
                if str(e.get("State", "available")).lower() == "available"
            )
        return found

    def security_groups(self, group_ids: Sequence[str]) -> list[SecurityGroup]:
        from batchkit.computemodel import SecurityGroup

        ids = list(dict.fromkeys(group_ids))
        if not ids:
            return []
        found: list[SecurityGroup] = []
        for page in self._api.paginate(
            "describe_security_groups",
            cursor_in="NextToken",
            cursor_out="NextToken",
            Filters=[{"Name": "group-id", "Values": ids}],
        ):
            found.extend(
                SecurityGroup(
                    group_id=str(g["GroupId"]),
                    name=str(g.get("GroupName", "")),
                    egress_rules=len(g.get("IpPermissionsEgress") or ()),
                )
                for g in page.get("SecurityGroups") or ()
            )
        return found

    def spot_prices(self, instance_types: Sequence[str], *, limit: int = 20) -> list[SpotPrice]:
        """The latest Linux Spot price of each type in each zone (one call: the newest `limit`
        entries, which is what a bid is compared with)."""
        from batchkit.computemodel import SpotPrice

        if not instance_types:
            return []
        response = self._api.call(
            "describe_spot_price_history",
            InstanceTypes=list(instance_types)[:FILTER_VALUES],
            ProductDescriptions=["Linux/UNIX"],
            MaxResults=limit,
        )
        latest: dict[tuple[str, str], SpotPrice] = {}
        for item in response.get("SpotPriceHistory") or ():
            key = (str(item["InstanceType"]), str(item.get("AvailabilityZone", "")))
            if key not in latest:  # newest first
                latest[key] = SpotPrice(key[0], key[1], float(item["SpotPrice"]))
        return list(latest.values())

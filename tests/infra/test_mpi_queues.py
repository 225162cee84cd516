"""Queues for multi-node MPI jobs: `efa: true` (EFA interfaces, the EFA driver, a cluster
placement group, EFA instance types only) and `placement_group: true`."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.api import lint

from batchkit.errors import ConfigError
from batchkit.infra.config import parse_cluster_config
from batchkit.infra.efa import supports_efa
from batchkit.infra.template import render_template, render_yaml

BASE = """\
name: lab
region: us-east-1
subnets: [subnet-0123456789abcdef0]
security_groups: [sg-0123456789abcdef0]
queues:
  - name: cpu
    compute_environments:
      - name: od
  - name: hpc
"""


def template(queue: str) -> dict[str, Any]:
    return render_template(parse_cluster_config(BASE + queue, "lab.yaml"))


def errors(queue: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_cluster_config(BASE + queue, "lab.yaml")
    return caught.value.message


EFA_QUEUE = """\
    efa: true
    compute_environments:
      - name: big
        instance_types: [hpc7a.96xlarge, c6in.32xlarge]
"""


def test_an_efa_queue_gets_efa_interfaces_the_driver_and_a_placement_group() -> None:
    resources = template(EFA_QUEUE)["Resources"]
    data = resources["LaunchTemplateEfaHpc"]["Properties"]["LaunchTemplateData"]
    assert data["NetworkInterfaces"] == [
        {
            "DeviceIndex": 0,
            "InterfaceType": "efa",
            "Groups": ["sg-0123456789abcdef0"],
            "DeleteOnTermination": True,
        }
    ]
    assert "efa_installer.sh -y --minimal" in data["UserData"]["Fn::Base64"]
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1  # the cluster's options too
    assert resources["PlacementGroupHpc"]["Properties"]["Strategy"] == "cluster"
    compute = resources["ComputeEnvironmentHpcBig"]["Properties"]["ComputeResources"]
    assert compute["LaunchTemplate"]["LaunchTemplateId"] == {"Ref": "LaunchTemplateEfaHpc"}
    assert compute["PlacementGroup"] == {"Ref": "PlacementGroupHpc"}
    # the other queue keeps the plain launch template, and no placement group
    other = resources["ComputeEnvironmentCpuOd"]["Properties"]["ComputeResources"]
    assert other["LaunchTemplate"]["LaunchTemplateId"] == {"Ref": "LaunchTemplate"}
    assert "PlacementGroup" not in other


def test_multi_node_jobs_to_an_efa_queue_get_the_efa_device() -> None:
    rendered = template(EFA_QUEUE)
    definition = rendered["Resources"]["JobDefinitionMnpEfa"]
    assert definition["Condition"] == "MultiNodeEnabled"
    container = definition["Properties"]["NodeProperties"]["NodeRangeProperties"][0]["Container"]
    assert container["LinuxParameters"]["Devices"] == [
        {
            "HostPath": "/dev/infiniband/uverbs0",
            "ContainerPath": "/dev/infiniband/uverbs0",
            "Permissions": ["READ", "WRITE", "MKNOD"],
        }
    ]
    output = rendered["Outputs"]["EfaJobDefinitions"]
    assert output["Condition"] == "MultiNodeEnabled"
    assert output["Value"] == {"Fn::Sub": '{"hpc": "${JobDefinitionMnpEfa}"}'}
    # the plain multi-node definition has no device (it would not start off EFA instances)
    plain = rendered["Resources"]["JobDefinitionMnp"]["Properties"]["NodeProperties"]
    assert "LinuxParameters" not in plain["NodeRangeProperties"][0]["Container"]


def test_a_placement_group_alone_takes_no_efa() -> None:
    resources = template(
        "    placement_group: true\n    compute_environments:\n      - name: c7i\n"
        "        instance_types: [c7i]\n"
    )["Resources"]
    assert not any(
        name.startswith(("LaunchTemplateEfa", "JobDefinitionMnpEfa")) for name in resources
    )
    compute = resources["ComputeEnvironmentHpcC7i"]["Properties"]["ComputeResources"]
    assert compute["PlacementGroup"] == {"Ref": "PlacementGroupHpc"}
    assert compute["LaunchTemplate"]["LaunchTemplateId"] == {"Ref": "LaunchTemplate"}


def test_the_efa_template_is_cfn_lint_clean() -> None:
    config = parse_cluster_config(BASE + EFA_QUEUE, "lab.yaml")
    matches = lint(render_yaml(config), regions=[config.region])
    assert [str(m) for m in matches if m.rule.id.startswith("E")] == []


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        (
            "    efa: true\n    compute_environments:\n      - name: f\n        type: FARGATE\n",
            "queues[1].efa: Fargate has no EFA; use EC2 or SPOT environments",
        ),
        (
            "    placement_group: true\n    compute_environments:\n      - name: f\n"
            "        type: FARGATE\n",
            "queues[1].placement_group: Fargate has no placement groups",
        ),
        (
            "    efa: true\n    compute_environments:\n      - name: e\n",
            "queues[1].compute_environments[0].instance_types: an `efa: true` queue needs "
            "instance types that support EFA",
        ),
        (
            "    efa: true\n    compute_environments:\n      - name: e\n"
            "        instance_types: [c6in.32xlarge, c6in, t3.large]\n",
            "instance_types[1]: 'c6in' does not support EFA (a family needs its size",
        ),
    ],
)
def test_efa_and_placement_group_rules(queue: str, message: str) -> None:
    found = errors(queue)
    assert message in found
    if "t3.large" in queue:
        assert "instance_types[2]: 't3.large' does not support EFA" in found
        assert "describe-instance-types --filters Name=network-info.efa-supported" in found


def test_efa_instance_types() -> None:
    assert supports_efa("hpc7a.96xlarge") and supports_efa("P5.48XLARGE")
    assert not supports_efa("c6in.large") and not supports_efa("optimal")

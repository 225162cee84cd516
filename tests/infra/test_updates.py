"""The `cluster update` review: which config changes update the cluster in place, which need new
instances (and what that does to running jobs), and which are refused before anything changes.
Judged on the templates batchkit renders, against the CloudFormation registry's schemas."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cfnlint
import pytest

from batchkit.infra.config import parse_cluster_config
from batchkit.infra.template import render_template
from batchkit.infra.updates import (
    COMPUTE_ENVIRONMENT,
    CONDITIONAL,
    CREATE_ONLY,
    NAME_PROPERTY,
    Review,
    adopt_update_policy,
    review_update,
)

ROOT = Path(__file__).resolve().parents[2]
SPOT_FARGATE = (ROOT / "examples" / "spot-fargate.yaml").read_text()
SERVICE_LINKED = (
    "arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
)


def template(text: str) -> dict[str, Any]:
    return render_template(parse_cluster_config(text))


def review(old_text: str, new_text: str, **kwargs: Any) -> Review:
    return review_update(template(old_text), template(new_text), **kwargs)


def effects(result: Review) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {e.logical_id: (e.kind, e.properties) for e in result.effects}


def test_an_unchanged_config_changes_nothing() -> None:
    assert review(SPOT_FARGATE, SPOT_FARGATE) == Review()


def test_scaling_changes_touch_no_instances() -> None:
    result = review(SPOT_FARGATE, SPOT_FARGATE.replace("max_vcpus: 1024", "max_vcpus: 2048"))
    assert result == Review()


def test_new_instance_types_are_an_infrastructure_update_that_lets_running_jobs_finish() -> None:
    result = review(
        SPOT_FARGATE,
        SPOT_FARGATE.replace("instance_types: [c7i, m7i]\n", "instance_types: [c7i]\n"),
    )
    assert result.refusals == ()
    assert effects(result) == {
        "ComputeEnvironmentBatchOndemand": (
            "infrastructure-update",
            ("ComputeResources/InstanceTypes",),
        )
    }
    (effect,) = result.effects
    assert "running jobs get up to 30 minutes to finish" in effect.running_jobs
    assert not result.adopt


def test_new_subnets_update_ec2_and_fargate_environments_in_place() -> None:
    new = SPOT_FARGATE.replace(", subnet-0c1d2e3f4a5b60718]", "]")
    # legacy-spot's BEST_FIT cannot take an infrastructure update: that one is refused.
    result = review(SPOT_FARGATE, new)
    assert [r.logical_id for r in result.refusals] == ["ComputeEnvironmentLegacySpotBestfit"]
    assert "BEST_FIT" in result.refusals[0].reason
    kinds = effects(result)
    assert kinds["ComputeEnvironmentBatchSpot"][0] == "infrastructure-update"
    assert kinds["ComputeEnvironmentSmallFargate"] == (
        "infrastructure-update",
        ("ComputeResources/Subnets",),
    )
    fargate = next(e for e in result.effects if e.logical_id == "ComputeEnvironmentSmallFargate")
    assert fargate.running_jobs.startswith("running jobs keep running")


def test_changed_tags_would_replace_named_compute_environments_and_are_refused() -> None:
    result = review(SPOT_FARGATE, SPOT_FARGATE.replace('cost-center: "4711"', 'cost-center: "42"'))
    refused = {r.logical_id for r in result.refusals}
    assert refused == {
        lid
        for lid, r in template(SPOT_FARGATE)["Resources"].items()
        if r["Type"] == COMPUTE_ENVIRONMENT
    }
    refusal = result.refusals[0]
    assert "Tags" in refusal.reason and "fixed name" in refusal.reason
    assert any("another `name:`" in step for step in refusal.steps)


def test_a_fargate_environment_cannot_become_fargate_spot_or_ec2() -> None:
    spot = review(
        SPOT_FARGATE,
        SPOT_FARGATE.replace(
            "name: fargate\n        type: FARGATE\n", "name: fargate\n        type: FARGATE_SPOT\n"
        ),
    )
    assert [r.logical_id for r in spot.refusals] == ["ComputeEnvironmentSmallFargate"]
    assert "only its subnets and security groups" in spot.refusals[0].reason


def test_best_fit_environments_refuse_infrastructure_updates() -> None:
    new = SPOT_FARGATE.replace("bid_percentage: 50", "bid_percentage: 60")
    result = review(SPOT_FARGATE, new)
    (refusal,) = result.refusals
    assert refusal.logical_id == "ComputeEnvironmentLegacySpotBestfit"
    assert "BEST_FIT" in refusal.reason
    assert result.effects == ()


def test_an_infrastructure_update_needs_the_service_linked_role() -> None:
    new = SPOT_FARGATE.replace("bid_percentage: 70", "bid_percentage: 60")
    own = review(SPOT_FARGATE, new, service_role="arn:aws:iam::123456789012:role/my-batch")
    assert [r.logical_id for r in own.refusals] == ["ComputeEnvironmentBatchSpot"]
    assert "BatchServiceRole=" in own.refusals[0].steps[0]
    linked = review(SPOT_FARGATE, new, service_role=SERVICE_LINKED)
    assert linked.refusals == ()
    assert effects(linked) == {
        "ComputeEnvironmentBatchSpot": (
            "infrastructure-update",
            ("ComputeResources/BidPercentage",),
        )
    }


def test_a_launch_template_change_reaches_the_compute_environments_using_it() -> None:
    base = (
        SPOT_FARGATE.replace("legacy-spot", "legacy")
        .replace("BEST_FIT\n", "BEST_FIT_PROGRESSIVE\n")
        .replace(
            "type: SPOT\n        allocation_strategy: BEST_FIT_PROGRESSIVE",
            "type: EC2\n        allocation_strategy: BEST_FIT_PROGRESSIVE",
        )
        .replace("        bid_percentage: 50\n", "")
    )
    new = base + "launch_template:\n  root_volume_gib: 200\n"
    result = review(base, new)
    assert result.refusals == ()
    assert {e.logical_id for e in result.effects} == {
        "ComputeEnvironmentBatchSpot",
        "ComputeEnvironmentBatchOndemand",
        "ComputeEnvironmentLegacyBestfit",
    }
    assert all(e.properties == ("ComputeResources/LaunchTemplate",) for e in result.effects)


def test_removed_queues_and_environments_say_what_happens_to_their_jobs() -> None:
    start = SPOT_FARGATE.index("  - name: legacy-spot")
    end = SPOT_FARGATE.index("  - name: small")
    result = review(SPOT_FARGATE, SPOT_FARGATE[:start] + SPOT_FARGATE[end:])
    assert effects(result) == {
        "JobQueueLegacySpot": ("remove", ()),
        "ComputeEnvironmentLegacySpotBestfit": ("remove", ()),
    }
    texts = {e.logical_id: e.running_jobs for e in result.effects}
    assert "jobs running on it stop" in texts["ComputeEnvironmentLegacySpotBestfit"]


def test_a_stack_without_the_update_policy_adopts_it_alone_first() -> None:
    old = template(SPOT_FARGATE)
    for resource in old["Resources"].values():
        if resource["Type"] == COMPUTE_ENVIRONMENT:
            resource["Properties"].pop("ReplaceComputeEnvironment")
            resource["Properties"].pop("UpdatePolicy", None)
    new = template(SPOT_FARGATE.replace("instance_types: [c7i, m7i]\n", "instance_types: [c7i]\n"))
    assert review_update(old, new).adopt
    adopted = adopt_update_policy(old)
    # The first step changes nothing but the policy, the second is the change itself.
    assert review_update(old, adopted) == Review()
    assert adopted == template(SPOT_FARGATE)
    second = review_update(adopted, new)
    assert not second.adopt and [e.logical_id for e in second.effects] == [
        "ComputeEnvironmentBatchOndemand"
    ]


def test_every_compute_environment_declares_how_it_is_updated() -> None:
    for resource in template(SPOT_FARGATE)["Resources"].values():
        if resource["Type"] != COMPUTE_ENVIRONMENT:
            continue
        properties = resource["Properties"]
        assert properties["ReplaceComputeEnvironment"] is False
        fargate = properties["ComputeResources"]["Type"].startswith("FARGATE")
        # AWS::Batch::ComputeEnvironment UpdatePolicy: for EC2 compute environments; Batch API
        # Reference, UpdatePolicy: JobExecutionTimeoutMinutes 1-360 (7200 in newer versions).
        if fargate:
            assert "UpdatePolicy" not in properties
        else:
            policy = properties["UpdatePolicy"]
            assert policy["TerminateJobsOnUpdate"] is False
            assert 1 <= policy["JobExecutionTimeoutMinutes"] <= 360


def _schema(resource_type: str) -> dict[str, Any]:
    folder = Path(os.path.dirname(cfnlint.__file__)) / "data" / "schemas"
    index = json.loads((folder / "providers" / "us-east-1.json").read_text())
    return dict(json.loads((folder / "resources" / f"{index[resource_type]}.json").read_text()))


def _paths(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, item in value.items():
        path = f"{prefix}{key}"
        found |= {path} | _paths(item, f"{path}/")
    return found


@pytest.fixture(scope="module")
def used() -> dict[str, set[str]]:
    """Each resource type of the golden templates, with every property path it sets."""
    import yaml

    from tests.infra.test_template import CONFIGS, config_of

    paths: dict[str, set[str]] = {}
    for name in CONFIGS:
        rendered = yaml.safe_load(json.dumps(render_template(config_of(name))))
        for resource in rendered["Resources"].values():
            paths.setdefault(resource["Type"], set()).update(_paths(resource.get("Properties", {})))
    return paths


def test_create_only_properties_follow_the_registry_schemas(used: dict[str, set[str]]) -> None:
    """CloudFormation registry schemas (as cfn-lint ships them): `createOnlyProperties` of each
    type batchkit uses, limited to the paths batchkit sets, are exactly `CREATE_ONLY`'s."""
    for resource_type, paths in sorted(used.items()):
        if not resource_type.startswith("AWS::"):
            continue
        schema = _schema(resource_type)
        create_only = {
            p.removeprefix("/properties/") for p in schema.get("createOnlyProperties", [])
        }
        # A path under a create-only property is covered by it (EncryptionConfiguration/KmsKey).
        outermost = {p for p in create_only if not any(p.startswith(f"{q}/") for q in create_only)}
        assert outermost & paths == set(CREATE_ONLY.get(resource_type, ())) & paths, resource_type
        assert set(CREATE_ONLY.get(resource_type, ())) <= create_only, resource_type
        name = NAME_PROPERTY.get(resource_type)
        assert name is None or name in create_only, resource_type


def test_conditional_properties_follow_the_registry_schema() -> None:
    schema = _schema(COMPUTE_ENVIRONMENT)
    conditional = {
        p.removeprefix("/properties/") for p in schema["conditionalCreateOnlyProperties"]
    }
    assert set(CONDITIONAL) == conditional
    assert schema["properties"]["ReplaceComputeEnvironment"]["default"] is True


def test_a_replaced_placement_group_moves_its_compute_environment_to_new_instances() -> None:
    """An unnamed resource is replaced freely; what refers to it by Ref changes with it."""
    old = template((ROOT / "examples" / "mpi.yaml").read_text())
    new = json.loads(json.dumps(old))
    groups = [lid for lid, r in new["Resources"].items() if r["Type"] == "AWS::EC2::PlacementGroup"]
    assert groups, "the mpi example has a placement group"
    new["Resources"][groups[0]]["Properties"]["Strategy"] = "spread"
    result = review_update(old, new)
    kinds = {e.logical_id: e.kind for e in result.effects}
    assert kinds.pop(groups[0]) == "replace"
    assert set(kinds.values()) == {"infrastructure-update"} and kinds
    assert all(
        e.properties == ("ComputeResources/PlacementGroup",)
        for e in result.effects
        if e.kind == "infrastructure-update"
    )

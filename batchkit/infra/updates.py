"""What a `cluster update` would do to a running cluster, decided from the two templates before
anything changes.

The rules, and where they come from:
- CloudFormation replaces a resource when one of its create-only properties changes (the resource
  type schemas of the CloudFormation registry, `createOnlyProperties`; `CREATE_ONLY` below, checked
  against those schemas by the tests), and it cannot replace a resource that has a fixed name: it
  creates the new one before deleting the old, and the name is taken ("CloudFormation cannot update
  a stack when a custom-named resource requires replacing", AWS re:Post knowledge center). batchkit
  names its compute environments, queues, buckets and roles, so such a change would fail halfway
  and roll back: it is refused here instead, with the steps that do work.
- A compute environment with `ReplaceComputeEnvironment: false` takes changes of its
  conditionally create-only properties (`CONDITIONAL` below) as an *infrastructure update*: Batch
  replaces its instances (AWS Batch User Guide, "Perform infrastructure updates"). That needs the
  service-linked role AWSServiceRoleForBatch and an allocation strategy other than BEST_FIT. Jobs
  running on the old instances get `JobExecutionTimeoutMinutes` to finish (the compute
  environment's UpdatePolicy; AWS Batch API Reference, "UpdatePolicy").
- A Fargate compute environment updates only its subnets and security groups in place (AWS Batch
  User Guide, "Updating compute environments").
- CloudFormation's AWS::Batch::ComputeEnvironment reference, ReplaceComputeEnvironment: when it is
  switched to false, change nothing else in the same update (a failed rollback would leave the
  stack in UPDATE_ROLLBACK_FAILED). A stack made before batchkit set it first takes an update of
  its own template with only that added (`adopt_update_policy`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from msgspec import Struct

COMPUTE_ENVIRONMENT = "AWS::Batch::ComputeEnvironment"
JOB_QUEUE = "AWS::Batch::JobQueue"
SERVICE_LINKED_ROLE = "AWSServiceRoleForBatch"

# Minutes Batch lets a running job finish on an instance an infrastructure update replaces; the
# template sets AWS's default explicitly so the plan can say it.
JOB_EXECUTION_TIMEOUT_MINUTES = 30


def update_policy(fargate: bool) -> dict[str, Any]:
    """What every batchkit compute environment declares about updates: changes that need new
    instances are infrastructure updates, not replacements (which a fixed name forbids), and jobs
    running on replaced instances are not stopped at once. UpdatePolicy is for EC2 compute
    environments only (AWS::Batch::ComputeEnvironment UpdatePolicy)."""
    policy: dict[str, Any] = {"ReplaceComputeEnvironment": False}
    if not fargate:
        policy["UpdatePolicy"] = {
            "TerminateJobsOnUpdate": False,
            "JobExecutionTimeoutMinutes": JOB_EXECUTION_TIMEOUT_MINUTES,
        }
    return policy


def adopt_update_policy(template: Mapping[str, Any]) -> dict[str, Any]:
    """`template` with `update_policy` added to each compute environment, and nothing else
    changed: the first of two updates for a stack whose compute environments lack it."""
    adopted = copy.deepcopy(dict(template))
    for resource in adopted.get("Resources", {}).values():
        if resource.get("Type") == COMPUTE_ENVIRONMENT:
            properties = resource.setdefault("Properties", {})
            kind = _at(properties, "ComputeResources/Type")
            properties.update(update_policy(kind in FARGATE_TYPES))
    return adopted


# Per resource type batchkit's templates use: the properties whose change replaces the resource
# (the registry schemas' createOnlyProperties, limited to what batchkit sets).
CREATE_ONLY: Mapping[str, tuple[str, ...]] = {
    COMPUTE_ENVIRONMENT: (
        "ComputeEnvironmentName",
        "Type",
        "Tags",
        "ComputeResources/SpotIamFleetRole",
    ),
    JOB_QUEUE: ("JobQueueName",),
    "AWS::Batch::JobDefinition": ("JobDefinitionName",),
    "AWS::Batch::SchedulingPolicy": ("Name",),
    "AWS::CloudWatch::Dashboard": ("DashboardName",),
    "AWS::CodeBuild::Project": ("Name",),
    "AWS::EC2::LaunchTemplate": ("LaunchTemplateName",),
    "AWS::EC2::PlacementGroup": ("Strategy", "Tags"),
    "AWS::ECR::Repository": ("RepositoryName", "EncryptionConfiguration"),
    "AWS::Events::Rule": ("Name",),
    "AWS::IAM::InstanceProfile": ("Path",),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", "Description", "Path"),
    "AWS::IAM::Role": ("Path",),
    "AWS::Lambda::Function": ("FunctionName",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Logs::ResourcePolicy": ("PolicyName",),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::S3::BucketPolicy": ("Bucket",),
    "AWS::SNS::Subscription": ("Endpoint", "Protocol", "TopicArn"),
    "AWS::SNS::Topic": ("TopicName",),
}

# The property that gives a resource of each type a fixed name, where batchkit sets one.
NAME_PROPERTY: Mapping[str, str] = {
    COMPUTE_ENVIRONMENT: "ComputeEnvironmentName",
    JOB_QUEUE: "JobQueueName",
    "AWS::Batch::SchedulingPolicy": "Name",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CodeBuild::Project": "Name",
    "AWS::EC2::LaunchTemplate": "LaunchTemplateName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::Events::Rule": "Name",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Logs::ResourcePolicy": "PolicyName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
}

# A compute environment's conditionally create-only properties (conditionalCreateOnlyProperties):
# an infrastructure update with ReplaceComputeEnvironment false, a replacement otherwise.
CONDITIONAL: tuple[str, ...] = (
    "ComputeResources/AllocationStrategy",
    "ComputeResources/BidPercentage",
    "ComputeResources/Ec2Configuration",
    "ComputeResources/Ec2KeyPair",
    "ComputeResources/ImageId",
    "ComputeResources/InstanceRole",
    "ComputeResources/InstanceTypes",
    "ComputeResources/LaunchTemplate",
    "ComputeResources/PlacementGroup",
    "ComputeResources/ScalingPolicy",
    "ComputeResources/SecurityGroupIds",
    "ComputeResources/Subnets",
    "ComputeResources/Tags",
    "ComputeResources/Type",
)
FARGATE_IN_PLACE = ("ComputeResources/SecurityGroupIds", "ComputeResources/Subnets")
FARGATE_TYPES = ("FARGATE", "FARGATE_SPOT")


class Effect(Struct, frozen=True):
    """What one resource's change does to the work on the cluster."""

    logical_id: str
    resource_type: str
    kind: str  # infrastructure-update | replace | remove
    properties: tuple[str, ...]
    running_jobs: str  # what happens to jobs running there, in a sentence

    def to_dict(self) -> dict[str, Any]:
        return {
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "kind": self.kind,
            "properties": list(self.properties),
            "running_jobs": self.running_jobs,
        }


class Refusal(Struct, frozen=True):
    """A change CloudFormation or Batch cannot make in place, and how to make it instead."""

    logical_id: str
    resource_type: str
    reason: str
    steps: tuple[str, ...]


class Review(Struct, frozen=True):
    effects: tuple[Effect, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    # The stack's compute environments predate `ReplaceComputeEnvironment: false`: an update that
    # adopts it alone (`adopt_update_policy`) must come first.
    adopt: bool = False


def _at(properties: Mapping[str, Any], path: str) -> Any:
    value: Any = properties
    for key in path.split("/"):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _references(value: Any) -> Iterator[tuple[str, str]]:
    """(logical id, attribute or "Ref") of every Ref and Fn::GetAtt inside `value`."""
    if isinstance(value, Mapping):
        if "Ref" in value and isinstance(value["Ref"], str):
            yield value["Ref"], "Ref"
        target = value.get("Fn::GetAtt")
        if isinstance(target, list) and len(target) == 2:
            yield str(target[0]), str(target[1])
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _properties(template: Mapping[str, Any], logical_id: str) -> Mapping[str, Any]:
    resource = template.get("Resources", {}).get(logical_id) or {}
    return resource.get("Properties") or {}


class _Reviewer:
    def __init__(
        self, old: Mapping[str, Any], new: Mapping[str, Any], service_role: str, config_file: str
    ) -> None:
        self.old = old
        self.new = new
        self.service_role = service_role
        self.config_file = config_file
        self.effects: list[Effect] = []
        self.refusals: list[Refusal] = []
        self.replaced: set[str] = set()  # replaced unnamed resources: their Ref changes
        self.versioned: set[str] = set()  # modified launch templates: a new LatestVersionNumber
        self.adopt = False

    def review(self) -> Review:
        old_resources = self.old.get("Resources", {})
        new_resources = self.new.get("Resources", {})
        kept = [
            lid
            for lid in new_resources
            if lid in old_resources and old_resources[lid].get("Type") == new_resources[lid]["Type"]
        ]
        for lid in kept:
            self._replacement(lid, new_resources[lid]["Type"])
        for lid in kept:
            if new_resources[lid]["Type"] == COMPUTE_ENVIRONMENT:
                self._compute_environment(lid)
        for lid, resource in old_resources.items():
            if lid not in new_resources:
                self._removed(lid, str(resource.get("Type")))
        return Review(tuple(self.effects), tuple(self.refusals), self.adopt)

    def _replacement(self, lid: str, kind: str) -> None:
        old, new = _properties(self.old, lid), _properties(self.new, lid)
        if kind == "AWS::EC2::LaunchTemplate" and old != new:
            self.versioned.add(lid)
        changed = [p for p in CREATE_ONLY.get(kind, ()) if _at(old, p) != _at(new, p)]
        if not changed:
            return
        names = ", ".join(_short(p) for p in changed)
        if NAME_PROPERTY.get(kind) not in new:
            self.replaced.add(lid)
            running = (
                "a new one replaces it; running jobs are touched only through the compute "
                "environments that use it"
            )
            self.effects.append(Effect(lid, kind, "replace", tuple(changed), running))
            return
        if kind == COMPUTE_ENVIRONMENT:
            steps = self._blue_green(lid)
        else:
            steps = (
                f"put back in {self.config_file} what changed {names} of {lid}",
                "or delete the cluster and create it again (`batchkit cluster delete`, then "
                "`batchkit cluster create`)",
            )
        self.refusals.append(
            Refusal(
                lid,
                kind,
                f"changing {names} replaces {lid} ({kind}), and CloudFormation cannot replace "
                "a resource with a fixed name",
                steps,
            )
        )

    def _blue_green(self, lid: str) -> tuple[str, ...]:
        name = _properties(self.old, lid).get("ComputeEnvironmentName", lid)
        return (
            f"give the compute environment {name} another `name:` in {self.config_file} and run "
            "`batchkit cluster update` again: the new one is created and the old one deleted, "
            "which stops the jobs running on it",
            "or, to let running jobs finish: add the compute environment under a new name next "
            "to the old one, `batchkit cluster update`, wait until `batchkit stat` shows none of "
            "the old one's jobs running, then remove the old one and `batchkit cluster update`",
        )

    def _compute_environment(self, lid: str) -> None:
        old, new = _properties(self.old, lid), _properties(self.new, lid)
        changed = [p for p in CONDITIONAL if _at(old, p) != _at(new, p)]
        for prop in ("ComputeResources/LaunchTemplate", "ComputeResources/PlacementGroup"):
            depends = {target for target, _ in _references(_at(new, prop))}
            if prop not in changed and depends & (self.versioned | self.replaced):
                changed.append(prop)
        if not changed or any(r.logical_id == lid for r in self.refusals):
            return
        names = ", ".join(_short(p) for p in changed)
        old_type = str(_at(old, "ComputeResources/Type") or "")
        new_type = str(_at(new, "ComputeResources/Type") or "")
        refuse = ""
        steps = self._blue_green(lid)
        if (old_type in FARGATE_TYPES) != (new_type in FARGATE_TYPES):
            refuse = f"{lid} cannot change between Fargate and EC2 ({old_type} to {new_type})"
        elif new_type in FARGATE_TYPES and set(changed) - set(FARGATE_IN_PLACE):
            refuse = (
                "a Fargate compute environment updates only its subnets and security groups "
                f"in place, not {names}"
            )
        elif "BEST_FIT" in (
            _at(old, "ComputeResources/AllocationStrategy"),
            _at(new, "ComputeResources/AllocationStrategy"),
        ):
            refuse = (
                f"changing {names} of {lid} needs an infrastructure update, which Batch does not "
                "do for the BEST_FIT allocation strategy"
            )
        elif self.service_role and not _is_service_linked(self.service_role):
            refuse = (
                f"changing {names} of {lid} needs an infrastructure update, which Batch does only "
                f"with its service-linked role {SERVICE_LINKED_ROLE}, not {self.service_role}"
            )
            steps = (
                "update with `--param BatchServiceRole=` (empty: the service-linked role) and "
                "run `batchkit cluster update` again",
                *steps,
            )
        if refuse:
            self.refusals.append(Refusal(lid, COMPUTE_ENVIRONMENT, refuse, steps))
            return
        if old.get("ReplaceComputeEnvironment") is not False:
            self.adopt = True
        if new_type in FARGATE_TYPES:
            running = "running jobs keep running; new jobs use the new settings"
        else:
            minutes = _at(new, "UpdatePolicy/JobExecutionTimeoutMinutes")
            running = (
                "Batch replaces its instances: new jobs start on new instances, running jobs "
                f"get up to {minutes or JOB_EXECUTION_TIMEOUT_MINUTES} minutes to finish, then stop"
            )
        self.effects.append(
            Effect(lid, COMPUTE_ENVIRONMENT, "infrastructure-update", tuple(changed), running)
        )

    def _removed(self, lid: str, kind: str) -> None:
        if kind == COMPUTE_ENVIRONMENT:
            running = "its instances are terminated: jobs running on it stop"
        elif kind == JOB_QUEUE:
            running = "jobs still in it are cancelled or stopped"
        else:
            return
        self.effects.append(Effect(lid, kind, "remove", (), running))


def _is_service_linked(role_arn: str) -> bool:
    """IAM role names are not distinguished by case (IAM User Guide, "IAM object quotas and
    names"), so the role's name is compared without it."""
    return role_arn.rsplit("/", 1)[-1].lower() == SERVICE_LINKED_ROLE.lower()


def review_update(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    service_role: str = "",
    config_file: str = "the config",
) -> Review:
    """What updating a stack from template `old` to `new` does, and what it cannot do.

    `service_role`: the BatchServiceRole parameter the update runs with ("" is the service-linked
    role); `config_file`: named in the steps of a refusal."""
    return _Reviewer(old, new, service_role, config_file).review()

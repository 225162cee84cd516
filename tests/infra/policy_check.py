"""What one recorded AWS call needs from IAM, and whether a policy grants it.

`needs(call)` turns a call (service, operation, parameters, response) into the IAM requests AWS
evaluates for it: action, resource ARN and the condition keys the request carries. The table is
kept small and explicit; each ARN format comes from the resource types table of the Service
Authorization Reference (SAR) page named beside it, "Actions, resources, and condition keys
for <service>" (docs.aws.amazon.com/service-authorization/latest/reference/list_<page>.html).

`Evaluator` resolves the policy's `Fn::Sub` ARNs for one deployed stack and matches each need
against the statements: action, resource (IAM wildcards, as `fnmatchcase`) and conditions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

ANY = "*"  # the resource of actions the SAR lists no resource type for


@dataclass
class Call:
    service: str  # the signing name: batch, ecs, s3, …
    operation: str
    params: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"

    @property
    def error(self) -> str | None:
        return (self.response.get("Error") or {}).get("Code")


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Where:
    """The deployed cluster: account and region, and how moto named its ECS clusters."""

    account: str
    region: str
    ecs_clusters: Mapping[str, str] = field(default_factory=dict)

    def arn(self, service: str, rest: str, *, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{rest}"


# Actions with no resource type in the SAR (allowed on "*" only).
UNSCOPED = {
    *(
        f"batch:{action}"  # list_awsbatch.html
        for action in (
            "DescribeComputeEnvironments",
            "DescribeJobDefinitions",
            "DescribeJobQueues",
            "DescribeJobs",
            "ListJobs",
        )
    ),
    *(
        f"ec2:Describe{what}"  # list_amazonec2.html
        for what in (
            "Instances",
            "InstanceTypes",
            "Subnets",
            "RouteTables",
            "NatGateways",
            "VpcEndpoints",
            "SecurityGroups",
            "SpotPriceHistory",
        )
    ),
}
# sts:GetCallerIdentity needs no permission (list_awssecuritytokenservice.html: "no permission
# is required to perform this operation").
NO_PERMISSION = {"sts:GetCallerIdentity"}


def _last(name_or_arn: str) -> str:
    """A name, or the name in a `…:type/name` ARN."""
    return name_or_arn.split("/", 1)[1] if name_or_arn.startswith("arn:") else name_or_arn


def needs(call: Call, where: Where) -> list[Need]:
    """The IAM requests one call makes; KeyError for a call the table does not know yet."""
    p, r, action = call.params, call.response, call.name
    if action in NO_PERMISSION:
        return []
    if action in UNSCOPED:
        return [Need(action, ANY)]
    if call.service == "batch":
        # list_awsbatch.html: job-queue/${JobQueueName}, job-definition/${JobDefinitionName}:
        # ${Revision}, job/${JobId}.
        def batch(kind: str, name_or_arn: str) -> str:
            if name_or_arn.startswith("arn:"):
                return name_or_arn
            return where.arn("batch", f"{kind}/{name_or_arn}")

        if call.operation == "SubmitJob":
            out = [
                Need(action, batch("job-queue", p["jobQueue"])),
                Need(action, batch("job-definition", p["jobDefinition"])),
            ]
            if p.get("tags"):  # tags on create: TagResource on the new job
                out.append(Need("batch:TagResource", batch("job", r["jobId"])))
            return out
        if call.operation == "RegisterJobDefinition":
            definition = r["jobDefinitionArn"]
            out = [Need(action, definition)]
            if p.get("tags"):
                out.append(Need("batch:TagResource", definition))
            container = p.get("containerProperties") or {}
            # list_awsidentityandaccessmanagementiam.html: role/${RoleNameWithPath}; the
            # request carries iam:PassedToService.
            for role in (container.get("jobRoleArn"), container.get("executionRoleArn")):
                if role:
                    passed = (("iam:PassedToService", "batch.amazonaws.com"),)
                    out.append(Need("iam:PassRole", role, passed))
            return out
        if call.operation == "TerminateJob":
            return [Need(action, batch("job", p["jobId"]))]
    if call.service == "ecs":
        # list_amazonelasticcontainerservice.html: cluster/${ClusterName} (ListContainerInstances),
        # container-instance/${ClusterName}/${ContainerInstanceId} (DescribeContainerInstances,
        # condition key ecs:cluster).
        cluster = where.ecs_clusters.get(_last(p["cluster"]), _last(p["cluster"]))
        cluster_arn = where.arn("ecs", f"cluster/{cluster}")
        if call.operation == "ListContainerInstances":
            return [Need(action, cluster_arn)]
        if call.operation == "DescribeContainerInstances":
            return [
                Need(
                    action,
                    where.arn("ecs", f"container-instance/{cluster}/{i.rsplit('/', 1)[-1]}"),
                    (("ecs:cluster", cluster_arn),),
                )
                for i in p["containerInstances"]
            ]
    if call.service == "s3":
        # list_amazons3.html: object ${BucketName}/${ObjectName}, bucket ${BucketName}; s3:prefix
        # is a condition key of ListBucket requests. HeadObject is authorised as GetObject, and
        # a GetObject/HeadObject of a missing key answers 404 (not 403) only to a caller with
        # ListBucket on the bucket (S3 API Reference, HeadObject and GetObject, "Permissions").
        bucket = f"arn:aws:s3:::{p['Bucket']}"
        if call.operation == "ListObjectsV2":
            return [Need("s3:ListBucket", bucket, (("s3:prefix", p.get("Prefix", "")),))]
        verbs = {"PutObject": "s3:PutObject", "GetObject": "s3:GetObject"}
        verbs["HeadObject"] = "s3:GetObject"
        if call.operation in verbs:
            out = [Need(verbs[call.operation], f"{bucket}/{p['Key']}")]
            if call.error in ("404", "NoSuchKey", "NotFound"):
                out.append(Need("s3:ListBucket", bucket))  # not a list request: no s3:prefix
            return out
    if call.service == "logs" and call.operation == "GetLogEvents":
        # list_amazoncloudwatchlogs.html: log-group:${LogGroupName}:log-stream:${LogStreamName}
        stream = f"log-group:{p['logGroupName']}:log-stream:{p['logStreamName']}"
        return [Need(action, where.arn("logs", stream))]
    if call.service == "cloudformation" and call.operation == "DescribeStacks":
        # list_awscloudformation.html: stack/${StackName}/${Id}
        stacks = r.get("Stacks") or []
        stack = (
            stacks[0]["StackId"]
            if stacks
            else where.arn("cloudformation", f"stack/{p['StackName']}/*")
        )
        return [Need(action, stack)]
    if call.service == "ecr" and call.operation in ("DescribeImages", "BatchGetImage"):
        # list_amazonelasticcontainerregistry.html: repository/${RepositoryName}
        return [Need(action, where.arn("ecr", f"repository/{p['repositoryName']}"))]
    if call.service == "codebuild":
        # list_awscodebuild.html: project/${ProjectName}; a build id is "<project>:<uuid>" and
        # BatchGetBuilds and StopBuild are authorised on the build's project.
        ids = {"StartBuild": [p.get("projectName", "")], "StopBuild": [p.get("id", "")]}
        ids["BatchGetBuilds"] = list(p.get("ids") or [])
        return [
            Need(action, where.arn("codebuild", f"project/{i.split(':', 1)[0]}"))
            for i in ids[call.operation]
        ]
    raise KeyError(f"{action} is not in the table of tests/infra/policy_check.py")


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _matches(operator: str, value: str, pattern: str) -> bool:
    if operator == "StringEquals":
        return value == pattern
    if operator == "StringLike":
        return fnmatchcase(value, pattern)
    if operator == "ArnLike":
        return fnmatchcase(value, pattern)
    raise KeyError(f"condition operator {operator} is not evaluated by policy_check")


@dataclass
class Evaluator:
    """The statements of a policy with its `Fn::Sub` strings resolved from `variables`."""

    statements: list[dict[str, Any]]
    variables: Mapping[str, str]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
            return _VARIABLE.sub(lambda m: self.variables[m[1]], value["Fn::Sub"])
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def resolved(self) -> list[dict[str, Any]]:
        out = []
        for statement in self.statements:
            resources = self.resolve(statement["Resource"])
            out.append(
                {
                    "Sid": statement["Sid"],
                    "Action": list(statement["Action"]),
                    "Resource": resources if isinstance(resources, list) else [resources],
                    "Condition": self.resolve(statement.get("Condition") or {}),
                }
            )
        return out

    def grants(self, need: Need) -> tuple[str, str] | None:
        """(Sid, resource pattern) of the first statement that allows `need`, or None."""
        context = dict(need.context)
        for statement in self.resolved():
            if need.action not in statement["Action"]:
                continue
            if not _conditions_hold(statement["Condition"], context):
                continue
            for pattern in statement["Resource"]:
                if fnmatchcase(need.resource, pattern):
                    return statement["Sid"], pattern
        return None


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: dict[str, str]) -> bool:
    """Every operator and key must hold; a key the request does not carry fails (no IfExists)."""
    for operator, keys in conditions.items():
        for key, patterns in keys.items():
            wanted = patterns if isinstance(patterns, list) else [patterns]
            if key not in context:
                return False
            if not any(_matches(operator, context[key], str(w)) for w in wanted):
                return False
    return True

"""The rules real AWS enforces on the requests batchkit sends, and moto does not.

Each rule names the AWS document it comes from. `check(service, operation, params)` returns the
violations of one request (botocore's parameters, before serialization); `RuleChecker` keeps the
state a rule needs across requests (which job definitions are Fargate's: learnt from what batchkit
registered, and, through `learn` on answers, from DescribeJobDefinitions and from the stack's
`FargateJobDefinitions` output in DescribeStacks) and is what the autouse fixture
(`tests/fixtures/aws_rules_check.py`) registers on every `AwsSession` and, for the Lambdas'
boto3 calls, `tests/lambdas/conftest.py` on every boto3 client their tests make.

Documents (AWS, as of 2026):
- BATCH_QUOTAS   https://docs.aws.amazon.com/batch/latest/userguide/service_limits.html
  (20 job dependencies, 24 KiB RegisterJobDefinition, 30 KiB SubmitJob payload, arrays ≤ 10,000)
- SUBMIT_JOB     https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html
  (jobName pattern; arrayProperties.size 2-10,000; timeout ≥ 60 s; retry attempts 1-10;
  shareIdentifier up to 255 letters and digits; schedulingPriorityOverride 0-9999)
- OVERRIDES      https://docs.aws.amazon.com/batch/latest/APIReference/API_ContainerOverrides.html
  (command "can't contain an empty string"; environment names "cannot start with AWS_BATCH")
- RESOURCES      https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html
  (GPU/MEMORY/VCPU values; Fargate vCPU and memory combinations)
- REGISTER       https://docs.aws.amazon.com/batch/latest/APIReference/API_RegisterJobDefinition.html
  (jobDefinitionName up to 128 letters, digits, hyphens and underscores; `type`: "If the job is
  run on Fargate resources, then multinode isn't supported")
- CONTAINER      https://docs.aws.amazon.com/batch/latest/APIReference/API_ContainerProperties.html
  (executionRoleArn: "For jobs that run on Fargate resources, you must provide an execution
  role"; fargatePlatformConfiguration, networkConfiguration: Fargate's only)
- FARGATE        https://docs.aws.amazon.com/batch/latest/userguide/fargate.html
  (no multi-node parallel jobs, no GPUs; an execution role; resourceRequirements, not vcpus/memory)
- BATCH_TAGS     https://docs.aws.amazon.com/batch/latest/userguide/using-tags.html
  (≤ 50 tags, keys ≤ 128 and values ≤ 256 characters, no `aws:` prefix)
- CFN_CREATE     https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
  (StackName pattern ≤ 128; TemplateBody ≤ 51,200 bytes; ≤ 50 tags; ClientRequestToken pattern)
- CFN_UPDATE     https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStack.html
  (StackName: a stack's name or unique id; TemplateBody ≤ 51,200 bytes; ≤ 50 tags;
  ClientRequestToken as CreateStack's)
- CFN_TAG        https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Tag.html
- CFN_CHANGESET  https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
- CB_START       https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html
  (timeoutInMinutesOverride 5-2160; queuedTimeoutInMinutesOverride 5-480)
- CB_ENV         https://docs.aws.amazon.com/codebuild/latest/APIReference/API_EnvironmentVariable.html
  (name: minimum length of 1)
- ECS_DESCRIBE   https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeContainerInstances.html
  (up to 100 container instances a call)
- BATCH_DESCRIBE https://docs.aws.amazon.com/batch/latest/APIReference/API_DescribeJobs.html
  (up to 100 jobs a call), API_ListJobs.html (maxResults: the minimum is 1; up to 1000)
- QUEUES_DESCRIBE https://docs.aws.amazon.com/batch/latest/APIReference/API_DescribeJobQueues.html
  ("A list of up to 100 queue names or full queue Amazon Resource Name (ARN) entries")
- CES_DESCRIBE   https://docs.aws.amazon.com/batch/latest/APIReference/API_DescribeComputeEnvironments.html
  ("A list of up to 100 compute environment names or full Amazon Resource Name (ARN) entries")
- DEFS_DESCRIBE  https://docs.aws.amazon.com/batch/latest/APIReference/API_DescribeJobDefinitions.html
  ("A list of up to 100 job definitions")
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

Params = Mapping[str, Any]

# The describe calls' pages, which `_at_most` names at each rule.
_BATCH_API = "https://docs.aws.amazon.com/batch/latest/APIReference/"
BATCH_DESCRIBE = _BATCH_API + "API_DescribeJobs.html"
QUEUES_DESCRIBE = _BATCH_API + "API_DescribeJobQueues.html"
CES_DESCRIBE = _BATCH_API + "API_DescribeComputeEnvironments.html"
DEFS_DESCRIBE = _BATCH_API + "API_DescribeJobDefinitions.html"
ECS_DESCRIBE = (
    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeContainerInstances.html"
)

KIB = 1024
SUBMIT_JOB_PAYLOAD_LIMIT = 30 * KIB  # BATCH_QUOTAS
REGISTER_PAYLOAD_LIMIT = 24 * KIB  # BATCH_QUOTAS
MAX_DEPENDENCIES = 20  # BATCH_QUOTAS
ARRAY_SIZE = (2, 10_000)  # SUBMIT_JOB
MIN_TIMEOUT_SECONDS = 60  # SUBMIT_JOB, REGISTER
RETRY_ATTEMPTS = (1, 10)  # SUBMIT_JOB (RetryStrategy)
MAX_EVALUATE_ON_EXIT = 5  # SUBMIT_JOB (RetryStrategy.evaluateOnExit: up to 5)
SHARE_IDENTIFIER = re.compile(r"^[A-Za-z0-9]{1,255}$")  # SUBMIT_JOB shareIdentifier
SCHEDULING_PRIORITY = (0, 9999)  # SUBMIT_JOB schedulingPriorityOverride
BATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")  # SUBMIT_JOB jobName
DEFINITION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # REGISTER jobDefinitionName
MAX_TAGS = 50  # BATCH_TAGS, CFN_CREATE
TAG_KEY, TAG_VALUE = 128, 256  # BATCH_TAGS, CFN_TAG
STACK_NAME = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,127}$")  # CFN_CREATE, CFN_CHANGESET
#: CFN_UPDATE: "The name or unique stack ID of the stack to update."
STACK_ID = re.compile(
    r"^arn:aws[-a-z]*:cloudformation:[-a-z0-9]+:\d{12}:stack/[A-Za-z][-A-Za-z0-9]*/"
)
REQUEST_TOKEN = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9]{0,127}$")  # CFN_CREATE ClientRequestToken
TEMPLATE_BODY_LIMIT = 51_200  # CFN_CREATE
BUILD_TIMEOUT = (5, 2160)  # CB_START
BUILD_QUEUED_TIMEOUT = (5, 480)  # CB_START
DESCRIBE_LIMIT = 100  # BATCH_DESCRIBE, QUEUES_DESCRIBE, CES_DESCRIBE, DEFS_DESCRIBE, ECS_DESCRIBE
#: CONTAINER: container fields only Fargate takes ("Jobs that are running on Amazon EC2
#: resources must not specify this parameter"); a definition that has them is Fargate's.
FARGATE_ONLY = ("fargatePlatformConfiguration", "networkConfiguration")
LIST_JOBS_MAX = 1000  # BATCH_DESCRIBE (ListJobs maxResults)

#: RESOURCES: Fargate memory (MiB) allowed for each vCPU value.
FARGATE_MEMORY: dict[str, tuple[int, ...]] = {
    "0.25": (512, 1024, 2048),
    "0.5": tuple(range(1024, 4097, 1024)),
    "1": tuple(range(2048, 8193, 1024)),
    "2": tuple(range(4096, 16385, 1024)),
    "4": tuple(range(8192, 30721, 1024)),
    "8": tuple(range(16384, 61441, 4096)),
    "16": tuple(range(32768, 122881, 8192)),
}


def _size(params: Params) -> int:
    return len(json.dumps(params, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _batch_tags(tags: Mapping[str, str] | None, where: str) -> list[str]:
    """BATCH_TAGS."""
    problems: list[str] = []
    tags = tags or {}
    if len(tags) > MAX_TAGS:
        problems.append(f"{where}: {len(tags)} tags, more than {MAX_TAGS}")
    for key, value in tags.items():
        if not 1 <= len(key) <= TAG_KEY or key.lower().startswith("aws:"):
            problems.append(f"{where}: tag key {key!r} (1-{TAG_KEY} chars, no aws: prefix)")
        if len(value) > TAG_VALUE:
            problems.append(f"{where}: tag {key!r} value longer than {TAG_VALUE}")
    return problems


def _cfn_tags(tags: list[Mapping[str, str]] | None, where: str) -> list[str]:
    """CFN_CREATE (≤ 50 tags), CFN_TAG (key 1-128, value 1-256, no aws: prefix)."""
    problems: list[str] = []
    tags = tags or []
    if len(tags) > MAX_TAGS:
        problems.append(f"{where}: {len(tags)} tags, more than {MAX_TAGS}")
    for tag in tags:
        key, value = str(tag.get("Key", "")), str(tag.get("Value", ""))
        if not 1 <= len(key) <= TAG_KEY or key.lower().startswith("aws:"):
            problems.append(f"{where}: tag key {key!r} (1-{TAG_KEY} chars, no aws: prefix)")
        if not 1 <= len(value) <= TAG_VALUE:
            problems.append(f"{where}: tag {key!r} value must be 1-{TAG_VALUE} chars")
    return problems


def _resources(requirements: list[Params] | None, where: str, *, fargate: bool) -> list[str]:
    """RESOURCES; FARGATE (no GPU, the vCPU/memory combinations)."""
    problems: list[str] = []
    found: dict[str, str] = {}
    for item in requirements or []:
        kind, value = str(item.get("type")), item.get("value")
        if kind not in ("VCPU", "MEMORY", "GPU"):
            problems.append(f"{where}: resourceRequirements type {kind!r}")
            continue
        if not isinstance(value, str):
            problems.append(f"{where}: resourceRequirements {kind} value must be a string")
            continue
        if kind in found:
            problems.append(f"{where}: resourceRequirements has {kind} twice")
        found[kind] = value
    if fargate:
        if "GPU" in found:
            problems.append(f"{where}: GPUs are not available on Fargate")
        vcpus, memory = found.get("VCPU"), found.get("MEMORY")
        if vcpus is not None and vcpus not in FARGATE_MEMORY:
            problems.append(f"{where}: {vcpus} vCPUs is not a Fargate value")
        elif (
            vcpus is not None
            and memory is not None
            and (not memory.isdigit() or int(memory) not in FARGATE_MEMORY[vcpus])
        ):
            problems.append(f"{where}: {memory} MiB is not valid with {vcpus} Fargate vCPUs")
        return problems
    for kind in ("VCPU", "MEMORY", "GPU"):
        value = found.get(kind)
        if value is not None and (not value.isdigit() or int(value) < 1):
            problems.append(f"{where}: {kind} {value!r} must be a positive integer on EC2")
    if "MEMORY" in found and found["MEMORY"].isdigit() and int(found["MEMORY"]) < 4:
        problems.append(f"{where}: MEMORY must be at least 4 MiB")
    return problems


def _overrides(overrides: Params, where: str, *, fargate: bool) -> list[str]:
    """OVERRIDES (command, environment; vcpus and memory "deprecated", resourceRequirements
    instead); RESOURCES."""
    problems: list[str] = []
    command = overrides.get("command") or []
    if any(part == "" for part in command):
        problems.append(f"{where}: command contains an empty string")
    for item in overrides.get("environment") or []:
        if str(item.get("name", "")).startswith("AWS_BATCH"):
            problems.append(f"{where}: environment variable {item.get('name')} (AWS_BATCH*)")
    for legacy in ("vcpus", "memory"):
        if legacy in overrides:
            problems.append(f"{where}: {legacy} is deprecated; use resourceRequirements")
    problems += _resources(overrides.get("resourceRequirements"), where, fargate=fargate)
    return problems


def _retry_and_timeout(params: Params, where: str) -> list[str]:
    """SUBMIT_JOB, REGISTER: retryStrategy.attempts 1-10, up to 5 evaluateOnExit conditions;
    timeout.attemptDurationSeconds at least 60."""
    problems: list[str] = []
    retry = params.get("retryStrategy") or {}
    attempts = retry.get("attempts")
    if attempts is not None and not RETRY_ATTEMPTS[0] <= attempts <= RETRY_ATTEMPTS[1]:
        problems.append(f"{where}: retryStrategy.attempts {attempts} (1-10)")
    if len(retry.get("evaluateOnExit") or []) > MAX_EVALUATE_ON_EXIT:
        problems.append(f"{where}: more than {MAX_EVALUATE_ON_EXIT} evaluateOnExit entries")
    timeout = (params.get("timeout") or {}).get("attemptDurationSeconds")
    if timeout is not None and timeout < MIN_TIMEOUT_SECONDS:
        problems.append(f"{where}: timeout {timeout} s is under {MIN_TIMEOUT_SECONDS}")
    return problems


def _definition_name(definition: str) -> str:
    """`name` of `arn:...:job-definition/name:3`, `name:3` or `name`."""
    return definition.rsplit("/", 1)[-1].split(":", 1)[0]


def _is_fargate_definition(definition: Params) -> bool:
    """REGISTER (platformCapabilities FARGATE), or CONTAINER: Fargate-only container fields (a
    copy of a definition moto's CloudFormation made, whose description lacks its
    platformCapabilities, still has them)."""
    if "FARGATE" in (definition.get("platformCapabilities") or []):
        return True
    container = definition.get("containerProperties") or {}
    return any(container.get(key) for key in FARGATE_ONLY)


class RuleChecker:
    """Checks requests; remembers which job definitions are Fargate's."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._fargate: set[str] = set()
        self._lock = threading.Lock()

    def check(self, service: str, operation: str, params: Params) -> list[str]:
        rule = _RULES.get((service, operation))
        problems = rule(self, params) if rule else []
        if problems:
            with self._lock:
                self.violations.extend(f"{service}.{operation}: {p}" for p in problems)
        return problems

    def is_fargate(self, definition: str) -> bool:
        with self._lock:
            return _definition_name(definition) in self._fargate

    def learn(self, service: str, operation: str, parsed: Params) -> None:
        """Which definitions are Fargate's, from answers: DescribeJobDefinitions, and the
        stack's `FargateJobDefinitions` output (queue name → definition ARN, a JSON object) in
        DescribeStacks, which names the definitions the stack made (moto's CloudFormation
        registers them without their platformCapabilities)."""
        names: list[str] = []
        if (service, operation) == ("batch", "DescribeJobDefinitions"):
            names = [
                str(d.get("jobDefinitionName", ""))
                for d in parsed.get("jobDefinitions") or []
                if _is_fargate_definition(d)
            ]
        elif (service, operation) == ("cloudformation", "DescribeStacks"):
            for stack in parsed.get("Stacks") or []:
                for output in stack.get("Outputs") or []:
                    if output.get("OutputKey") != "FargateJobDefinitions":
                        continue
                    try:
                        arns = json.loads(str(output.get("OutputValue", "")))
                    except ValueError:
                        continue
                    if isinstance(arns, dict):
                        names += [_definition_name(str(arn)) for arn in arns.values()]
        if names:
            with self._lock:
                self._fargate.update(name for name in names if name)

    # -- Batch --------------------------------------------------------------------------------

    def submit_job(self, params: Params) -> list[str]:
        """SUBMIT_JOB, BATCH_QUOTAS, OVERRIDES, RESOURCES, BATCH_TAGS; FARGATE (no multi-node,
        Fargate's resourceRequirements) for a definition known to be Fargate's."""
        where = f"job {params.get('jobName')!r}"
        problems: list[str] = []
        if not BATCH_NAME.match(str(params.get("jobName", ""))):
            problems.append(f"{where}: jobName must match {BATCH_NAME.pattern}")
        if _size(params) > SUBMIT_JOB_PAYLOAD_LIMIT:
            problems.append(f"{where}: payload of {_size(params)} bytes exceeds 30 KiB")
        if len(params.get("dependsOn") or []) > MAX_DEPENDENCIES:
            problems.append(f"{where}: more than {MAX_DEPENDENCIES} dependencies")
        size = (params.get("arrayProperties") or {}).get("size")
        if size is not None and not ARRAY_SIZE[0] <= size <= ARRAY_SIZE[1]:
            problems.append(f"{where}: array size {size} (2-10,000)")
        share = params.get("shareIdentifier")
        if share is not None and not SHARE_IDENTIFIER.match(str(share)):
            problems.append(f"{where}: shareIdentifier {share!r} (up to 255 letters and digits)")
        priority = params.get("schedulingPriorityOverride")
        if (
            priority is not None
            and not SCHEDULING_PRIORITY[0] <= priority <= SCHEDULING_PRIORITY[1]
        ):
            problems.append(f"{where}: schedulingPriorityOverride {priority} (0-9999)")
        fargate = self.is_fargate(str(params.get("jobDefinition", "")))
        if fargate and params.get("nodeOverrides"):
            problems.append(f"{where}: multi-node parallel jobs are not supported on Fargate")
        if params.get("containerOverrides"):
            problems += _overrides(params["containerOverrides"], where, fargate=fargate)
        for node in (params.get("nodeOverrides") or {}).get("nodePropertyOverrides") or []:
            problems += _overrides(node.get("containerOverrides") or {}, where, fargate=False)
        problems += _retry_and_timeout(params, where)
        problems += _batch_tags(params.get("tags"), where)
        return problems

    def register_job_definition(self, params: Params) -> list[str]:
        """REGISTER, BATCH_QUOTAS (24 KiB), RESOURCES, BATCH_TAGS; for Fargate, as marked."""
        name = str(params.get("jobDefinitionName", ""))
        where = f"job definition {name!r}"
        problems: list[str] = []
        if not DEFINITION_NAME.match(name):
            problems.append(f"{where}: jobDefinitionName must match {DEFINITION_NAME.pattern}")
        if _size(params) > REGISTER_PAYLOAD_LIMIT:
            problems.append(f"{where}: payload of {_size(params)} bytes exceeds 24 KiB")
        fargate = _is_fargate_definition(params)
        container = params.get("containerProperties") or {}
        if fargate:
            with self._lock:
                self._fargate.add(name)
            # REGISTER, `type`: "If the job is run on Fargate resources, then multinode isn't
            # supported."
            if params.get("type") != "container":
                problems.append(f"{where}: Fargate supports container jobs only, not multinode")
            # CONTAINER, executionRoleArn: "For jobs that run on Fargate resources, you must
            # provide an execution role."
            if not container.get("executionRoleArn"):
                problems.append(f"{where}: a Fargate job definition needs executionRoleArn")
            # FARGATE: "resourceRequirements", not the deprecated vcpus and memory.
            for legacy in ("vcpus", "memory"):
                if legacy in container:
                    problems.append(f"{where}: Fargate takes resourceRequirements, not {legacy}")
        problems += _resources(container.get("resourceRequirements"), where, fargate=fargate)
        problems += _retry_and_timeout(params, where)
        problems += _batch_tags(params.get("tags"), where)
        return problems

    def list_jobs(self, params: Params) -> list[str]:
        """BATCH_DESCRIBE (API_ListJobs.html): maxResults at least 1, at most 1000 returned."""
        size = params.get("maxResults")
        if size is not None and not 1 <= size <= LIST_JOBS_MAX:
            return [f"maxResults {size} (1-{LIST_JOBS_MAX})"]
        return []

    # -- CloudFormation -----------------------------------------------------------------------

    def create_stack(self, params: Params) -> list[str]:
        """CFN_CREATE; CFN_TAG."""
        name = str(params.get("StackName", ""))
        problems: list[str] = []
        if not STACK_NAME.match(name):
            problems.append(f"StackName {name!r} must match {STACK_NAME.pattern}")
        return problems + self._stack_request(params, name)

    def update_stack(self, params: Params) -> list[str]:
        """CFN_UPDATE: the stack's name or its unique id (ARN), then CreateStack's rules for
        the template body, the request token and the tags; CFN_TAG."""
        name = str(params.get("StackName", ""))
        problems: list[str] = []
        if not (STACK_NAME.match(name) or STACK_ID.match(name)):
            problems.append(f"StackName {name!r} is neither a stack name nor a stack id")
        return problems + self._stack_request(params, name)

    def _stack_request(self, params: Params, name: str) -> list[str]:
        """CFN_CREATE, CFN_UPDATE: TemplateBody ≤ 51,200 bytes, ClientRequestToken, ≤ 50 tags."""
        problems: list[str] = []
        body = str(params.get("TemplateBody", ""))
        if len(body.encode()) > TEMPLATE_BODY_LIMIT:
            problems.append(f"TemplateBody of {len(body.encode())} bytes exceeds 51,200")
        token = params.get("ClientRequestToken")
        if token is not None and not REQUEST_TOKEN.match(str(token)):
            problems.append(f"ClientRequestToken {token!r} must match {REQUEST_TOKEN.pattern}")
        problems += _cfn_tags(params.get("Tags"), f"stack {name!r}")
        return problems

    def create_change_set(self, params: Params) -> list[str]:
        """CFN_CHANGESET: CreateStack's rules, and ChangeSetName's pattern."""
        problems = self.create_stack({k: v for k, v in params.items() if k != "ClientToken"})
        change_set = str(params.get("ChangeSetName", ""))
        if not STACK_NAME.match(change_set):
            problems.append(f"ChangeSetName {change_set!r} must match {STACK_NAME.pattern}")
        return problems

    # -- CodeBuild ----------------------------------------------------------------------------

    def start_build(self, params: Params) -> list[str]:
        """CB_START (the two timeouts); CB_ENV (a variable's name is at least 1 character)."""
        problems: list[str] = []
        for key, (low, high) in (
            ("timeoutInMinutesOverride", BUILD_TIMEOUT),
            ("queuedTimeoutInMinutesOverride", BUILD_QUEUED_TIMEOUT),
        ):
            value = params.get(key)
            if value is not None and not low <= value <= high:
                problems.append(f"{key} {value} ({low}-{high})")
        for item in params.get("environmentVariablesOverride") or []:
            if not item.get("name"):
                problems.append("environmentVariablesOverride with an empty name")
        return problems


def _at_most(key: str, document: str) -> Callable[[RuleChecker, Params], list[str]]:
    """A describe call takes at most 100 names in `key` (`document`: that call's API page)."""

    def rule(_: RuleChecker, params: Params) -> list[str]:
        count = len(params.get(key) or [])
        return [f"{count} {key}, more than {DESCRIBE_LIMIT}"] if count > DESCRIBE_LIMIT else []

    rule.__doc__ = f"At most {DESCRIBE_LIMIT} {key} a call: {document}"
    return rule


_RULES: dict[tuple[str, str], Callable[[RuleChecker, Params], list[str]]] = {
    ("batch", "SubmitJob"): RuleChecker.submit_job,
    ("batch", "RegisterJobDefinition"): RuleChecker.register_job_definition,
    ("batch", "DescribeJobs"): _at_most("jobs", BATCH_DESCRIBE),
    ("batch", "ListJobs"): RuleChecker.list_jobs,
    ("batch", "DescribeJobQueues"): _at_most("jobQueues", QUEUES_DESCRIBE),
    ("batch", "DescribeComputeEnvironments"): _at_most("computeEnvironments", CES_DESCRIBE),
    ("batch", "DescribeJobDefinitions"): _at_most("jobDefinitions", DEFS_DESCRIBE),
    ("ecs", "DescribeContainerInstances"): _at_most("containerInstances", ECS_DESCRIBE),
    ("cloudformation", "CreateStack"): RuleChecker.create_stack,
    ("cloudformation", "UpdateStack"): RuleChecker.update_stack,
    ("cloudformation", "CreateChangeSet"): RuleChecker.create_change_set,
    ("codebuild", "StartBuild"): RuleChecker.start_build,
}

SERVICES = ("batch", "ecs", "codebuild", "cloudformation")


#: The answers `RuleChecker.learn` reads (which job definitions are Fargate's).
LEARN_FROM = (("batch", "DescribeJobDefinitions"), ("cloudformation", "DescribeStacks"))


def rule_hooks(checker: RuleChecker) -> list[tuple[str, Any]]:
    """botocore handlers: `before-parameter-build` checks every request of SERVICES,
    `after-call` hands LEARN_FROM's answers to `checker.learn`."""

    def before_parameter_build(params: Any, model: Any, **_: Any) -> None:
        checker.check(model.service_model.service_name, model.name, params)

    def after_call(parsed: Any, model: Any, **_: Any) -> None:
        if isinstance(parsed, Mapping):
            checker.learn(model.service_model.service_name, model.name, parsed)

    hooks: list[tuple[str, Any]] = [
        (f"before-parameter-build.{service}", before_parameter_build) for service in SERVICES
    ]
    hooks += [(f"after-call.{service}.{op}", after_call) for service, op in LEARN_FROM]
    return hooks

"""Finding the AWS resources behind `-c NAME`.

Where a cluster's settings come from, in this order:

1. batchkit's user config (`~/.batchkit/config.yaml`, `clusters: {NAME: {region, profile,
   stack}}`) says how to reach it: profile, region, stack name (default: NAME). `--profile` and
   `--region` win over it.
2. A `[cluster NAME]` section of `~/.parallelcluster/awsbatch-cli.cfg` names every resource
   directly, as awsbatch-cli reads it (this is how its users point it at custom resources), and
   then no stack is read at all.
3. Otherwise the CloudFormation stack: a batchkit cluster (it has the `BatchkitVersion` output)
   or a ParallelCluster 3.x stack with `Scheduler=awsbatch`. The stack must be CREATE_COMPLETE,
   UPDATE_COMPLETE or UPDATE_ROLLBACK_COMPLETE.
"""

from __future__ import annotations

import configparser
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from msgspec import Struct, field

from batchkit.config import ClusterSettings, UserConfig, load_user_config
from batchkit.errors import ClusterNotFoundError, ConfigError, ConflictError, UsageError
from batchkit.providers.aws.cloudformation import CloudFormationGateway, Stack
from batchkit.providers.aws.errors import StackStateError
from batchkit.providers.aws.session import AwsSession

PC_LOG_GROUP = "/aws/batch/job"
"""Where Batch sends container logs when a job definition sets no log configuration."""

REQUIRED_SECTION_KEYS = (
    "region",
    "s3_bucket",
    "artifact_directory",
    "compute_environment",
    "job_queue",
    "job_definition",
)


class ClusterInfo(Struct, frozen=True):
    """Everything the provider needs to know about one cluster."""

    name: str
    source: str
    """`batchkit` (a batchkit stack), `parallelcluster` (a PC 3.x awsbatch stack) or
    `awsbatch-cli.cfg` (a `[cluster NAME]` section)."""
    region: str
    bucket: str
    artifact_root: str
    compute_environment: str
    job_queue: str
    job_definition: str
    job_definition_mnp: str | None = None
    log_group: str = PC_LOG_GROUP
    queues: Mapping[str, str] = field(default_factory=dict)
    """Queue name → ARN; the default queue is first."""
    compute_environments: Mapping[str, str] = field(default_factory=dict)
    stack_name: str | None = None
    version: str | None = None
    repository_uri: str | None = None
    """The cluster's ECR repository (batchkit stacks), where `batchkit image build` pushes."""
    fargate_job_definitions: Mapping[str, str] = field(default_factory=dict)
    """Queue name → the job definition of Fargate queues (platform FARGATE)."""
    efa_job_definitions: Mapping[str, str] = field(default_factory=dict)
    """Queue name → the multi-node job definition with the EFA device (`efa: true` queues)."""
    queue_capacity: Mapping[str, str] | None = None
    """Queue name → FARGATE, SPOT or EC2 (batchkit stacks' QueueCapacity output); None when the
    stack does not say."""
    scheduling_policies: Mapping[str, str] | None = None
    """Queue name → fair-share scheduling policy ARN, for the queues that have one (batchkit
    stacks); None when the stack does not say (ParallelCluster, older batchkit stacks)."""


class Target(Struct, frozen=True):
    """How to reach a cluster: the AWS profile and region, and where its settings live."""

    profile: str | None
    region: str | None
    stack: str
    section: Mapping[str, str] | None = None
    cli_config: Path | None = None


def _name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _json_map(text: str | None, what: str, stack: str) -> dict[str, str]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"stack {stack!r}: output {what} is not JSON: {err}",
            hint="update the cluster with `batchkit cluster update`",
        ) from err
    if not isinstance(value, dict):
        raise ConfigError(f"stack {stack!r}: output {what} must be a JSON object")
    return {str(k): str(v) for k, v in value.items()}


def awsbatch_cli_config_path() -> Path:
    return Path.home() / ".parallelcluster" / "awsbatch-cli.cfg"


def read_awsbatch_cli_config(path: Path, cluster: str) -> tuple[dict[str, str] | None, str | None]:
    """The `[cluster NAME]` section (or None) and the `[main] region` (or None) of the file."""
    if not path.is_file():
        return None, None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as err:
        raise ConfigError(f"{path} is not a valid INI file: {err}", hint=f"fix {path}") from err
    main_region = parser.get("main", "region", fallback=None) or None
    name = f"cluster {cluster}"
    if not parser.has_section(name):
        return None, main_region
    section = dict(parser.items(name))
    for key in REQUIRED_SECTION_KEYS:
        if not section.get(key):
            raise ConfigError(
                f"{path}: [{name}] lacks the key {key!r}",
                hint=f"add `{key} = ...` to [{name}], or remove the section to read the stack",
            )
    return section, main_region


def resolve_target(
    cluster: str,
    *,
    profile: str | None = None,
    region: str | None = None,
    settings: ClusterSettings | None = None,
    cli_config: Path | None = None,
) -> Target:
    """Combine the flags, the user config and awsbatch-cli.cfg into a `Target`."""
    settings = settings or ClusterSettings()
    path = cli_config or awsbatch_cli_config_path()
    section, main_region = read_awsbatch_cli_config(path, cluster)
    chosen_region = region or settings.region or (section or {}).get("region") or main_region
    return Target(
        profile=profile or settings.profile,
        region=chosen_region,
        stack=settings.stack or cluster,
        section=section,
        cli_config=path,
    )


def cluster_from_section(cluster: str, section: Mapping[str, str], region: str) -> ClusterInfo:
    queue = section["job_queue"]
    ce = section["compute_environment"]
    return ClusterInfo(
        name=cluster,
        source="awsbatch-cli.cfg",
        region=section.get("region") or region,
        bucket=section["s3_bucket"],
        artifact_root=section["artifact_directory"].strip("/"),
        compute_environment=ce,
        job_queue=queue,
        job_definition=section["job_definition"],
        job_definition_mnp=section.get("job_definition_mnp") or None,
        queues={_name_of(queue): queue},
        compute_environments={_name_of(ce): ce},
    )


def cluster_from_stack(cluster: str, stack: Stack) -> ClusterInfo:
    """Read a usable batchkit or ParallelCluster awsbatch stack."""
    if not stack.usable:
        raise StackStateError(stack.name, stack.status, stack.status_reason)
    outputs, parameters = stack.outputs, stack.parameters
    is_batchkit = "BatchkitVersion" in outputs
    scheduler = parameters.get("Scheduler")
    if not is_batchkit:
        if scheduler is None:
            raise ClusterNotFoundError(
                cluster,
                hint=f"stack {stack.name!r} is neither a batchkit cluster nor a ParallelCluster "
                "awsbatch cluster (no BatchkitVersion output, no Scheduler parameter)",
            )
        if scheduler != "awsbatch":
            raise ConflictError(
                f"cluster {cluster!r} uses the {scheduler} scheduler, not awsbatch",
                hint="batchkit drives AWS Batch clusters only; use that scheduler's own tools",
            )

    def need(mapping: Mapping[str, str], key: str, kind: str) -> str:
        value = mapping.get(key)
        if not value or value == "NONE":
            raise ConfigError(
                f"stack {stack.name!r} lacks the {kind} {key!r}",
                hint="the stack is incomplete or too old; update it (`batchkit cluster update`)",
            )
        return value

    queue = need(outputs, "BatchJobQueueArn", "output")
    ce = need(outputs, "BatchComputeEnvironmentArn", "output")
    # A batchkit stack names its queues as its config does (`cpu`, default first); the default
    # queue is listed under its Batch name only when that map lacks it (a ParallelCluster stack).
    named = _json_map(outputs.get("JobQueues"), "JobQueues", stack.name)
    queues = dict(named) if queue in named.values() else {_name_of(queue): queue, **named}
    ces = {_name_of(ce): ce}
    ces.update(_json_map(outputs.get("ComputeEnvironments"), "ComputeEnvironments", stack.name))
    mnp = outputs.get("BatchJobDefinitionMnpArn")
    return ClusterInfo(
        name=cluster,
        source="batchkit" if is_batchkit else "parallelcluster",
        region=stack.region,
        bucket=need(parameters, "ResourcesS3Bucket", "parameter"),
        artifact_root=need(parameters, "ArtifactS3RootDirectory", "parameter").strip("/"),
        compute_environment=ce,
        job_queue=queue,
        job_definition=need(outputs, "BatchJobDefinitionArn", "output"),
        job_definition_mnp=mnp if mnp and mnp != "NONE" else None,
        log_group=(outputs.get("JobLogGroup") or PC_LOG_GROUP) if is_batchkit else PC_LOG_GROUP,
        queues=queues,
        compute_environments=ces,
        stack_name=stack.name,
        version=outputs.get("BatchkitVersion"),
        repository_uri=_present(outputs.get("EcrRepositoryUri")),
        fargate_job_definitions=_json_map(
            outputs.get("FargateJobDefinitions"), "FargateJobDefinitions", stack.name
        ),
        efa_job_definitions=_json_map(
            outputs.get("EfaJobDefinitions"), "EfaJobDefinitions", stack.name
        ),
        queue_capacity=(
            _json_map(outputs["QueueCapacity"], "QueueCapacity", stack.name)
            if "QueueCapacity" in outputs
            else None
        ),
        scheduling_policies=(
            _json_map(outputs["SchedulingPolicies"], "SchedulingPolicies", stack.name)
            if "SchedulingPolicies" in outputs
            else None
        ),
    )


def _present(value: str | None) -> str | None:
    """A stack output that may be absent or `NONE`."""
    return value if value and value != "NONE" else None


SessionFactory = Callable[[str | None, str | None, str], AwsSession]


def _default_session(profile: str | None, region: str | None, cluster: str) -> AwsSession:
    return AwsSession(profile=profile, region=region, cluster=cluster)


def discover(
    cluster: str,
    *,
    profile: str | None = None,
    region: str | None = None,
    session_factory: SessionFactory = _default_session,
    settings: ClusterSettings | None = None,
    cli_config: Path | None = None,
) -> tuple[AwsSession, ClusterInfo]:
    """The session and the settings of cluster `cluster` (raises ClusterNotFoundError & co)."""
    user_config = load_user_config() if settings is None else None
    if settings is None:
        settings = user_config.cluster(cluster) if user_config else ClusterSettings()
    target = resolve_target(
        cluster, profile=profile, region=region, settings=settings, cli_config=cli_config
    )
    if target.section is None:
        named_by = "-c/--cluster" if target.stack == cluster else f"the stack of {cluster!r}"
        check_stack_name(target.stack, named_by)
    session = session_factory(target.profile, target.region, cluster)
    if target.section is not None:
        return session, cluster_from_section(cluster, target.section, session.region)
    known = settings != ClusterSettings()
    if session.configured_region is None and not known:
        # Nowhere names this cluster and no region says where its stack would be: the name is
        # more likely mistyped than the region missing.
        raise _not_found(cluster, target, user_config, "not looked up: no AWS region is set")
    stack = CloudFormationGateway(session.api("cloudformation")).describe_stack(target.stack)
    if stack is None:
        raise _not_found(cluster, target, user_config, f"none in {session.region}")
    return session, cluster_from_stack(cluster, stack)


# CloudFormation API reference, CreateStack `StackName`: "can contain only alphanumeric characters
# (case sensitive) and hyphens. It must start with an alphabetic character and can't be longer
# than 128 characters."
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


def check_stack_name(name: str, named_by: str = "-c/--cluster") -> None:
    """Refuse, before any call, a cluster name that no CloudFormation stack can have."""
    if not _STACK_NAME.fullmatch(name):
        raise UsageError(
            f"{named_by} {name!r} is not a valid cluster name",
            hint="a cluster is a CloudFormation stack: up to 128 letters, digits and hyphens, "
            "starting with a letter (or `-c local` for the local engine)",
        )


def _not_found(
    cluster: str, target: Target, user_config: UserConfig | None, stack_result: str
) -> ClusterNotFoundError:
    config_path = (user_config.path if user_config else None) or "~/.batchkit/config.yaml"
    places = [
        f"{config_path} (no `clusters: {cluster}:`)",
        f"{target.cli_config or awsbatch_cli_config_path()} (no [cluster {cluster}])",
        f"CloudFormation stack {target.stack!r} ({stack_result})",
    ]
    return ClusterNotFoundError(
        cluster,
        hint="batchkit looked in " + "; ".join(places) + ". Check the name (and `--region`), "
        "list clusters with `batchkit cluster list`, or use `-c local`",
    )

"""`batchkit.yaml`: the typed description of one cluster, and its validation.

`load_cluster_config(path)` returns a `ClusterConfig` or raises one `ConfigError` that lists every
problem as `FILE:LINE: key.path: what is wrong`, with a hint. Structure and types are checked by
pydantic; the rules that tie fields together (a Fargate environment has no instance types, a GPU
queue has GPU instances, names are unique…) are checked afterwards by `_problems`, so that each
problem can name the exact key it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError

from batchkit.errors import ConfigError
from batchkit.infra import efa
from batchkit.infra.blocking import BlockedJobTimeoutsConfig
from batchkit.infra.configbase import RESOURCE_NAME_PATTERN, Model, Problem
from batchkit.infra.teamconfig import FairShareConfig, NotificationsConfig
from batchkit.infra.volumeconfig import (
    VOLUME_TYPES,
    VolumeConfig,
    volume_problems,
)
from batchkit.infra.yamlmarks import DuplicateKeyError, KeyPath, format_path, load_marked

CLUSTER_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,24}[a-z0-9]$"
DEFAULT_IMAGE = "public.ecr.aws/amazonlinux/amazonlinux:2023"
"""What default jobs run when the cluster builds no image of its own (builds switched off)."""

# The values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)  # fmt: skip

# Instance families with NVIDIA or AMD GPUs that Batch can schedule GPU jobs on.
GPU_FAMILIES = frozenset(
    {"g3", "g3s", "g4dn", "g4ad", "g5", "g5g", "g6", "g6e", "g6f", "gr6", "gr6f", "g7e", "p2",
     "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200"}
)  # fmt: skip


class ComputeType(StrEnum):
    EC2 = "EC2"
    SPOT = "SPOT"
    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"

    @property
    def is_fargate(self) -> bool:
        return self in (ComputeType.FARGATE, ComputeType.FARGATE_SPOT)


EC2_STRATEGIES = ("BEST_FIT", "BEST_FIT_PROGRESSIVE")
SPOT_STRATEGIES = (*EC2_STRATEGIES, "SPOT_CAPACITY_OPTIMIZED", "SPOT_PRICE_CAPACITY_OPTIMIZED")


class ComputeEnvironmentConfig(Model):
    """One compute environment of a queue (Batch allows up to 3 per queue)."""

    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    type: ComputeType = ComputeType.EC2
    instance_types: list[Annotated[str, Field(min_length=1)]] | None = None
    min_vcpus: Annotated[int, Field(ge=0)] = 0
    desired_vcpus: Annotated[int, Field(ge=0)] | None = None
    max_vcpus: Annotated[int, Field(ge=1)] = 256
    allocation_strategy: str | None = None
    bid_percentage: Annotated[int, Field(ge=1, le=100)] | None = None

    @property
    def resolved_instance_types(self) -> list[str]:
        return list(self.instance_types or ["optimal"])

    @property
    def resolved_allocation_strategy(self) -> str:
        if self.allocation_strategy:
            return self.allocation_strategy
        if self.type is ComputeType.SPOT:
            return "SPOT_PRICE_CAPACITY_OPTIMIZED"
        return "BEST_FIT_PROGRESSIVE"

    @property
    def needs_spot_fleet_role(self) -> bool:
        """Batch uses a Spot Fleet role only for SPOT environments with the BEST_FIT strategy."""
        return self.type is ComputeType.SPOT and self.resolved_allocation_strategy == "BEST_FIT"


class QueueConfig(Model):
    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    priority: Annotated[int, Field(ge=0, le=1000)] = 1
    gpu: bool = False
    compute_environments: Annotated[list[ComputeEnvironmentConfig], Field(min_length=1)]
    fair_share: FairShareConfig | None = None
    blocked_job_timeouts: BlockedJobTimeoutsConfig = BlockedJobTimeoutsConfig()
    """How long a job may block the queue before Batch cancels it (`infra.blocking`)."""
    efa: bool = False
    """Instances with an EFA network interface (and in a cluster placement group), for MPI."""
    placement_group: bool = False
    """One cluster placement group for the queue's instances: low latency between nodes."""

    @property
    def is_fargate(self) -> bool:
        return self.compute_environments[0].type.is_fargate

    @property
    def needs_placement_group(self) -> bool:
        """EFA instances must share a cluster placement group (AWS Batch User Guide, "Elastic
        Fabric Adapter"), so `efa: true` implies one."""
        return not self.is_fargate and (self.placement_group or self.efa)

    @property
    def spot_only(self) -> bool:
        """Every environment is Spot: one reclaimed instance ends a multi-node job."""
        return all(ce.type is ComputeType.SPOT for ce in self.compute_environments)


class LaunchTemplateConfig(Model):
    """Options of the launch template every EC2/SPOT environment uses."""

    require_imdsv2: bool = True
    root_volume_gib: Annotated[int, Field(ge=30, le=16384)] = 30
    root_volume_type: Literal["gp3", "gp2", "io2"] = "gp3"
    key_name: str | None = None
    ami_id: Annotated[str | None, Field(pattern=r"^ami-[0-9a-f]{8,17}$")] = None


class FeaturesConfig(Model):
    """Defaults of the stack's feature parameters (each can be overridden per deployment)."""

    image_builds: bool = True
    multinode: bool = True
    cleanup_on_delete: bool = True
    default_image: bool = True


class ClusterConfig(Model):
    """The whole of `batchkit.yaml`."""

    name: Annotated[str, Field(pattern=CLUSTER_NAME_PATTERN)]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    subnets: Annotated[
        list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]], Field(min_length=1)
    ]
    security_groups: Annotated[
        list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]], Field(min_length=1)
    ]
    assign_public_ip: bool = False
    image: Annotated[str, Field(min_length=1)] | None = None
    """The default job definitions' image; None: the cluster builds its own (`defaultimage`)."""
    default_queue: str | None = None
    queues: Annotated[list[QueueConfig], Field(min_length=1)]
    launch_template: LaunchTemplateConfig = LaunchTemplateConfig()
    volumes: list[VolumeConfig] = []
    log_retention_days: int = 30
    job_folder_expiry_days: Annotated[int, Field(ge=1)] = 30
    keep_images: Annotated[int, Field(ge=1, le=1000)] = 50
    tags: dict[Annotated[str, Field(min_length=1, max_length=128)], str] = {}
    permissions_boundary: Annotated[
        str | None, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:policy/.+$")
    ] = None
    keep_data_on_delete: bool = False
    features: FeaturesConfig = FeaturesConfig()
    notifications: NotificationsConfig = NotificationsConfig()

    @property
    def resolved_default_queue(self) -> QueueConfig:
        for queue in self.queues:
            if queue.name == self.default_queue:
                return queue
        return self.queues[0]


def is_gpu_instance_type(instance_type: str) -> bool:
    """`g5.xlarge`, `g5` and `p4d.24xlarge` are GPU types; `c6i.large` and `optimal` are not."""
    return instance_type.split(".", 1)[0].lower() in GPU_FAMILIES


def _problems(config: ClusterConfig) -> Iterator[Problem]:
    """The rules pydantic's per-field checks cannot express, each tied to the key at fault."""
    if config.log_retention_days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
        yield Problem(("log_retention_days",), f"CloudWatch Logs only accepts {allowed}")
    queue_names: dict[str, int] = {}
    for qi, queue in enumerate(config.queues):
        key = queue.name.replace("-", "").lower()
        if key in queue_names:
            yield Problem(
                ("queues", qi, "name"),
                f"queue name {queue.name!r} is already used by queues[{queue_names[key]}] "
                "(names must differ in more than case and hyphens)",
            )
        queue_names.setdefault(key, qi)
        yield from _queue_problems(queue, ("queues", qi))
    names = [queue.name for queue in config.queues]
    if config.default_queue is not None and config.default_queue not in names:
        yield Problem(
            ("default_queue",),
            f"no queue is named {config.default_queue!r} (queues: {', '.join(names)})",
        )
    yield from volume_problems(
        config.volumes, has_ec2_queue=any(not queue.is_fargate for queue in config.queues)
    )
    for key in config.tags:
        if key.lower().startswith(("aws:", "batchkit:")):
            yield Problem(("tags", key), "tag keys starting with aws: or batchkit: are reserved")


def _queue_problems(queue: QueueConfig, at: KeyPath) -> Iterator[Problem]:
    if len(queue.compute_environments) > 3:
        yield Problem((*at, "compute_environments"), "a queue can use at most 3 environments")
    if len({ce.type.is_fargate for ce in queue.compute_environments}) > 1:
        yield Problem(
            (*at, "compute_environments"),
            "a queue cannot mix FARGATE/FARGATE_SPOT with EC2/SPOT environments; use two queues",
        )
    yield from efa.queue_problems(
        queue,
        [
            ((*at, "compute_environments", ci), ce.instance_types)
            for ci, ce in enumerate(queue.compute_environments)
        ],
        at,
    )
    ce_names: set[str] = set()
    for ci, ce in enumerate(queue.compute_environments):
        ce_at = (*at, "compute_environments", ci)
        if ce.name in ce_names:
            yield Problem((*ce_at, "name"), f"environment name {ce.name!r} is used twice")
        ce_names.add(ce.name)
        yield from _environment_problems(ce, ce_at)
        if queue.gpu and ce.type.is_fargate:
            yield Problem((*ce_at, "type"), "Fargate has no GPUs; use EC2 or SPOT in a GPU queue")
        elif queue.gpu and not ce.instance_types:
            yield Problem(
                (*ce_at, "instance_types"),
                "a GPU queue needs explicit GPU instance types (e.g. [g5.xlarge, g6])",
            )
        for ti, instance_type in enumerate(ce.instance_types or []):
            gpu = is_gpu_instance_type(instance_type)
            if queue.gpu and not gpu:
                yield Problem(
                    (*ce_at, "instance_types", ti),
                    f"{instance_type!r} has no GPU but the queue is marked `gpu: true`",
                )
            elif gpu and not queue.gpu:
                yield Problem(
                    (*ce_at, "instance_types", ti),
                    f"{instance_type!r} is a GPU type: mark the queue `gpu: true` so GPU jobs "
                    "land there and CPU jobs do not hold GPU instances",
                )


def _environment_problems(ce: ComputeEnvironmentConfig, at: KeyPath) -> Iterator[Problem]:
    if ce.type.is_fargate:
        for field in ("instance_types", "allocation_strategy", "bid_percentage"):
            if getattr(ce, field) is not None:
                yield Problem((*at, field), f"{ce.type.value} environments do not take {field}")
        for field in ("min_vcpus", "desired_vcpus"):
            if getattr(ce, field):
                yield Problem((*at, field), f"{ce.type.value} environments scale from 0 by design")
    else:
        allowed = SPOT_STRATEGIES if ce.type is ComputeType.SPOT else EC2_STRATEGIES
        if ce.allocation_strategy is not None and ce.allocation_strategy not in allowed:
            yield Problem(
                (*at, "allocation_strategy"),
                f"{ce.type.value} allows {', '.join(allowed)}",
            )
        if ce.bid_percentage is not None and ce.type is not ComputeType.SPOT:
            yield Problem((*at, "bid_percentage"), "only SPOT environments take bid_percentage")
        if ce.instance_types is not None and not ce.instance_types:
            yield Problem((*at, "instance_types"), "give at least one type, or leave it out")
    if ce.max_vcpus < ce.min_vcpus:
        yield Problem((*at, "max_vcpus"), f"must be at least min_vcpus ({ce.min_vcpus})")
    if ce.desired_vcpus is not None and not ce.min_vcpus <= ce.desired_vcpus <= ce.max_vcpus:
        yield Problem(
            (*at, "desired_vcpus"),
            f"must be between min_vcpus ({ce.min_vcpus}) and max_vcpus ({ce.max_vcpus})",
        )


_PATTERN_HELP = {
    "name": "use 2-26 characters: lower-case letters, digits and hyphens, starting with a letter",
    "resource_name": "use up to 32 letters, digits and hyphens, starting with a letter",
    "region": "expected a region such as us-east-1",
    "subnets": "expected a subnet id such as subnet-0123456789abcdef0",
    "security_groups": "expected a security group id such as sg-0123456789abcdef0",
    "file_system_id": "expected a file system id such as fs-0123456789abcdef0",
    "permissions_boundary": "expected a policy ARN such as arn:aws:iam::123456789012:policy/Name",
    "ami_id": "expected an AMI id such as ami-0123456789abcdef0",
    "mount_path": "expected an absolute path such as /shared",
    "root_directory": "expected an absolute path such as /",
    "svm_id": "expected an SVM id such as svm-0123456789abcdef0",
    "junction_path": "expected the volume's junction path such as /vol1",
    "volume_path": "expected /fsx (the root volume) or a child volume such as /fsx/vol1",
}


def _pattern_help(path: KeyPath, default: str) -> str:
    keys = [part for part in path if isinstance(part, str)]
    key = keys[-1] if keys else ""
    if key == "name" and len(path) > 1:
        key = "resource_name"
    return _PATTERN_HELP.get(key, default)


_HINT = "fix the listed keys (see `batchkit cluster init` for a commented example)"


def _raise(source: str, lines: list[str]) -> None:
    raise ConfigError(f"{source} is invalid:\n  " + "\n  ".join(lines), hint=_HINT)


def _pydantic_location(loc: tuple[int | str, ...], data: Any) -> KeyPath:
    """Drop the discriminator tags pydantic inserts (`volumes.0.efs.name` → `volumes[0].name`)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        tag = isinstance(node, dict) and part not in node and node.get("type") == part
        if tag and part in VOLUME_TYPES:
            continue
        path.append(part)
        node = node.get(part) if isinstance(node, dict) else _index(node, part)
    return tuple(path)


def _index(node: Any, part: int | str) -> Any:
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def parse_cluster_config(text: str, source: str = "batchkit.yaml") -> ClusterConfig:
    """Validate YAML text; `source` names it in errors."""
    try:
        document = load_marked(text)
    except DuplicateKeyError as err:
        _raise(source, [f"{source}:{err.line}: {format_path(err.path)}: {err}"])
        raise AssertionError from err  # pragma: no cover
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(err, "problem", None) or str(err)
        _raise(source, [f"{source}:{line}: not valid YAML: {problem}"])
        raise AssertionError from err  # pragma: no cover
    if not isinstance(document.data, dict):
        _raise(source, [f"{source}:1: expected a mapping of keys such as `name:` and `queues:`"])
    try:
        config = ClusterConfig.model_validate(document.data)
    except ValidationError as err:
        messages = []
        for error in err.errors():
            path = _pydantic_location(error["loc"], document.data)
            text_ = error["msg"]
            if error["type"] == "extra_forbidden":
                text_ = "unknown key (check its spelling and indentation)"
            elif error["type"] == "missing":
                text_ = "required key is missing"
            elif error["type"] == "string_pattern_mismatch":
                text_ = _pattern_help(path, text_)
            messages.append(f"{source}:{document.line_of(path)}: {format_path(path)}: {text_}")
        _raise(source, messages)
        raise AssertionError from err  # pragma: no cover
    problems = list(_problems(config))
    if problems:
        _raise(
            source,
            [
                f"{source}:{document.line_of(p.path)}: {format_path(p.path)}: {p.message}"
                for p in problems
            ],
        )
    return config


MAX_CONFIG_BYTES = 1024 * 1024


def load_cluster_config(path: Path) -> ClusterConfig:
    """Read and validate a `batchkit.yaml` file."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)  # bounded: `-f /dev/zero` must not hang
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB, not a cluster config",
                hint="pass the batchkit.yaml written by `batchkit cluster init`",
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            hint="write one with `batchkit cluster init`, or pass `-f PATH`",
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{path}: cannot read it: {err}", hint="pass a readable UTF-8 file"
        ) from err
    return parse_cluster_config(text, str(path))

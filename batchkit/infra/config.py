"""`batchkit.yaml`: the typed description of one cluster, and its validation.

`load_cluster_config(path)` returns a `ClusterConfig` or raises one `ConfigError` that lists every
problem as `FILE:LINE: key.path: what is wrong`, with a hint. Structure and types are checked by
pydantic; the rules that tie fields together (a Fargate environment has no instance types, a GPU
queue has GPU instances, names are unique…) are checked afterwards by `_problems`, so that each
problem can name the exact key it is about. The queues and their compute environments, with
their own rules, are `infra.queueconfig`; volumes `infra.volumeconfig`; fair share and
notifications `infra.teamconfig`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError

from batchkit.errors import ConfigError
from batchkit.infra.configbase import Model, Problem
from batchkit.infra.queueconfig import QueueConfig, queue_problems
from batchkit.infra.teamconfig import NotificationsConfig
from batchkit.infra.volumeconfig import (
    VOLUME_TYPES,
    VolumeConfig,
    fargate_volume_warning,
    volume_problems,
)
from batchkit.infra.yamlmarks import DuplicateKeyError, KeyPath, format_path, load_marked

CLUSTER_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,24}[a-z0-9]$"
DEFAULT_IMAGE = "public.ecr.aws/amazonlinux/amazonlinux:2023"
"""What default jobs run when the cluster builds no image of its own (builds switched off)."""

# The values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)  # fmt: skip


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
    def warnings(self) -> list[str]:
        """What is valid but likely not what was meant: the commands that read a config print
        each as `warning: ...` and go on."""
        if all(queue.is_fargate for queue in self.queues):
            return []  # host volumes are then refused (`volume_problems`)
        fargate = [queue.name for queue in self.queues if queue.is_fargate]
        return [w for w in (fargate_volume_warning(self.volumes, fargate),) if w]

    @property
    def resolved_default_queue(self) -> QueueConfig:
        for queue in self.queues:
            if queue.name == self.default_queue:
                return queue
        return self.queues[0]


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
        yield from queue_problems(queue, ("queues", qi))
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

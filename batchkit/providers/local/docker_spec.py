"""What a local job attempt's Docker container is made of, as a pure function of its `RunSpec`:
the `containers.create` options (host networking, the job's vCPU and memory as cgroup limits, GPUs
as a device request, the working directory, staged folder and results folder bind-mounted at their
host paths), the environment without the host-only variables, a valid container name, and the
`batchkit.*` labels by which containers are found and reaped. `docker_executor` starts containers
from these options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from docker.types import DeviceRequest, LogConfig, Mount

from batchkit.errors import EngineError
from batchkit.providers.local.executor import (
    REASON_FILE_VARIABLE,
    RunSpec,
    is_multinode,
    reason_file,
)

# Variables of the host's base environment that describe the host, not the image: the image's own
# PATH must win, the host's HOME and TMPDIR do not exist in the container, USER/LOGNAME/SHELL name
# a host account and shell, and a host locale may be missing from the image (bash and python warn).
# AWS Batch containers see only the image's environment plus the job's, so dropping them is also the
# honest emulation. Everything else in `RunSpec.env` (the request's variables, AWS_BATCH_*,
# PCLUSTER_JOB_S3_URL, BATCHKIT_JOB_STAGE_DIR) passes unchanged.
HOST_ONLY_VARIABLES = frozenset(
    {"HOME", "PATH", "TMPDIR", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL"}
)

LABEL_JOB_ID = "batchkit.job-id"
LABEL_ATTEMPT = "batchkit.attempt"
LABEL_HOME = "batchkit.home"

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


def container_environment(
    env: Mapping[str, str], drop: Iterable[str] = HOST_ONLY_VARIABLES
) -> dict[str, str]:
    """The job's environment as the container sees it: `env` without the host-only variables."""
    dropped = frozenset(drop)
    return {name: value for name, value in env.items() if name not in dropped}


def container_name(job_id: str, attempt: int, suffix: str) -> str:
    """A valid, recognisable container name: `batchkit-<job id>-<attempt>-<suffix>`.

    Job ids of array children and MNP nodes contain `:` and `#`, which Docker names forbid.
    """
    safe_id = _NAME_UNSAFE.sub("-", job_id).strip("-.") or "job"
    return f"batchkit-{safe_id}-{attempt}-{suffix}"


def results_dir(stage_dir: Path) -> Path:
    """Where function jobs store results: beside the job folder (`<folder>.results`), so array
    children fetching the folder never copy each other's results."""
    return stage_dir.with_name(stage_dir.name + ".results")


def container_options(
    spec: RunSpec,
    *,
    name: str,
    home: Path,
    user: str | None,
    host_cpus: float | None = None,
    drop_env: Iterable[str] = HOST_ONLY_VARIABLES,
) -> dict[str, Any]:
    """The keyword arguments of `containers.create` for one attempt: a pure function of the spec.

    `host_cpus` caps the vCPU limit, because Docker refuses a CPU limit above the host's count
    (the local scheduler may be configured with more vCPUs than the machine has).
    """
    if spec.image is None:
        raise EngineError(
            f"job {spec.job_id} names no image, so it cannot run in a container",
            hint="submit it with an image, or let it run as a local process (executor auto)",
        )
    vcpus = spec.resources.vcpus
    if host_cpus is not None:
        vcpus = min(vcpus, host_cpus)
    memory_bytes = spec.resources.memory * 1024 * 1024
    mounts = [Mount(str(spec.workdir), str(spec.workdir), type="bind", read_only=False)]
    if spec.stage_dir is not None:
        mounts.append(Mount(str(spec.stage_dir), str(spec.stage_dir), type="bind", read_only=True))
        results = results_dir(spec.stage_dir)
        mounts.append(Mount(str(results), str(results), type="bind", read_only=False))
    options: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.argv),
        "name": name,
        "environment": _node_environment(spec, container_environment(spec.env, drop_env)),
        "working_dir": str(spec.workdir),
        "mounts": mounts,
        "network_mode": "host",
        "nano_cpus": max(round(vcpus * 1e9), 10_000_000),
        "mem_limit": memory_bytes,
        "memswap_limit": memory_bytes,  # no swap beyond the limit, like a Batch container
        "labels": {
            LABEL_JOB_ID: spec.job_id,
            LABEL_ATTEMPT: str(spec.attempt),
            LABEL_HOME: str(home),
        },
        "log_config": LogConfig(type=LogConfig.types.JSON),
        "detach": True,
    }
    if user is not None:
        options["user"] = user
    if spec.resources.gpus > 0:
        options["device_requests"] = [
            DeviceRequest(count=spec.resources.gpus, capabilities=[["gpu"]])
        ]
    return options


def _node_environment(spec: RunSpec, env: dict[str, str]) -> dict[str, str]:
    if is_multinode(env):
        env[REASON_FILE_VARIABLE] = str(reason_file(spec.workdir))
    return env

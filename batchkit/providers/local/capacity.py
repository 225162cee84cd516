"""The local compute environment: how many vCPUs, MiB of memory and GPUs jobs may reserve.

The default is this machine (every CPU, all physical memory, no GPU); `BATCHKIT_LOCAL_VCPUS`,
`BATCHKIT_LOCAL_MEMORY` (MiB) and `BATCHKIT_LOCAL_GPUS` override it, and so do explicit values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from msgspec import Struct

from batchkit.errors import ConfigError
from batchkit.models import Resources

COMPUTE_ENVIRONMENT = "local"
QUEUE = "local"


class Capacity(Struct, frozen=True):
    """What the local compute environment offers in total (memory in MiB)."""

    vcpus: float
    memory: int
    gpus: int = 0

    def fits(self, need: Resources, count: int = 1) -> bool:
        """Whether `count` reservations of `need` fit in this capacity at all."""
        return (
            need.vcpus * count <= self.vcpus + 1e-9
            and need.memory * count <= self.memory
            and need.gpus * count <= self.gpus
        )

    def describe(self) -> str:
        return f"{_number(self.vcpus)} vCPUs, {self.memory} MiB of memory and {self.gpus} GPUs"

    def to_dict(self) -> dict[str, float | int]:
        return {"vcpus": self.vcpus, "memory": self.memory, "gpus": self.gpus}

    @classmethod
    def from_dict(cls, raw: Mapping[str, float | int]) -> Capacity:
        return cls(float(raw["vcpus"]), int(raw["memory"]), int(raw.get("gpus", 0)))

    @classmethod
    def of_this_machine(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        vcpus: float | None = None,
        memory: int | None = None,
        gpus: int | None = None,
    ) -> Capacity:
        """Explicit values first, then the `BATCHKIT_LOCAL_*` variables, then the machine."""
        env = os.environ if environ is None else environ
        return cls(
            vcpus=vcpus
            if vcpus is not None
            else _env_number(env, "BATCHKIT_LOCAL_VCPUS", float(os.cpu_count() or 1)),
            memory=memory
            if memory is not None
            else int(_env_number(env, "BATCHKIT_LOCAL_MEMORY", float(_total_memory_mib()))),
            gpus=gpus if gpus is not None else int(_env_number(env, "BATCHKIT_LOCAL_GPUS", 0.0)),
        )


def describe_need(need: Resources, count: int = 1) -> str:
    return (
        f"{_number(need.vcpus * count)} vCPUs, {need.memory * count} MiB of memory "
        f"and {need.gpus * count} GPUs"
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _env_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a number",
            hint=f"set {name} to a non-negative number, or unset it to use this machine's",
        ) from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} is negative", hint=f"set {name} to 0 or more")
    return value


def _total_memory_mib() -> int:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2048
    return max(1, int(pages * size // (1024 * 1024)))

"""What the rules look at for one job on AWS: the job, its queue, the queue's compute environments
and the instance types each may launch. `None` stands for what could not be read (the runner has
said so with a "not checked" finding)."""

from __future__ import annotations

from msgspec import Struct, field

from batchkit.clustermodel import Queue
from batchkit.computemodel import ComputeEnvironment, InstanceType
from batchkit.models import Job


class Scene(Struct):
    job: Job
    now_ms: int
    queue: Queue | None = None
    environments: list[ComputeEnvironment] = field(default_factory=list)
    instance_types: dict[str, list[InstanceType]] = field(default_factory=dict)
    """By compute environment name; an environment missing here was not checked."""

    @property
    def nodes(self) -> int:
        return max(1, self.job.nodes)

    @property
    def waited_s(self) -> float:
        """How long the job has existed (Batch reports no "RUNNABLE since")."""
        created = self.job.created_at
        return 0.0 if created is None else max(0.0, (self.now_ms - created) / 1000)


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 5400:
        return f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"

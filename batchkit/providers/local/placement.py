"""Placing runnable jobs on the compute environment's free vCPUs, memory and GPUs.

A job whose needs exceed the whole compute environment fails at once with a reason saying so
(Batch would leave it RUNNABLE forever; on one machine that helps nobody). Jobs are placed in the
order they became runnable (with fair share: the order `shares.fair_order` gives); one that does
not fit yet waits while smaller ones behind it start.
"""

from __future__ import annotations

from batchkit.models import JobStatus, Resources
from batchkit.providers.local.capacity import Capacity, describe_need
from batchkit.providers.local.rows import JobRow
from batchkit.providers.local.shares import fair_order
from batchkit.providers.local.table import JobTable


class Ledger:
    """What the running attempts reserve of a compute environment."""

    def __init__(self, total: Capacity) -> None:
        self.total = total
        self.vcpus = 0.0
        self.memory = 0
        self.gpus = 0

    def free(self) -> Capacity:
        return Capacity(
            self.total.vcpus - self.vcpus,
            int(self.total.memory - self.memory),
            int(self.total.gpus - self.gpus),
        )

    def reserve(self, need: Resources, count: int) -> None:
        self.vcpus += need.vcpus * count
        self.memory += need.memory * count
        self.gpus += need.gpus * count

    def release(self, need: Resources, count: int) -> None:
        self.vcpus -= need.vcpus * count
        self.memory -= need.memory * count
        self.gpus -= need.gpus * count


def place(table: JobTable, ledger: Ledger, now: int) -> list[JobRow]:
    """Reserve room for the runnable units that fit, move them to STARTING (a new attempt) and
    return them; fail those that can never fit."""
    placed: list[JobRow] = []
    total = ledger.total
    unfit: set[tuple[Resources, int]] = set()
    for unit in fair_order(table):
        spec = table.spec_of(unit)
        count = spec.nodes if unit.parent_id is None else 1
        need = spec.resources
        if (need, count) in unfit:  # free room only shrinks during a pass: it will not fit now
            continue
        if not total.fits(need, count):
            del table.runnable[unit.id]
            reason = (
                f"CannotPlaceJob: the job needs {describe_need(need, count)} but the local"
                f" compute environment has only {total.describe()}"
            )
            table.finish_unit(unit, JobStatus.FAILED, reason, None, now)
            continue
        free = ledger.free()
        if not free.fits(need, count):
            if free.vcpus <= 0 or free.memory <= 0:
                break
            unfit.add((need, count))
            continue
        del table.runnable[unit.id]
        ledger.reserve(need, count)
        unit.attempts += 1
        table.set_unit(unit, JobStatus.STARTING, None, now)
        placed.append(unit)
    return placed

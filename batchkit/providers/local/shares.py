"""Fair share on the local engine: the queue's policy, and the order runnable jobs are placed in.

The local queue has a fair-share policy when `BATCHKIT_LOCAL_SHARES` names its shares and their
weights (`genomics=1,imaging=2,adhoc*=4`, as a cluster config's `fair_share.shares`). Then, as AWS
Batch does, each job names its share, a share's weight factor scales its usage (a lower weight gets
more of the machine), and within a share a higher `--priority` goes first. Each job keeps the
weight it was submitted with, so the worker needs no configuration of its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from msgspec import Struct

from batchkit.errors import ConfigError, UsageError
from batchkit.models import JobStatus

if TYPE_CHECKING:
    from batchkit.providers.local.rows import JobRow
    from batchkit.providers.local.table import JobTable

VARIABLE = "BATCHKIT_LOCAL_SHARES"
_ENTRY = re.compile(r"^([A-Za-z0-9]{1,255}\*?)=([0-9]*\.?[0-9]+)$")
_RUNNING = (JobStatus.STARTING, JobStatus.RUNNING)


class SharePolicy(Struct, frozen=True):
    weights: Mapping[str, float]

    def weight_of(self, share: str) -> float:
        """The weight of `share`: its own entry, else the longest `prefix*` entry it matches."""
        if share in self.weights:
            return self.weights[share]
        prefixes = [k for k in self.weights if k.endswith("*") and share.startswith(k[:-1])]
        if not prefixes:
            known = ", ".join(self.weights)
            raise UsageError(
                f"--share {share}: the local queue's policy has no such share",
                hint=f"use one of {known} (from {VARIABLE})",
            )
        return self.weights[max(prefixes, key=len)]


def policy_from_env(environ: Mapping[str, str] | None = None) -> SharePolicy | None:
    """The local queue's policy from `BATCHKIT_LOCAL_SHARES`, or None (no fair share)."""
    text = (os.environ if environ is None else environ).get(VARIABLE, "").strip()
    if not text:
        return None
    weights: dict[str, float] = {}
    for entry in text.split(","):
        match = _ENTRY.match(entry.strip())
        weight = float(match[2]) if match else 0.0
        if match is None or not 0.0001 <= weight <= 999.9999:
            raise ConfigError(
                f"{VARIABLE}: {entry.strip()!r} is not SHARE=WEIGHT",
                hint="e.g. genomics=1,imaging=2,adhoc*=4 (weights 0.0001 to 999.9999)",
            )
        weights[match[1]] = weight
    return SharePolicy(weights)


def share_weight(policy: SharePolicy | None, share: str | None) -> float:
    """The weight a job of `share` is scheduled with; refuses a share on a queue without a policy
    and a job without one on a queue with a policy, as SubmitJob does."""
    if share is not None and policy is None:
        raise UsageError(
            f"--share {share}: the local queue has no fair-share policy",
            hint=f"set {VARIABLE} (e.g. genomics=1,imaging=2) to give it one",
        )
    if policy is None:
        return 1.0
    if share is None:
        raise UsageError(
            "the local queue schedules by fair share: a job must name its share",
            hint="add --share ID (one of " + ", ".join(policy.weights) + ")",
        )
    return policy.weight_of(share)


def fair_order(table: JobTable) -> list[JobRow]:
    """The runnable units in the order to try them.

    Without shares: as they became runnable. With shares: repeatedly the share whose usage
    (vCPUs of its running jobs, plus those already ordered ahead in this pass) times its weight is
    lowest, and of that share the job with the highest priority, then the oldest. Jobs without a
    share (submitted before the policy) count as one share of weight 1."""
    units = list(table.runnable.values())
    if not table.shared:  # no job has a share: no need to look at each runnable unit
        return units
    if not any(table.spec_of(unit).share for unit in units):
        return units
    usage: dict[str, float] = {}
    for row in table.live.values():
        if row.status in _RUNNING and table.is_unit(row):
            spec = table.spec_of(row)
            usage[spec.share or ""] = usage.get(spec.share or "", 0.0) + _vcpus(table, row)
    queues: dict[str, list[tuple[int, int, JobRow]]] = {}
    weights: dict[str, float] = {}
    for index, unit in enumerate(units):
        spec = table.spec_of(unit)
        share = spec.share or ""
        queues.setdefault(share, []).append((-(spec.priority or 0), index, unit))
        weights[share] = spec.share_weight
    for entries in queues.values():
        entries.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)  # pop() from the end
    ordered: list[JobRow] = []
    while queues:
        share = min(queues, key=lambda s: (usage.get(s, 0.0) * weights[s], queues[s][-1][1]))
        _, _, unit = queues[share].pop()
        if not queues[share]:
            del queues[share]
        usage[share] = usage.get(share, 0.0) + _vcpus(table, unit)
        ordered.append(unit)
    return ordered


def _vcpus(table: JobTable, unit: JobRow) -> float:
    spec = table.spec_of(unit)
    nodes = spec.nodes if unit.parent_id is None else 1
    return spec.resources.vcpus * nodes

"""What teams sharing a cluster configure: who hears about jobs (`notifications:`) and how a
queue divides its capacity between them (`queues[].fair_share:`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from batchkit.infra.configbase import Model

# The job statuses a notification can be asked for, and BLOCKED: Batch's "Batch Job Queue
# Blocked" event, sent when a RUNNABLE job blocks its queue (Batch User Guide, "Job queue blocked
# events").
NotifyStatus = Literal[
    "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "BLOCKED"
]
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class NotificationsConfig(Model):
    """E-mail addresses subscribed to the cluster's job events topic, for the statuses asked."""

    email: list[Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)]] = []
    statuses: Annotated[list[NotifyStatus], Field(min_length=1)] = ["FAILED"]

    @property
    def job_statuses(self) -> list[str]:
        return [s for s in dict.fromkeys(self.statuses) if s != "BLOCKED"]

    @property
    def blocked(self) -> bool:
        return "BLOCKED" in self.statuses


class FairShareConfig(Model):
    """A fair-share scheduling policy for one queue (Batch API Reference, `FairsharePolicy`).

    `shares`: weight factor per share identifier (a lower weight gets more of the queue; an
    identifier ending in `*` covers every share starting with it); `compute_reservation`: the
    percentage of the queue's maximum vCPUs kept for shares that have no jobs yet;
    `share_decay_seconds`: how long past usage counts against a share (0: only current usage).
    """

    shares: Annotated[
        dict[
            Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,255}\*?$")],
            Annotated[float, Field(ge=0.0001, le=999.9999)],
        ],
        Field(min_length=1, max_length=500),
    ]
    compute_reservation: Annotated[int, Field(ge=0, le=99)] = 0
    share_decay_seconds: Annotated[int, Field(ge=0, le=604800)] = 0

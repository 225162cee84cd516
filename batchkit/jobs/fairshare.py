"""`--share` and `--priority`: the rules of SubmitJob's `shareIdentifier` and
`schedulingPriorityOverride` (Batch API Reference, `SubmitJob`, `ShareAttributes`), checked before
anything is staged or sent."""

from __future__ import annotations

import re

from batchkit.errors import UsageError
from batchkit.models import JobSpec

MAX_PRIORITY = 9999
SHARE = re.compile(r"^[A-Za-z0-9]{1,255}$")
"""A share identifier: up to 255 letters and digits (a policy's may also end in `*`)."""


def check_share_flags(spec: JobSpec) -> None:
    """The values alone: a valid identifier, a priority in range and only with a share."""
    if spec.share is not None and not SHARE.match(spec.share):
        raise UsageError(
            f"--share {spec.share!r} is not a share identifier",
            hint="use up to 255 letters and digits, as the queue's fair_share.shares name them",
        )
    if spec.priority is not None:
        if spec.share is None:
            raise UsageError(
                "--priority orders jobs within a share and needs --share",
                hint="add --share ID (the queue must have a fair-share policy)",
            )
        if not 0 <= spec.priority <= MAX_PRIORITY:
            raise UsageError(
                f"--priority must be between 0 and {MAX_PRIORITY}, got {spec.priority}",
                hint="higher runs first within the share",
            )


def check_share(spec: JobSpec, fair_share: bool | None) -> None:
    """Against the queue: a fair-share queue needs a share, any other queue takes none.
    `fair_share` None: the provider cannot tell (a cluster not made by batchkit), and AWS
    Batch decides."""
    check_share_flags(spec)
    queue = spec.queue or "the default queue"
    if fair_share is True and spec.share is None:
        raise UsageError(
            f"{queue} schedules by fair share: a job must say which share it belongs to",
            hint="add --share ID (Python: share=ID); the cluster config lists the shares",
        )
    if fair_share is False and spec.share is not None:
        raise UsageError(
            f"--share {spec.share}: {queue} has no fair-share scheduling policy",
            hint="leave out --share/--priority, or pick a queue with fair_share in the config",
        )

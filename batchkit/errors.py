"""The one error tree and the one exit-status enum.

Core code raises a `BatchkitError` subclass carrying the resource it is about and a hint that says
how to fix it; the CLI's single error boundary prints `error: <message>` and `hint: <hint>` on
stderr and exits with the error's `exit_code`. Nothing below the CLI prints or exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit status batchkit uses (documented in the README)."""

    OK = 0
    JOB_FAILED = 1  # `--wait`/`wait`: the job ended FAILED (or a child did)
    USAGE = 2  # bad flag, value, combination, file or config: nothing was submitted
    NOT_FOUND = 3  # unknown job, cluster, queue or image
    AWS = 4  # credentials, region, permissions, throttling, a service error
    CONFLICT = 5  # the resource is in a state that forbids the action
    ENGINE = 6  # the local engine or Docker engine could not do what was asked
    INTERRUPTED = 130  # Ctrl-C


class BatchkitError(Exception):
    """Base of every error batchkit raises on purpose."""

    exit_code: ExitCode = ExitCode.ENGINE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(BatchkitError):
    """A flag, value or combination of them is invalid. Raised before any API call."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A configuration file is invalid; the message names the file, line and key."""


class NotFoundError(BatchkitError):
    exit_code = ExitCode.NOT_FOUND


class JobNotFoundError(NotFoundError):
    def __init__(self, job_id: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"job {job_id} not found",
            hint=hint or "list jobs with `batchkit stat -s ALL`; ids are case-sensitive",
        )
        self.job_id = job_id


class ClusterNotFoundError(NotFoundError):
    def __init__(self, cluster: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"no cluster named {cluster!r}",
            hint=hint or "list clusters with `batchkit cluster list`, or use `-c local`",
        )
        self.cluster = cluster


class AwsError(BatchkitError):
    """An AWS call failed: credentials, region, permissions, throttling or a service error."""

    exit_code = ExitCode.AWS


class AccessDeniedError(AwsError):
    """AWS refused a call for want of a permission (`permission` is `service:Action`, e.g.
    `ec2:DescribeRouteTables`). The doctor reports such a check as not made."""

    def __init__(self, message: str, *, permission: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.permission = permission


class ConflictError(BatchkitError):
    exit_code = ExitCode.CONFLICT


class EngineError(BatchkitError):
    """The local engine or a Docker engine failed to do what was asked."""

    exit_code = ExitCode.ENGINE

"""Reading back what a function job returned, and re-raising what it raised.

A remote exception is raised again here with its own type and message; its traceback from the job
travels along as `__cause__` (a `RemoteTraceback` whose text is the job's traceback, so Python
prints it under "The above exception was the direct cause of…") and as the attribute
`remote_traceback`. An exception that could not be pickled in the job comes back as a
`RemoteError` carrying the remote type name and message.
"""

from __future__ import annotations

import contextlib
import pickle
from typing import Any

import cloudpickle
from msgspec import Struct

from batchkit.errors import BatchkitError, ExitCode
from batchkit.functions import runner


class RemoteTraceback(Exception):
    """The traceback of an exception raised inside a job (shown as the cause of the re-raise)."""

    def __init__(self, traceback: str) -> None:
        super().__init__(traceback)
        self.traceback = traceback

    def __str__(self) -> str:
        return "\n\n" + self.traceback.rstrip("\n")


class RemoteError(Exception):
    """A remote exception whose own type could not travel back (it did not pickle)."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_message = message


class FunctionJobError(BatchkitError):
    """A function job could not call the function, or left no result behind."""

    exit_code = ExitCode.JOB_FAILED

    def __init__(self, message: str, *, job_id: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.job_id = job_id


class Outcome(Struct, frozen=True):
    """One decoded `results/<index>.pkl`."""

    ok: bool
    value: Any = None
    exception: BaseException | None = None
    type_name: str = ""
    message: str = ""
    traceback: str = ""
    stage: str = runner.STAGE_CALL


def decode(body: bytes) -> Outcome:
    # The result was written by batchkit's runner into this job's own folder.
    raw = pickle.loads(body)  # noqa: S301
    if not isinstance(raw, dict) or "ok" not in raw:
        raise ValueError("not a batchkit function result")
    if raw["ok"]:
        return Outcome(ok=True, value=cloudpickle.loads(raw["value"]))
    exception: BaseException | None = None
    if raw.get("exception") is not None:
        try:
            loaded = cloudpickle.loads(raw["exception"])
        except Exception:  # its class may not exist here; fall back to type name and message
            loaded = None
        if isinstance(loaded, BaseException):
            exception = loaded
    return Outcome(
        ok=False,
        exception=exception,
        type_name=str(raw.get("type", "")),
        message=str(raw.get("message", "")),
        traceback=str(raw.get("traceback", "")),
        stage=str(raw.get("stage", runner.STAGE_CALL)),
    )


def unwrap(outcome: Outcome, *, job_id: str) -> Any:
    """The value of a successful call; otherwise raise what the job raised (see module doc)."""
    if outcome.ok:
        return outcome.value
    if outcome.stage == runner.STAGE_SETUP:
        raise FunctionJobError(
            f"job {job_id} could not run the function: {outcome.message}",
            job_id=job_id,
            hint="see the job's output with `batchkit out " + job_id + "`",
        )
    error = outcome.exception or RemoteError(outcome.type_name, outcome.message)
    if outcome.traceback:
        error.__cause__ = RemoteTraceback(outcome.traceback)
        with contextlib.suppress(AttributeError):  # an exception type with __slots__
            error.remote_traceback = outcome.traceback  # type: ignore[attr-defined]
        error.add_note(f"(raised in batchkit job {job_id}; remote traceback above)")
    raise error

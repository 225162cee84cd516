"""The function runner: what a function job runs inside its container (or local process).

This file is staged into every function job's folder as `batchkit_runner.py` and run by batchkit's
one wrapper (contract C2) as `python3 batchkit_runner.py` in the working directory the wrapper
filled from the job folder. It therefore imports nothing from batchkit (the image need not have
batchkit installed): only the standard library, cloudpickle to load the function, and — on AWS
only — boto3 (or the aws CLI) to upload the result. It is job-side code, like the wrapper's inline
fetch, never imported by the client library.

    <folder>/function.pkl          a plain pickle: {"format", "python": "3.11", "kind":
                                   "call"|"map", "count", "body": <cloudpickle of
                                   (fn, args, kwargs) or (fn, items)>}
    <folder>.results/<index>.pkl   a plain pickle written by this runner: {"format", "ok",
                                   "value" (cloudpickle bytes), "exception" (cloudpickle bytes or
                                   None), "type", "message", "traceback", "stage"}

The index is `AWS_BATCH_JOB_ARRAY_INDEX` (0 for a single job). Results live in a sibling of the job
folder, `job-<name>-<ms>.results/`, not inside it: every child of an array fetches the whole job
folder when it starts, so results inside it would be copied by every later child (quadratic) and
could vanish mid-copy (a failed fetch). The result goes to `$BATCHKIT_JOB_STAGE_DIR.results/` on the
local engine (beside the host directory that plays the S3 folder), else to
`${PCLUSTER_JOB_S3_URL%/}.results/`. Exit status: 0 the function returned, 1 it raised, 2 the job
could not call it (Python version, missing cloudpickle, unreadable payload), 3 the result could not
be stored.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FORMAT = 1
PAYLOAD = "function.pkl"
RESULTS_SUFFIX = ".results"
PICKLE_PROTOCOL = 4  # readable by every Python 3 a job might run
# Every child of a map pays this module's imports: only what every run needs is imported up front
# (cloudpickle itself is unavoidable: it rebuilds the function).

EXIT_OK = 0
EXIT_RAISED = 1
EXIT_SETUP = 2
EXIT_STORE = 3

STAGE_CALL = "call"  # the function ran and raised
STAGE_SETUP = "setup"  # the function could not be called at all
STAGE_RESULT = "result"  # the function returned something that does not pickle


def running_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def failure(stage: str, kind: str, message: str, trace: str = "") -> dict[str, Any]:
    return {
        "format": FORMAT,
        "ok": False,
        "value": None,
        "exception": None,
        "type": kind,
        "message": message,
        "traceback": trace,
        "stage": stage,
    }


def encode(result: Mapping[str, Any]) -> bytes:
    return pickle.dumps(dict(result), protocol=PICKLE_PROTOCOL)


def load_payload(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        # The payload was written by this job's submitter into its own job folder.
        payload = pickle.load(handle)  # noqa: S301
    if not isinstance(payload, dict) or "body" not in payload:
        raise ValueError(f"{path} is not a batchkit function payload")
    return payload


def call(payload: Mapping[str, Any], index: int) -> tuple[dict[str, Any], int]:
    """Load the function from `payload`, call it for `index`, and return (result, exit status)."""
    wanted = str(payload.get("python", ""))
    if wanted != running_python():
        message = (
            f"this function was pickled by Python {wanted} but the job runs Python "
            f"{running_python()} ({sys.executable}); run it in an image with Python {wanted}, "
            f"or submit it from Python {running_python()}"
        )
        return failure(STAGE_SETUP, "PythonVersionMismatch", message), EXIT_SETUP
    try:
        import cloudpickle
    except ImportError:
        message = (
            f"cloudpickle is not installed for {sys.executable}; function jobs need python3 "
            "with cloudpickle (and boto3 on AWS) in the image"
        )
        return failure(STAGE_SETUP, "ModuleNotFoundError", message), EXIT_SETUP
    try:
        loaded = cloudpickle.loads(payload["body"])
        if payload.get("kind") == "map":
            function, items = loaded
            args: tuple[Any, ...] = (items[index],)
            kwargs: dict[str, Any] = {}
        else:
            function, args, kwargs = loaded
    except Exception as err:
        message = (
            f"cannot load the function: {type(err).__name__}: {err} (a module it needs may be "
            "missing from the image)"
        )
        return failure(STAGE_SETUP, type(err).__name__, message, _trace()), EXIT_SETUP
    try:
        value = function(*args, **kwargs)
    except BaseException as err:  # the user's code may raise anything, SystemExit included
        outcome = failure(STAGE_CALL, _qualified(type(err)), str(err), _trace())
        try:
            outcome["exception"] = cloudpickle.dumps(err, protocol=PICKLE_PROTOCOL)
        except Exception:
            outcome["exception"] = None  # the caller rebuilds it from type and message
        return outcome, EXIT_RAISED
    try:
        body = cloudpickle.dumps(value, protocol=PICKLE_PROTOCOL)
    except Exception as err:
        message = f"the function returned a {type(value).__name__} that cannot be pickled: {err}"
        return failure(STAGE_RESULT, type(err).__name__, message, _trace()), EXIT_RAISED
    return {"format": FORMAT, "ok": True, "value": body, "stage": STAGE_CALL}, EXIT_OK


def _trace() -> str:
    import traceback

    return traceback.format_exc()


def _qualified(kind: type[BaseException]) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def store(body: bytes, index: int, environ: Mapping[str, str]) -> str:
    """Put the result where the submitter reads it; return where that was."""
    name = f"{index}.pkl"
    stage_dir = environ.get("BATCHKIT_JOB_STAGE_DIR", "").rstrip("/")
    if stage_dir:
        target = Path(stage_dir + RESULTS_SUFFIX) / name
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        # 0600 whatever the job's umask: the local engine reads only results no one else may write
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        partial.replace(target)  # readers never see half a result
        return str(target)
    folder = environ.get("PCLUSTER_JOB_S3_URL", "")
    if not folder.startswith("s3://"):
        raise RuntimeError("neither BATCHKIT_JOB_STAGE_DIR nor PCLUSTER_JOB_S3_URL is set")
    url = folder.rstrip("/") + RESULTS_SUFFIX + "/" + name
    bucket, _, key = url[len("s3://") :].partition("/")
    try:
        import boto3
    except ImportError:
        import subprocess

        local = Path(name)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(body)
        subprocess.run(["aws", "s3", "cp", "--only-show-errors", str(local), url], check=True)
        return url
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return url


def main(environ: Mapping[str, str] | None = None, workdir: Path | None = None) -> int:
    env = os.environ if environ is None else environ
    index = int(env.get("AWS_BATCH_JOB_ARRAY_INDEX") or 0)
    path = (workdir or Path.cwd()) / PAYLOAD
    try:
        payload = load_payload(path)
    except Exception as err:
        message = f"cannot read {PAYLOAD}: {type(err).__name__}: {err}"
        outcome, status = failure(STAGE_SETUP, type(err).__name__, message), EXIT_SETUP
    else:
        outcome, status = call(payload, index)
    if not outcome["ok"]:
        if outcome["traceback"]:
            sys.stderr.write(outcome["traceback"])
        sys.stderr.write(f"batchkit: {outcome['type']}: {outcome['message']}\n")
    try:
        where = store(encode(outcome), index, env)
    except Exception as err:
        sys.stderr.write(f"batchkit: cannot store the result: {type(err).__name__}: {err}\n")
        return EXIT_STORE
    if not outcome["ok"]:
        sys.stderr.write(f"batchkit: the error was stored in {where}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""From the Python API's arguments to a `JobSpec` (a function job's files staged from memory).

`Cluster.submit` takes what is natural in Python — a shell script as a `str`, an argv as a list or
tuple, or a callable with its arguments — plus keyword options named after the `sub` flags. This
module turns them into the same `JobSpec` the CLI builds, so both go through the one submission
path (validation, staging, the one wrapper).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypedDict

from msgspec import Struct
from msgspec.structs import replace

from batchkit.errors import UsageError
from batchkit.jobs.flags import DEFAULT_MEMORY_MIB, default_job_name, job_tags
from batchkit.models import Dependency, JobSpec, Resources

DEFAULT_FUNCTION_MEMORY_MIB = 1024
"""A Python interpreter with cloudpickle and the user's libraries needs more than a script."""


class HasJobId(Protocol):
    @property
    def job_id(self) -> str: ...


DependencyLike = str | Dependency | HasJobId


class SubmitOptions(Struct, frozen=True):
    """The keyword options of `Cluster.submit` and `Cluster.map` (see docs/python-api.md)."""

    vcpus: float = 1
    memory: int | None = None
    gpus: int = 0
    image: str | None = None
    array: int | None = None
    nodes: int = 1
    depends_on: DependencyLike | Sequence[DependencyLike] | None = None
    env: Mapping[str, str] | None = None
    retries: int = 1
    timeout: int | None = None
    name: str | None = None
    queue: str | None = None
    executor: str | None = None
    spot_retry: bool = False
    share: str | None = None
    priority: int | None = None


class MapOptions(TypedDict, total=False):
    """The keyword options of `Cluster.map`: `SubmitOptions` without `array` and `nodes`."""

    vcpus: float
    memory: int | None
    gpus: int
    image: str | None
    depends_on: DependencyLike | Sequence[DependencyLike] | None
    env: Mapping[str, str] | None
    retries: int
    timeout: int | None
    name: str | None
    queue: str | None
    executor: str | None
    spot_retry: bool
    share: str | None
    priority: int | None


def plan_job(
    target: object,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: SubmitOptions,
    *,
    python: str | Sequence[str],
) -> JobSpec:
    """The job that runs `target` (script text, an argv list, or a callable with its arguments)."""
    if isinstance(target, str | bytes):
        if kwargs:
            raise _no_kwargs("a script", kwargs)
        script = target.encode() if isinstance(target, str) else target
        return _spec(options, default_name="script", script=script, arguments=_argv(args, "script"))
    if isinstance(target, list | tuple):
        if args or kwargs:
            raise UsageError(
                "extra arguments were given with an argv list",
                hint="put every argument in the list: submit(['echo', 'a', 'b'])",
            )
        argv = _argv(target, "command")
        if not argv:
            raise UsageError("the command list is empty", hint="e.g. submit(['echo', 'hello'])")
        name = default_job_name(argv[0], from_stdin=False)
        return _spec(options, default_name=name, command=argv)
    if callable(target):
        from batchkit.functions import payload

        if options.nodes != 1:
            raise UsageError(
                "nodes= is for scripts: a function job runs on one node",
                hint="submit a script for a multi-node job, or use array= / map()",
            )
        body = payload.pack_call(target, args, kwargs)
        return _function_job(target, body, options, python=python)
    raise UsageError(
        f"cannot submit a {type(target).__name__}",
        hint="pass a shell script (str), an argv list, a function, or a JobSpec",
    )


def plan_map(
    function: Callable[..., Any],
    items: Iterable[Any],
    options: SubmitOptions,
    *,
    python: str | Sequence[str],
) -> JobSpec:
    """One array job whose child `i` calls `function(items[i])` (a single job for one item)."""
    from batchkit.functions import payload
    from batchkit.limits import MAX_ARRAY_SIZE

    if not callable(function):
        raise UsageError(
            f"map() needs a function, got a {type(function).__name__}",
            hint="e.g. cluster.map(square, range(10))",
        )
    if options.array is not None or options.nodes != 1:
        raise UsageError(
            "map() sets the array size itself", hint="leave out array= and nodes= with map()"
        )
    values = list(items)
    if not values:
        raise UsageError("map() was given no items", hint="pass a non-empty iterable")
    if len(values) > MAX_ARRAY_SIZE:
        raise UsageError(
            f"map() was given {len(values)} items; one array job holds at most {MAX_ARRAY_SIZE}",
            hint="split the items into chunks and map a function over the chunks",
        )
    body = payload.pack_map(function, values)
    sized = replace(options, array=len(values) if len(values) > 1 else None)
    return _function_job(function, body, sized, python=python)


def _function_job(
    function: Callable[..., Any],
    body: bytes,
    options: SubmitOptions,
    *,
    python: str | Sequence[str],
) -> JobSpec:
    from batchkit.functions import payload

    spec = _spec(
        options,
        default_name=_function_name(function),
        command=(*([python] if isinstance(python, str) else python), payload.RUNNER_NAME),
        default_memory=DEFAULT_FUNCTION_MEMORY_MIB,
    )
    files = {payload.PAYLOAD_NAME: body, payload.RUNNER_NAME: payload.runner_source()}
    return replace(spec, staged_files=files)


#: argv prefix for a local job with an image that runs in Docker only if an engine answers: this
#: very Python when its path exists where the job runs (a local process), else the image's python3.
_THIS_PYTHON_IF_THERE = 'if [ -x "$1" ]; then p=$1; else p=python3; fi; shift; exec "$p" "$@"'


def job_python(*, local: bool, image: str | None, executor: str | None) -> tuple[str, ...]:
    """The interpreter (argv) that runs a function job: this very Python for a local process (so
    the job has cloudpickle and the same version), `python3` from the image in a container. A
    local job with an image and executor auto runs in Docker only when an engine answers: its
    interpreter is decided where it runs."""
    if local and (image is None or executor == "process"):
        return (sys.executable,)
    if local and executor in (None, "auto"):
        return ("/bin/sh", "-c", _THIS_PYTHON_IF_THERE, "batchkit-python", sys.executable)
    return ("python3",)


def _spec(
    options: SubmitOptions,
    *,
    default_name: str,
    command: Sequence[str] = (),
    script: bytes | None = None,
    arguments: Sequence[str] = (),
    default_memory: int = DEFAULT_MEMORY_MIB,
) -> JobSpec:
    return JobSpec(
        name=default_name if options.name is None else options.name,
        command=tuple(command),
        script=script,
        arguments=tuple(arguments),
        env=dict(options.env or {}),
        resources=Resources(
            vcpus=options.vcpus,
            memory=default_memory if options.memory is None else options.memory,
            gpus=options.gpus,
        ),
        image=options.image,
        queue=options.queue,
        array_size=options.array,
        nodes=options.nodes,
        depends_on=dependencies(options.depends_on),
        retry_attempts=options.retries,
        timeout=options.timeout,
        tags=job_tags(options.executor, spot_retry=options.spot_retry),
        share=options.share,
        priority=options.priority,
        memory_default=options.memory is None,
    )


def dependencies(value: DependencyLike | Sequence[DependencyLike] | None) -> tuple[Dependency, ...]:
    """`depends_on=`: a job (handle or snapshot), an id, a `Dependency`, or a list of them."""
    if value is None:
        return ()
    items: Sequence[object] = (
        value if isinstance(value, list | tuple) else [value]  # type: ignore[list-item]
    )
    deps: list[Dependency] = []
    for item in items:
        if isinstance(item, Dependency):
            deps.append(item)
        elif isinstance(item, str):
            deps.append(Dependency(job_id=item))
        elif isinstance(getattr(item, "job_id", None), str):
            deps.append(Dependency(job_id=item.job_id))  # type: ignore[attr-defined]
        else:
            raise UsageError(
                f"depends_on= cannot use a {type(item).__name__}",
                hint="pass jobs, job ids, or batchkit.models.Dependency values",
            )
    return tuple(deps)


def _argv(values: Iterable[object], what: str) -> tuple[str, ...]:
    argv: list[str] = []
    for value in values:
        if isinstance(value, str):
            argv.append(value)
        elif isinstance(value, os.PathLike):
            argv.append(os.fspath(value))  # type: ignore[arg-type]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            argv.append(str(value))
        else:
            raise UsageError(
                f"a {what} argument must be a string, a path or a number, "
                f"got a {type(value).__name__}",
                hint="arguments of scripts and commands travel as text; submit a function to "
                "pass Python objects",
            )
    return tuple(argv)


def _no_kwargs(what: str, kwargs: Mapping[str, Any]) -> UsageError:
    name = next(iter(kwargs))
    return UsageError(
        f"unknown option {name}= for {what}",
        hint="keyword arguments other than the submit options are only for functions",
    )


def _function_name(function: Callable[..., Any]) -> str:
    name = getattr(function, "__name__", None) or type(function).__name__
    return _clean(str(name).replace("<lambda>", "lambda")) or "function"


def _clean(text: str) -> str:
    return re.sub(r"\W+", "_", text, flags=re.ASCII).strip("_")[:128]


def split_options(kwargs: Mapping[str, Any]) -> tuple[SubmitOptions, dict[str, Any]]:
    """`Cluster.submit`'s keywords: the submit options, and the rest (the function's)."""
    names = set(SubmitOptions.__struct_fields__)
    options = SubmitOptions(**{k: v for k, v in kwargs.items() if k in names})
    return options, {k: v for k, v in kwargs.items() if k not in names}

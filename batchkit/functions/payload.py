"""Packing a function job: the payload, the runner source, the command that runs them.

The payload is a plain pickle (protocol 4) around a cloudpickle body, so the runner can read the
Python version it was made with before it unpickles anything version-specific: a mismatch is then
a clear message instead of an unpickling crash. Arguments are checked here, at submit time, so an
unpicklable one is reported by name before anything is uploaded.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import sysconfig
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

from batchkit.errors import UsageError
from batchkit.functions import runner

RUNNER_NAME = "batchkit_runner.py"
PAYLOAD_NAME = runner.PAYLOAD


def result_key(folder_key: str, index: int) -> str:
    """Where child `index` of the job whose folder is `folder_key` stores its result: in the
    sibling `<folder>.results/` (see `runner` for why not inside the folder)."""
    return f"{folder_key.rstrip('/')}{runner.RESULTS_SUFFIX}/{index}.pkl"


_UNPICKLABLE_HINT = (
    "pass plain data (numbers, strings, lists, dicts, arrays, dataclasses); create open files, "
    "locks, sockets, generators and clients inside the function instead"
)


def python_version(version: Sequence[int] | None = None) -> str:
    """`major.minor` of this (or the given) Python, as the runner compares it."""
    info = tuple(version or sys.version_info[:2])
    return f"{info[0]}.{info[1]}"


def runner_source() -> bytes:
    """The bytes of `runner.py`, staged into each function job's folder."""
    return resources.files("batchkit.functions").joinpath("runner.py").read_bytes()


def pack_call(
    function: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    version: Sequence[int] | None = None,
) -> bytes:
    """The payload of one call `function(*args, **kwargs)`."""
    labels = [f"argument {i + 1} ({_short(a)})" for i, a in enumerate(args)]
    labels += [f"keyword argument {name!r}" for name in kwargs]
    body = _dumps(
        function,
        (function, tuple(args), dict(kwargs)),
        [*args, *kwargs.values()],
        labels,
    )
    return _wrap("call", 1, body, version)


def pack_map(
    function: Callable[..., Any], items: Sequence[Any], *, version: Sequence[int] | None = None
) -> bytes:
    """The payload of `map`: child `i` of the array job calls `function(items[i])`."""
    labels = [f"item {i} ({_short(item)})" for i, item in enumerate(items)]
    body = _dumps(function, (function, list(items)), list(items), labels)
    return _wrap("map", len(items), body, version)


def _wrap(kind: str, count: int, body: bytes, version: Sequence[int] | None) -> bytes:
    payload = {
        "format": runner.FORMAT,
        "python": python_version(version),
        "kind": kind,
        "count": count,
        "body": body,
    }
    return pickle.dumps(payload, protocol=runner.PICKLE_PROTOCOL)


def _dumps(
    function: Callable[..., Any], whole: object, parts: Sequence[Any], labels: Sequence[str]
) -> bytes:
    """cloudpickle `whole`; on failure, find the first part that does not pickle and name it."""
    name = _function_name(function)
    with _by_value(function):
        try:
            return bytes(cloudpickle.dumps(whole, protocol=runner.PICKLE_PROTOCOL))
        except Exception as err:
            first_error: Exception = err
        try:
            cloudpickle.dumps(function, protocol=runner.PICKLE_PROTOCOL)
        except Exception as err:
            raise UsageError(
                f"the function {name} cannot be pickled: {type(err).__name__}: {err}",
                hint="define it at the top level of a module or notebook cell; it may not "
                "capture open files, locks or clients",
            ) from err
        for part, label in zip(parts, labels, strict=True):
            try:
                cloudpickle.dumps(part, protocol=runner.PICKLE_PROTOCOL)
            except Exception as err:
                raise UsageError(
                    f"{label} of {name} cannot be pickled: {type(err).__name__}: {err}",
                    hint=_UNPICKLABLE_HINT,
                ) from err
    raise UsageError(
        f"the arguments of {name} cannot be pickled: {type(first_error).__name__}: {first_error}",
        hint=_UNPICKLABLE_HINT,
    ) from first_error


@contextlib.contextmanager
def _by_value(function: Callable[..., Any]) -> Iterator[None]:
    """Pickle the function's own module by value when it is the user's file rather than an
    installed package: the job's image has the installed packages, not the user's scripts."""
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    registered = False
    if module is not None and _is_user_module(module):
        with contextlib.suppress(ValueError):
            cloudpickle.register_pickle_by_value(module)
            registered = True
    try:
        yield
    finally:
        if registered and module is not None:
            with contextlib.suppress(ValueError):
                cloudpickle.unregister_pickle_by_value(module)


def _is_user_module(module: ModuleType) -> bool:
    if module.__name__ in ("__main__", "builtins") or module.__name__.startswith("batchkit"):
        return False
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = Path(file).resolve()
    installed = {
        Path(p).resolve()
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
    installed.update(Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix))
    return not any(path.is_relative_to(root) for root in installed)


def _function_name(function: Callable[..., Any]) -> str:
    return str(getattr(function, "__qualname__", None) or getattr(function, "__name__", function))


def _short(value: object) -> str:
    text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."

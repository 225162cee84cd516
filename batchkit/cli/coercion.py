"""Plain conversion of option values, so that running a command does not import pydantic.

Typer (0.2x+) converts every non-flag parameter through a pydantic `TypeAdapter`, built on first
use; importing pydantic and building the adapters costs about 100 ms per invocation, a third of
`batchkit stat`'s cold start. Our commands only take `str`, `int`, `float`, enums and lists of
them, so our commands and groups (`PlainCommand`, `PlainGroup`) give each such parameter a tiny
converter instead. This relies on Typer's lazily-built `_runtime_param` slot: on a Typer without
it, or for any annotation it does not know, nothing changes and Typer's own conversion runs.
"""

from __future__ import annotations

import enum
import math
import types
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin

import typer
from typer.core import TyperCommand, TyperGroup

from batchkit.cli.errors import flag_errors

Converter = Callable[[str], Any]


class PlainRuntimeParam:
    """Typer's runtime-parameter interface (`coerce`) for simple scalar or list annotations."""

    def __init__(self, convert: Converter, label: str) -> None:
        self._convert = convert
        self._label = label

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = bool(param.multiple or param.nargs == -1)
        if value is None:
            return () if multi else None
        if multi:
            return [self._one(item, param, ctx) for item in value]
        return self._one(value, param, ctx)

    def _one(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value  # a default, already typed
        try:
            return self._convert(value)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not a valid {self._label}.", ctx=ctx, param=param
            ) from None


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _finite(text: str) -> float:
    """A float option is a finite number: `nan` and `inf` parse as floats but mean nothing as
    vCPUs or seconds (and `nan` compares false with every bound)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def converter_for(annotation: Any) -> tuple[Converter, str] | None:
    """A converter and a label for `annotation` (optional and list forms included), or None."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) != 1:
            return None
        annotation = members[0]
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    if annotation is bool:
        return _boolean, "boolean"
    if annotation is str:
        return str, "string"
    if annotation is int:
        return int, "integer"
    if annotation is float:
        return _finite, "number"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = ", ".join(str(member.value) for member in annotation)
        return annotation, f"choice (one of {choices})"
    return None


def _no_type(ctx: Any) -> str:
    return ""


def install(params: list[Any]) -> list[Any]:
    """Give each simple parameter in `params` a plain converter (unless it has one), and each
    argument with a metavar a help line without Typer's Python type; return them."""
    for param in params:
        if getattr(param, "param_type_name", None) == "argument" and param.metavar:
            param.display_type = _no_type  # `JOB_ID` says it all; not `JOB_ID <list[str]>`
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue
        found = converter_for(descriptor.annotation)
        if found is not None:
            param._runtime_param = PlainRuntimeParam(*found)
    return params


class PlainCommand(TyperCommand):
    """A command whose parameters (its --help included) convert without pydantic, and whose
    flag errors read like every other batchkit error."""

    def get_params(self, ctx: Any) -> list[Any]:
        return install(super().get_params(ctx))

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        return _parsed(super().make_context, info_name, args, parent, extra)


class PlainGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return install(super().get_params(ctx))

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        return _parsed(super().make_context, info_name, args, parent, extra)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        with flag_errors(ctx.command_path):
            return super().resolve_command(ctx, args)


def _parsed(
    make: Callable[..., Any], name: str | None, args: list[str], parent: Any, extra: Any
) -> Any:
    """`make_context`, with Click's usage errors shown as batchkit errors of the command path
    (`batchkit sub`) being parsed."""
    path = " ".join(part for part in (getattr(parent, "command_path", None), name) if part)
    with flag_errors(path):
        return make(name, args, parent, **extra)

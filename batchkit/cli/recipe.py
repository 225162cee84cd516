"""The flags that make an image recipe, shared by `image build` and `image buildspec`.

Both commands take the same context, preset, Dockerfile, name, build arguments, platform and
cache flags, so that `batchkit image buildspec ARGS` prints the buildspec that
`batchkit image build ARGS` sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from batchkit.images.plan import ImageRecipe

PathArgument = Annotated[
    Path | None,
    typer.Argument(metavar="PATH", help="Build context directory (with a Dockerfile)."),
]
PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset",
        metavar="al2023|debian|mpi",
        help="Build a batchkit image (mpi: Open MPI and mpi4py).",
    ),
]
FileOption = Annotated[
    str | None,
    typer.Option("-f", "--file", metavar="FILE", help="Dockerfile, relative to PATH."),
]
NameOption = Annotated[
    str | None,
    typer.Option("--name", metavar="NAME", help="Image name (default: preset or directory)."),
]
BuildArgOption = Annotated[
    list[str] | None,
    typer.Option("--build-arg", metavar="NAME=VALUE", help="A Dockerfile ARG (repeatable)."),
]
BaseImageOption = Annotated[
    str | None,
    typer.Option("--base-image", metavar="IMAGE", help="Same as --build-arg BASE_IMAGE=IMAGE."),
]
PlatformOption = Annotated[
    str | None,
    typer.Option("--platform", metavar="OS/ARCH", help="e.g. linux/arm64 (default: builder's)."),
]
NoCacheOption = Annotated[
    bool,
    typer.Option(
        "--no-cache", help="Build every layer afresh (no layers reused from the last build)."
    ),
]


def recipe_from_flags(
    path: Path | None,
    preset: str | None,
    dockerfile: str | None,
    name: str | None,
    build_arg: Iterable[str] | None,
    base_image: str | None,
    platform: str | None,
    no_cache: bool,
) -> ImageRecipe:
    """The recipe the flags describe; UsageError for a contradiction or a malformed value."""
    from batchkit.errors import UsageError
    from batchkit.images.plan import ImageRecipe
    from batchkit.images.presets import PRESETS, preset_recipe
    from batchkit.providers.images import check_image_name

    args = _parse_build_args(build_arg or ())
    if base_image:
        args["BASE_IMAGE"] = base_image
    if (path is None) == (preset is None):
        raise UsageError(
            "give either a build context directory or --preset",
            hint=f"e.g. `batchkit image build ./docker` or `--preset {PRESETS[1]}`",
        )
    if preset is not None:
        if dockerfile:
            raise UsageError("--file cannot be used with --preset", hint="drop --file")
        recipe = preset_recipe(
            preset, name=name, build_args=args, platform=platform, cache=not no_cache
        )
    else:
        assert path is not None
        context = path.expanduser().resolve()
        recipe = ImageRecipe(
            name=name or _default_name(context.name),
            context_dir=context,
            dockerfile=dockerfile or "Dockerfile",
            build_args=args,
            platform=platform,
            cache=not no_cache,
        )
    check_image_name(recipe.name)
    return recipe


def _parse_build_args(values: Iterable[str]) -> dict[str, str]:
    from batchkit.errors import UsageError

    parsed: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise UsageError(
                f"invalid --build-arg {value!r}",
                hint="write --build-arg NAME=VALUE (NAME: letters, digits and _)",
            )
        parsed[key] = val
    return parsed


def _default_name(directory: str) -> str:
    """The directory's name, lower-cased, with anything but [a-z0-9._-] turned into `-`."""
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
    name = "".join(c if c in allowed else "-" for c in directory.lower()).strip("-._")
    return name[:64] or "image"

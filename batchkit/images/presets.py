"""The Dockerfiles batchkit ships: `--preset al2023`, `--preset debian` and `--preset mpi` (Debian
with Open MPI and mpi4py, for multi-node jobs).

They live in `dockerfiles/` at the top of the repository (shipped inside the wheel, found
through `batchkit.shipped`), as one build context: `<preset>/Dockerfile` plus the `scripts/` both
copy (the job entrypoint, the MNP rendezvous and the launch agent). So `batchkit image build
--preset debian` and `docker build -f dockerfiles/debian/Dockerfile dockerfiles` build the same
thing.
"""

from __future__ import annotations

from collections.abc import Mapping

from batchkit.errors import UsageError
from batchkit.images.plan import ImageRecipe
from batchkit.shipped import folder

PRESETS_DIR = folder("dockerfiles")
PRESETS = ("al2023", "debian", "mpi")


def preset_recipe(
    preset: str,
    *,
    name: str | None = None,
    build_args: Mapping[str, str] | None = None,
    platform: str | None = None,
    cache: bool = True,
) -> ImageRecipe:
    """The recipe of a shipped image; the image name defaults to the preset's."""
    if preset not in PRESETS:
        raise UsageError(
            f"unknown preset {preset!r}",
            hint=f"choose one of: {', '.join(PRESETS)}",
        )
    return ImageRecipe(
        name=name or preset,
        context_dir=PRESETS_DIR,
        dockerfile=f"{preset}/Dockerfile",
        build_args=dict(build_args or {}),
        platform=platform,
        cache=cache,
    )

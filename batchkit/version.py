"""batchkit's version: the installed distribution's, so pyproject.toml is its one source."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version


def _installed() -> str:
    try:
        return distribution_version("batchkit")
    except PackageNotFoundError:  # a checkout put on sys.path without being installed
        return "0+unknown"


__version__ = _installed()

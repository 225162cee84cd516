"""The folders batchkit ships beside its code: `lambdas/` and `dockerfiles/`.

In a checkout (and an editable install) they sit at the top of the repository, next to the
`batchkit/` package; a wheel carries them inside the package as `batchkit/_shipped/<name>/`
(pyproject's `force-include`), so that an installed batchkit can inline the Lambda code into its
templates and build its preset images. `folder()` finds either.

The Lambda code never imports batchkit (it runs in Lambda with only boto3), so batchkit loads it
as a package of its own, `batchkit_lambdas`, to run the same cleanup in-process at
`cluster delete`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Literal

Shipped = Literal["lambdas", "dockerfiles"]

_PACKAGE_DIR = Path(__file__).resolve().parent
LAMBDAS_PACKAGE = "batchkit_lambdas"


def folder(name: Shipped) -> Path:
    """The shipped folder `name`: inside the installed package, else beside it in a checkout."""
    for candidate in (_PACKAGE_DIR / "_shipped" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"batchkit's {name}/ folder is missing from this installation "
        f"(looked in {_PACKAGE_DIR / '_shipped'} and {_PACKAGE_DIR.parent}); reinstall batchkit"
    )


def lambda_module(module: str) -> ModuleType:
    """`lambdas/<module>.py`, imported as `batchkit_lambdas.<module>` (relative imports work)."""
    if LAMBDAS_PACKAGE not in sys.modules:
        init = folder("lambdas") / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            LAMBDAS_PACKAGE, init, submodule_search_locations=[str(init.parent)]
        )
        if spec is None or spec.loader is None:  # pragma: no cover - a file that exists loads
            raise ImportError(f"cannot load {init}")
        package = importlib.util.module_from_spec(spec)
        sys.modules[LAMBDAS_PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{LAMBDAS_PACKAGE}.{module}")

"""The package's layers (docs: /DESIGN "Architecture"), read from the code's own imports.

    top        batchkit (the package), __main__, cli/, notebook/
    api        api.py, handles.py
    core       jobs/, infra/, images/, functions/, doctor/, clusters/, jobspecs.py
    providers  providers/ (aws/, local/, and what both speak)
    leaves     models.py, logmodel.py, clustermodel.py, computemodel.py, errors.py, config.py,
               limits.py, shipped.py, version.py

A module imports its own layer and the layers below it, never above; no modules import each other
in a loop; only providers/aws imports boto3 and botocore; only cli/ and notebook/ import typer,
rich and IPython; the Lambda code (lambdas/) and the function runner (the job side of a function
job) import nothing of batchkit. Every import statement counts, also one inside a function or
under `TYPE_CHECKING`: each is a dependency a reader has to hold. (A module loaded by name,
`importlib.import_module(...)` in `batchkit/__init__.py` and `cli/app.py`, is not an import
statement; both loaders sit on top.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = ("leaves", "providers", "core", "api", "top")
PLACES: dict[str, str] = {
    "batchkit": "top",
    "batchkit.__main__": "top",
    "batchkit.cli": "top",
    "batchkit.notebook": "top",
    "batchkit.api": "api",
    "batchkit.handles": "api",
    "batchkit.jobs": "core",
    "batchkit.infra": "core",
    "batchkit.images": "core",
    "batchkit.functions": "core",
    "batchkit.doctor": "core",
    "batchkit.clusters": "core",
    "batchkit.jobspecs": "core",
    "batchkit.providers": "providers",
    "batchkit.models": "leaves",
    "batchkit.logmodel": "leaves",
    "batchkit.clustermodel": "leaves",
    "batchkit.computemodel": "leaves",
    "batchkit.errors": "leaves",
    "batchkit.config": "leaves",
    "batchkit.limits": "leaves",
    "batchkit.shipped": "leaves",
    "batchkit.version": "leaves",
}
# Who may import these third-party packages (a module under one of the prefixes).
THIRD_PARTY = {
    "boto3": ("batchkit.providers.aws",),
    "botocore": ("batchkit.providers.aws",),
    "typer": ("batchkit.cli",),
    "click": ("batchkit.cli",),
    "rich": ("batchkit.cli",),
    "IPython": ("batchkit.notebook",),
}
# Code that runs on the job's side, in the container, where batchkit need not be installed.
JOB_SIDE = ("batchkit.functions.runner",)
# Known exceptions (module name prefix -> what it may import above it), each with its reason.
# None today: a new one needs a reason here, and is deleted once the code no longer needs it.
ALLOWED_UPWARD: dict[str, tuple[str, ...]] = {}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, module: str, known: set[str]) -> Iterator[str]:
    """Every module `path` imports (a batchkit module by its full name, others by top name)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _known(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in known else _known(base, known)


def _known(name: str, known: set[str]) -> str:
    """The longest batchkit module that `name` names, else its top-level package."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return parts[0]


def graph(root: Path, packages: tuple[str, ...] = ("batchkit",)) -> dict[str, set[str]]:
    files = {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }
    known = set(files)
    return {module: set(imports(path, module, known)) - {module} for module, path in files.items()}


def place(module: str) -> str | None:
    for prefix, layer in sorted(PLACES.items(), key=lambda kv: -len(kv[0])):
        if module == prefix or (prefix != "batchkit" and module.startswith(prefix + ".")):
            return layer
    return None


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _allowed_upward(module: str, target: str) -> bool:
    return any(
        module.startswith(prefix) and _under(target, targets)
        for prefix, targets in ALLOWED_UPWARD.items()
    )


def violations(edges: Mapping[str, set[str]]) -> list[str]:
    """What breaks the rules of the module docstring, one line each."""
    found: list[str] = []
    for module, targets in sorted(edges.items()):
        layer = place(module)
        if layer is None:
            found.append(f"{module}: in no layer (add it to PLACES)")
            continue
        for target in sorted(targets):
            if target.split(".")[0] == "batchkit":
                upper = place(target) or "top"
                if _under(module, JOB_SIDE):
                    found.append(f"{module} -> {target}: job-side code imports no batchkit")
                elif LAYERS.index(upper) > LAYERS.index(layer) and not _allowed_upward(
                    module, target
                ):
                    found.append(f"{module} ({layer}) -> {target} ({upper}): imports upward")
            elif target in THIRD_PARTY and not _under(module, THIRD_PARTY[target] + JOB_SIDE):
                found.append(f"{module} -> {target}: only {', '.join(THIRD_PARTY[target])}")
    return found + [f"import cycle: {' -> '.join(loop)}" for loop in cycles(edges)]


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_package_keeps_its_layers_and_has_no_import_cycle() -> None:
    assert violations(graph(ROOT)) == []


def test_the_lambdas_import_nothing_of_batchkit() -> None:
    edges = graph(ROOT, ("lambdas",))
    assert edges, "no Lambda modules found"
    assert {
        module: sorted(t for t in targets if t.split(".")[0] == "batchkit")
        for module, targets in edges.items()
    } == {module: [] for module in edges}


def test_the_known_exceptions_are_still_needed() -> None:
    """An allowance nobody uses any more is deleted, not kept as a silent hole."""
    edges = graph(ROOT)
    for prefix, targets in ALLOWED_UPWARD.items():
        assert any(
            module.startswith(prefix) and any(_under(t, targets) for t in imported)
            for module, imported in edges.items()
        ), f"ALLOWED_UPWARD[{prefix!r}] is no longer used: remove it"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"batchkit/models.py": "from batchkit.api import connect\n", "batchkit/api.py": ""},
            ["batchkit.models (leaves) -> batchkit.api (api): imports upward"],
        ),
        (
            {
                "batchkit/providers/__init__.py": "",
                "batchkit/providers/local.py": "def f():\n    from ..jobs import query\n",
                "batchkit/jobs/__init__.py": "",
                "batchkit/jobs/query.py": "",
            },
            ["batchkit.providers.local (providers) -> batchkit.jobs.query (core): imports upward"],
        ),
        (
            {
                "batchkit/api.py": "from batchkit import handles\n",
                "batchkit/handles.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from batchkit.api import Cluster\n"
                ),
            },
            ["import cycle: batchkit.api -> batchkit.handles"],
        ),
        (
            {"batchkit/jobs/__init__.py": "", "batchkit/jobs/s3.py": "import boto3.session\n"},
            ["batchkit.jobs.s3 -> boto3: only batchkit.providers.aws"],
        ),
        (
            {"batchkit/functions/runner.py": "import boto3\nfrom batchkit import errors\n"},
            ["batchkit.functions.runner -> batchkit: job-side code imports no batchkit"],
        ),
        (
            {"batchkit/widgets.py": "import json\n"},
            ["batchkit.widgets: in no layer (add it to PLACES)"],
        ),
    ],
)
def test_the_checker_reports_what_breaks_a_rule(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    for name, text in {"batchkit/__init__.py": "", **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(graph(tmp_path)) == expected

"""batchkit: run containerized batch work on AWS Batch, or the same jobs on one machine.

    import batchkit
    cluster = batchkit.connect()            # the configured default cluster, else the local engine
    job = cluster.submit(square, 7)         # a function job (or a script str, or an argv list)
    job.result()                            # 49

Everything is imported lazily (a module `__getattr__`), so `import batchkit` stays cheap: the CLI,
the engine and boto3 load only when used. Where IPython runs, `Job.wait` shows an HTML bar (see
`batchkit.notebook`), and `%load_ext batchkit` adds `%%batchkit`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchkit.api import Cluster, connect
    from batchkit.handles import Job, JobList, Logs
    from batchkit.models import JobSpec, JobStatus
    from batchkit.version import __version__

__all__ = [
    "Cluster",
    "Job",
    "JobList",
    "JobSpec",
    "JobStatus",
    "Logs",
    "__version__",
    "connect",
    "load_ipython_extension",
]

_LAZY = {
    "connect": "batchkit.api",
    "Cluster": "batchkit.api",
    "Job": "batchkit.handles",
    "JobList": "batchkit.handles",
    "Logs": "batchkit.handles",
    "JobSpec": "batchkit.models",
    "JobStatus": "batchkit.models",
    "__version__": "batchkit.version",
}


if "IPython" in sys.modules:
    # A Jupyter kernel imports IPython before it runs any user code, so this is where a notebook
    # user's `import batchkit` plugs the HTML progress bar into `Job.wait` (core shows text only).
    from batchkit.notebook.progress import install

    install()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext batchkit`: register the `%%batchkit` cell magic (see `batchkit.notebook`)."""
    from batchkit.notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from batchkit.notebook import unload_ipython_extension as unload

    unload(ipython)

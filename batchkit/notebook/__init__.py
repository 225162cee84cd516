"""Notebook support: the HTML progress bar `Job.wait` shows in Jupyter, and the `%%batchkit` magic.

The status cards and tables themselves are pure renderers in `batchkit.jobs.display`.
`%load_ext batchkit` calls `batchkit.load_ipython_extension`, which lands here. Only this package
(and `cli/`) imports IPython.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """Register the `%%batchkit` cell magic."""
    from batchkit.notebook.magic import CellMagic
    from batchkit.notebook.progress import install

    install()

    ipython.register_magic_function(CellMagic(), magic_kind="cell", magic_name="batchkit")


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo: IPython drops the magic with the extension."""

"""Garbage collection paused for a console script's start-up.

Start-up makes tens of thousands of objects that live as long as the process (Typer, the
modules, their classes and functions) and next to no garbage, yet the collector went over them
about 40 times, and once more at exit: 43 of `batchkit sub`'s 376 million instructions
(callgrind). The console scripts (`batchkit.cli.console`) call `pause_collection` first;
`batchkit.cli.app` calls `resume_collection` once the command is built and before it runs, which
freezes what start-up made, so that no later collection visits it, and turns the collector back
on, so that a long-running command (`out -s`, `sub -w`, the local worker) collects its own
garbage as usual.
"""

from __future__ import annotations

import gc

_paused = False


def pause_collection() -> None:
    """Turn the garbage collector off for start-up (if it is on)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collection() -> None:
    """Freeze what start-up made and turn the collector back on, if `pause_collection` turned it
    off (a caller that turned it off itself keeps it off)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()

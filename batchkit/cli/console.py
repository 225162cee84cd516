"""The console scripts: `batchkit`, and awsbatch-cli's names as its aliases (`awsbsub …` is
`batchkit sub …`). Each starts with garbage collection paused (`batchkit.cli.startup`) and
imports the command line only then.
"""

from __future__ import annotations

import sys

from batchkit.cli.startup import pause_collection


def batchkit() -> None:
    """`batchkit …`"""
    pause_collection()
    from batchkit.cli.app import main

    main()


def _alias(command: str, prog_name: str) -> None:
    pause_collection()
    from batchkit.cli.app import main_command

    main_command(command, prog_name, sys.argv[1:])


def awsbsub() -> None:
    _alias("sub", "awsbsub")


def awsbstat() -> None:
    _alias("stat", "awsbstat")


def awsbout() -> None:
    _alias("out", "awsbout")


def awsbkill() -> None:
    _alias("kill", "awsbkill")


def awsbqueues() -> None:
    _alias("queues", "awsbqueues")


def awsbhosts() -> None:
    _alias("hosts", "awsbhosts")

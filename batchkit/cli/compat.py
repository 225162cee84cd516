"""awsbatch-cli's console scripts, as thin aliases: `awsbsub …` ≡ `batchkit sub …`."""

from __future__ import annotations

import sys

from batchkit.cli.app import main_command


def _alias(command: str, prog_name: str) -> None:
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

"""Runs an attempt as a local process group: the executor for jobs without a container.

The argv runs exactly as given (no shell added) in the attempt's working directory, in a new
session and therefore a new process group, so that stopping it (timeout, termination, the main
node of an MNP job ending, or the main process exiting as a container's would) kills everything it
started. Output lines go to the log sink as they come. A process is identified by pid and start
time, so a later worker can kill it after a crash without hitting a recycled pid.

A running attempt and the output thread are `process_run`'s; reading /proc is `process_groups`'s.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from batchkit.providers.local.executor import (
    REASON_FILE_VARIABLE,
    LogSink,
    RunSpec,
    is_multinode,
    reason_file,
)
from batchkit.providers.local.private import private_dir
from batchkit.providers.local.process_groups import (
    group_members,
    kill_group,
    process_group,
    process_start_time,
)
from batchkit.providers.local.process_run import OutputPump, ProcessRun
from batchkit.shipped import folder

ENTRYPOINT = folder("dockerfiles") / "scripts" / "batchkit-entrypoint"
"""The preset images' entrypoint: a node of a multi-node job runs through it here too, for the
same rendezvous, hostfile and launch agent as in a container."""

ROOT_MPI = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
"""Open MPI refuses to run as root unless told. A process job runs as whoever runs the engine,
with no isolation to lose: when that is root, the job is root whatever mpirun thinks, so the
process executor lets it (the preset images run jobs as an unprivileged user instead)."""


def node_command(spec: RunSpec) -> tuple[list[str], dict[str, str]]:
    """The argv and environment a process attempt runs with: a node of a multi-node job goes
    through the entrypoint, with its hostfile in the attempt's directory."""
    env = dict(spec.env)
    if not is_multinode(env):
        return list(spec.argv), env
    env.setdefault("BATCHKIT_HOSTFILE", str(spec.workdir / "mpi-hostfile"))
    env[REASON_FILE_VARIABLE] = str(reason_file(spec.workdir))
    if os.geteuid() == 0:
        for name, value in ROOT_MPI.items():
            env.setdefault(name, value)
    return ["/bin/sh", str(ENTRYPOINT), *spec.argv], env


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ProcessExecutor:
    """`Executor` running each attempt as a local process group (see the module docstring)."""

    name = "process"

    def __init__(
        self,
        *,
        clock: Callable[[], int] = _now_ms,
        on_output_end: Callable[[], None] | None = None,
    ) -> None:
        """`on_output_end` is called (from a pump thread) when an attempt's output ends, which is
        almost always when it exits: the scheduler uses it to wake up at once."""
        self._clock = clock
        self._on_output_end = on_output_end
        self._pump = OutputPump()

    def start(self, spec: RunSpec, log: LogSink) -> ProcessRun:
        private_dir(spec.workdir)  # the job's own umask applies to what it makes inside
        argv, env = node_command(spec)
        process = subprocess.Popen(
            argv,
            cwd=spec.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        return ProcessRun(
            process, log, self._clock, self._on_output_end, spec.workdir, pump=self._pump
        )

    def reap_orphan(self, identity: Mapping[str, Any]) -> None:
        """Kill what is left of an attempt whose worker died, unless its pid was reused.

        The group is killed when its leader is still the recorded process (same start time), or
        when the leader is gone but members remain and no other process has taken the leader's pid
        (Linux does not hand out a pid that is still some group's id)."""
        pid = identity.get("pid")
        if not isinstance(pid, int) or pid <= 1:
            return
        pgid = identity.get("pgid", pid)
        recorded = identity.get("start_time")
        if not isinstance(pgid, int) or pgid <= 1:
            return
        current = process_start_time(pid)
        if current is not None:
            if recorded is not None and current != recorded:
                return  # the pid now belongs to someone else
            if process_group(pid) != pgid:
                return
            kill_group(pgid)
            return
        if group_members(pgid):
            kill_group(pgid)

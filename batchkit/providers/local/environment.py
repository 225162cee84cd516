"""The environment a local job sees, built exactly as contract C1 says.

A minimal host base (so programs find their tools and a locale), then the submit request's
environment (which carries PCLUSTER_JOB_S3_URL), then the variables AWS Batch sets itself. The
user's other variables never leak in, as on Batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from msgspec import Struct

from batchkit.providers.local.capacity import COMPUTE_ENVIRONMENT, QUEUE

HOST_BASE = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "SHELL")

NODE_ADDRESS_VARIABLE = "BATCHKIT_NODE_ADDRESS"
"""The local engine's node address (AWS nodes learn theirs from their network interface)."""

LOOPBACK_MPI = {
    # Every local node is on this host's loopback network, which Open MPI leaves out by default
    # (btl_tcp_if_exclude is 127.0.0.1/8): MPI's own traffic stays on it, never on another
    # interface. (Open MPI 4.1's MCA parameters; see `ompi_info --all`.)
    "OMPI_MCA_oob_tcp_if_include": "lo",
    "OMPI_MCA_btl_tcp_if_include": "lo",
    # Local nodes share one host name, which Open MPI's shared-memory transport (vader) takes
    # for one node: its ranks crash when nodes share a host. Messages go over loopback TCP.
    "OMPI_MCA_btl": "self,tcp",
}


def node_address(index: int) -> str:
    """Node n's address of its own on the loopback network, 127.0.0.(n+1): MPI sees distinct
    hosts and goes through the launcher exactly as between AWS Batch nodes."""
    number = index + 1
    return f"127.0.{number >> 8 & 0xFF}.{number & 0xFF}"


class Placement(Struct, frozen=True):
    """Where in its job one process sits: array child, MNP node, or neither."""

    job_id: str
    attempt: int
    array_index: int | None = None
    node_index: int | None = None
    num_nodes: int | None = None
    main_node: int = 0


def job_environment(
    host: Mapping[str, str],
    requested: Mapping[str, str],
    placement: Placement,
    *,
    stage_dir: Path | None = None,
    queue: str = QUEUE,
) -> dict[str, str]:
    """The complete environment of one attempt of one job (or MNP node)."""
    env = {name: host[name] for name in HOST_BASE if name in host}
    env.update(requested)
    env["AWS_BATCH_JOB_ID"] = placement.job_id
    env["AWS_BATCH_JQ_NAME"] = queue
    env["AWS_BATCH_CE_NAME"] = COMPUTE_ENVIRONMENT
    env["AWS_BATCH_JOB_ATTEMPT"] = str(placement.attempt)
    if placement.array_index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(placement.array_index)
    if placement.node_index is not None:
        env["AWS_BATCH_JOB_NODE_INDEX"] = str(placement.node_index)
        env["AWS_BATCH_JOB_NUM_NODES"] = str(placement.num_nodes or 1)
        env["AWS_BATCH_JOB_MAIN_NODE_INDEX"] = str(placement.main_node)
        env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = node_address(placement.main_node)
        env[NODE_ADDRESS_VARIABLE] = node_address(placement.node_index)
        for name, value in LOOPBACK_MPI.items():
            env.setdefault(name, value)
    if stage_dir is not None:
        env["BATCHKIT_JOB_STAGE_DIR"] = str(stage_dir)
    return env

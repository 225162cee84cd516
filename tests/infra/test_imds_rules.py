"""The launch template's IMDS rules, applied for real: in a network namespace of its own, with a
server on the metadata address, root still reaches it and any other user is refused.

Single-node Batch jobs on EC2 share the instance's network (the `host` mode), where the hop limit
does nothing; these rules are what keeps a job's unprivileged user away from the instance role.
Needs root, `ip` and `iptables` (Debian's iproute2 and iptables; CI has both through docker.io);
otherwise skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from batchkit.infra.compute import IMDS_ADDRESSES, block_imds_script, imds_owner_rules

IMDS = IMDS_ADDRESSES["iptables"].split("/")[0]
NOBODY = 65534
CONNECT = f"""
import socket, sys
try:
    socket.create_connection(("{IMDS}", 80), timeout=1).close()
except OSError as err:
    sys.exit(f"refused: {{err}}")
"""


def _can_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    for tool in ("ip", "iptables", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@pytest.fixture
def namespace() -> Iterator[str]:
    why = _can_make_namespaces()
    if why:
        pytest.skip(why)
    name = f"batchkit-imds-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    server: subprocess.Popen[bytes] | None = None
    try:
        run = ["ip", "netns", "exec", name]
        subprocess.run([*run, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([*run, "ip", "addr", "add", f"{IMDS}/32", "dev", "lo"], check=True)
        server = subprocess.Popen(
            [*run, sys.executable, "-m", "http.server", "80", "--bind", IMDS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if _connect(name, as_user=None).returncode == 0:
                break
        else:
            pytest.fail("the stand-in metadata server did not start")
        yield name
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        subprocess.run(["ip", "netns", "del", name], check=False)


def _connect(namespace: str, *, as_user: int | None) -> subprocess.CompletedProcess[str]:
    user = [] if as_user is None else ["setpriv", f"--reuid={as_user}", f"--regid={as_user}"]
    user += ["--clear-groups"] if as_user is not None else []
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *user, sys.executable, "-c", CONNECT],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_root_keeps_the_metadata_and_every_other_user_is_refused(namespace: str) -> None:
    for user in (NOBODY, 1000):  # open before the rules
        assert _connect(namespace, as_user=user).returncode == 0

    for rule in imds_owner_rules():
        if shutil.which(rule[0]) is None:
            continue  # ip6tables may be missing here; the IPv4 rule is the one tested
        subprocess.run(["ip", "netns", "exec", namespace, *rule], check=True)

    for user in (NOBODY, 1000):  # the connection fails (rejected, or dropped: 1 s)
        refused = _connect(namespace, as_user=user)
        assert refused.returncode != 0 and "refused:" in refused.stderr, refused.stderr
    assert _connect(namespace, as_user=None).returncode == 0, "root (the ECS agent) lost IMDS"


def test_the_user_data_carries_the_rules_and_survives_a_missing_tool() -> None:
    script = block_imds_script()

    for rule in imds_owner_rules():
        assert " ".join(rule) + " || echo " in script
    assert "${" not in script  # the user data goes through Fn::Sub

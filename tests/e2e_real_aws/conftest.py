"""The real-AWS tier: the installed `batchkit` against an existing cluster in an AWS account.

Opt-in only. The tests run when `BATCHKIT_TEST_AWS_CLUSTER` names a cluster `batchkit -c` can
open and real credentials resolve; otherwise every test skips and says why. Guards so that they
never run by accident:

* nothing is asked of AWS (not even the credential chain) unless the variable is set;
* `CI` set skips them (unless `BATCHKIT_TEST_AWS_ALLOW_CI=1`): the project's CI has no account;
* any `AWS_ENDPOINT_URL*` variable skips them (a moto server, most likely);
* the account must not be moto's `123456789012` (asked of STS with the real environment).

The root conftest replaces the environment of every test with fake credentials and a private
HOME; the commands here run with the environment pytest was started with, captured when this
file is imported (at collection, before any fixture), so that the user's profile, region and
`~/.batchkit/config.yaml` apply as they would in a terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTING_ENVIRONMENT = dict(os.environ)
CLUSTER_VARIABLE = "BATCHKIT_TEST_AWS_CLUSTER"
TIMEOUT_VARIABLE = "BATCHKIT_TEST_AWS_TIMEOUT"
MOTO_ACCOUNT = "123456789012"

_IDENTITY = """
import botocore.session
identity = botocore.session.Session().create_client("sts").get_caller_identity()
print(identity["Account"])
"""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class RealAws:
    cluster: str
    account: str
    timeout: float
    environment: dict[str, str]

    def batchkit(self, *args: str, timeout: float | None = None) -> Result:
        """Run the installed `batchkit` with the starting environment, `-c` set to the cluster."""
        exe = Path(sys.executable).parent / "batchkit"
        command, *rest = args
        proc = subprocess.run(
            [str(exe), command, "-c", self.cluster, *rest],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout or self.timeout,
            env=self.environment,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


def why_not_real_aws(environment: dict[str, str]) -> str | None:
    """Why the real-AWS tests cannot run in this environment (None: they can try)."""
    if not environment.get(CLUSTER_VARIABLE):
        return (
            f"real AWS tests are opt-in: set {CLUSTER_VARIABLE}=<an existing batchkit or "
            "ParallelCluster awsbatch cluster> with real credentials (see docs/aws.md)"
        )
    if environment.get("CI") and environment.get("BATCHKIT_TEST_AWS_ALLOW_CI") != "1":
        return "CI is set: real AWS tests do not run in CI (BATCHKIT_TEST_AWS_ALLOW_CI=1 to allow)"
    endpoints = sorted(name for name in environment if name.startswith("AWS_ENDPOINT_URL"))
    if endpoints:
        return f"{', '.join(endpoints)} is set (a moto server?): unset it to test real AWS"
    return None


def account_of(environment: dict[str, str]) -> tuple[str | None, str]:
    """The account the credentials of `environment` belong to, or None and why not."""
    proc = subprocess.run(
        [sys.executable, "-c", _IDENTITY],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"no usable AWS credentials ({last})"
    return proc.stdout.strip(), ""


@pytest.fixture(scope="session")
def real_aws() -> RealAws:
    """The cluster under test, or a skip that says what is missing."""
    environment = dict(STARTING_ENVIRONMENT)
    reason = why_not_real_aws(environment)
    if reason:
        pytest.skip(reason)
    account, why = account_of(environment)
    if account is None:
        pytest.skip(why)
    if account == MOTO_ACCOUNT:
        pytest.skip(f"the credentials answer as moto's account {MOTO_ACCOUNT}: not real AWS")
    return RealAws(
        cluster=environment[CLUSTER_VARIABLE],
        account=account,
        timeout=float(environment.get(TIMEOUT_VARIABLE) or 1800),
        environment=environment,
    )

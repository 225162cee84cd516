"""Fixtures every test gets: no real AWS credentials, no real ~/.batchkit, no real HOME, and no
local engine worker outliving the test.

Shared fixtures live in `tests/fixtures/*.py` and are registered here as plugins.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins: list[str] = [
    "tests.fixtures.moto_server",
    "tests.fixtures.docker_engine",
    "tests.fixtures.local_engine",
    "tests.fixtures.moto_docker",
    "tests.fixtures.fault_proxy",
    "tests.fixtures.aws_rules_check",
]

_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fake AWS credentials and region, and a private HOME and BATCHKIT_HOME for every test."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    batchkit_home = tmp_path / "batchkit-home"
    monkeypatch.setenv("BATCHKIT_HOME", str(batchkit_home))
    yield batchkit_home
    # A job submitted by the test (through the API, the CLI, a notebook) started a background
    # worker that would otherwise idle on for a minute, or keep running a job's processes.
    if (batchkit_home / "worker.lock").exists():
        from tests.fixtures.local_engine import stop_workers

        stop_workers(batchkit_home)

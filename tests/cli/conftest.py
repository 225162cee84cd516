"""The CLI under test: the real Typer app, with a fake provider injected through `CliEnv`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from typer.testing import CliRunner, Result

from batchkit.api import Cluster
from batchkit.cli.app import app
from batchkit.cli.context import CliEnv, StdinKind
from tests.jobs.fakes import FakeProvider


@dataclass
class Cli:
    fake: FakeProvider = field(default_factory=FakeProvider)
    environ: dict[str, str] = field(default_factory=dict)
    connected: list[str | None] = field(default_factory=list)
    aws_settings: list[tuple[str | None, str | None]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def run(
        self,
        *args: str,
        stdin: bytes = b"",
        stdin_kind: StdinKind = "none",
        environ: Mapping[str, str] | None = None,
    ) -> Result:
        env = self.env(stdin=stdin, stdin_kind=stdin_kind, environ=environ)
        return CliRunner().invoke(app, list(args), obj=env)

    def env(
        self,
        *,
        stdin: bytes = b"",
        stdin_kind: StdinKind = "none",
        environ: Mapping[str, str] | None = None,
    ) -> CliEnv:
        cluster = Cluster(
            self.fake, sleep=self.sleeps.append, clock=lambda: 1700000000.0, monotonic=lambda: 0.0
        )

        def connect(
            name: str | None, *, profile: str | None = None, region: str | None = None
        ) -> Cluster:
            self.connected.append(name)
            self.aws_settings.append((profile, region))
            return cluster

        return CliEnv(
            connect=connect,
            environ=dict(environ if environ is not None else self.environ),
            stdin_kind=lambda: stdin_kind,
            read_stdin=lambda: stdin,
            stdin_has_data=lambda: bool(stdin),
        )

    def run_as(self, prog_name: str, *args: str) -> Result:
        """Run a command under the program name of one of awsbatch-cli's aliases (`awsbstat`)."""
        return CliRunner().invoke(app, list(args), obj=self.env(), prog_name=prog_name)


@pytest.fixture
def cli() -> Cli:
    return Cli()

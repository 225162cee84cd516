"""`batchkit image build|list` through Typer's CliRunner, with builders injected.

The builders are real drivers over fakes (tests/images/fakes.py) or over moto; the local engine
path is exercised without Docker through --dry-run and a fake docker client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from typer.testing import CliRunner

from batchkit.cli.image import ImageCliEnv, app
from batchkit.images.build import BuildTarget, CloudImageBuilder
from batchkit.images.local import LocalImageBuilder
from batchkit.images.pipeline import CloudRequest
from batchkit.infra.buildspec import DIGEST_MARKER
from batchkit.providers.images import BuildState, BuildStatus
from tests.images.fakes import Clock, FakeBuilds, FakeLogs, FakeObjects, FakeRegistry

REPO_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/batchkit-demo"
DIGEST = "sha256:" + "e" * 64
TARGET = BuildTarget("demo", "batchkit-demo", REPO_URI, "demo-images", "bucket", "bk/images")


class Rig:
    """A cloud builder over fakes, and what the command asked for."""

    def __init__(self, statuses: list[BuildStatus] | None = None) -> None:
        self.registry = FakeRegistry()
        self.builds = FakeBuilds(statuses or [BuildStatus("p:1", BuildState.SUCCEEDED)])
        self.logs = FakeLogs()
        self.objects = FakeObjects()
        self.clock = Clock()
        self.requests: list[CloudRequest] = []

    def cloud(self, request: CloudRequest) -> CloudImageBuilder:
        self.requests.append(request)
        return CloudImageBuilder(
            TARGET,
            registry=self.registry,
            builds=self.builds,
            objects=self.objects,
            logs=self.logs,
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def env(self) -> ImageCliEnv:
        return ImageCliEnv(cloud=self.cloud, local=_no_docker)


def _no_docker() -> LocalImageBuilder:
    raise AssertionError("the local engine must not be touched")


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "My Project"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM x\nCOPY run.sh /\n")
    (root / "run.sh").write_text("echo hi\n")
    return root


def invoke(rig: Rig | ImageCliEnv, *args: str) -> Any:
    env = rig.env() if isinstance(rig, Rig) else rig
    return CliRunner().invoke(app, list(args), obj=env)


def test_dry_run_prints_the_content_tag_and_the_plan_and_calls_nothing(context: Path) -> None:
    rig = Rig()
    result = invoke(rig, "build", str(context), "-c", "demo", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "name:         my-project" in result.stdout
    tag_line = next(line for line in result.stdout.splitlines() if line.startswith("image:"))
    assert tag_line.split()[-1].startswith(f"{REPO_URI}:my-project-")
    assert "start CodeBuild project demo-images" in result.stdout
    assert rig.registry.calls == [] and rig.builds.started == [] and rig.objects.store == {}

    as_json = invoke(rig, "build", str(context), "-c", "demo", "--dry-run", "--json")
    plan = json.loads(as_json.stdout)
    assert plan["dryRun"] is True and plan["image"] == tag_line.split()[-1]
    assert plan["files"] == 2 and len(plan["contentHash"]) == 16
    assert rig.requests[0].cluster == "demo"


def test_up_to_date_is_one_ecr_call_and_prints_image_and_digest(context: Path) -> None:
    rig = Rig()
    first = invoke(rig, "build", str(context), "-c", "demo", "--dry-run", "--json")
    tag = json.loads(first.stdout)["tag"]
    rig.registry.tags[tag] = DIGEST
    result = invoke(rig, "build", str(context), "-c", "demo")
    assert result.exit_code == 0, result.output
    assert "is up to date: nothing to build" in result.stderr
    assert result.stdout == f"image:  {REPO_URI}:{tag}\ndigest: {REPO_URI}@{DIGEST}\n"
    assert rig.registry.calls == [("batchkit-demo", tag)]
    assert rig.builds.started == []

    as_json = json.loads(invoke(rig, "build", str(context), "-c", "demo", "--json").stdout)
    assert as_json["upToDate"] is True and as_json["digest"] == f"{REPO_URI}@{DIGEST}"


def test_a_build_streams_its_log_to_stderr_and_prints_the_result(context: Path) -> None:
    rig = Rig(
        [
            BuildStatus(
                "p:1", BuildState.IN_PROGRESS, phase="BUILD", log_group="g", log_stream="s"
            ),
            BuildStatus(
                "p:1", BuildState.SUCCEEDED, phase="COMPLETED", log_group="g", log_stream="s"
            ),
        ]
    )
    rig.logs.lines = ["Step 1/2 : FROM x\n", f"{DIGEST_MARKER}{REPO_URI}@{DIGEST}\n"]
    result = invoke(
        rig, "build", str(context), "-c", "demo", "--name", "tool", "--build-arg", "A=1 2"
    )
    assert result.exit_code == 0, result.output
    assert "  | Step 1/2 : FROM x" in result.stderr
    assert "phase BUILD" in result.stderr and "started CodeBuild build p:1" in result.stderr
    assert "uploaded the build context" in result.stderr
    assert result.stdout.endswith(f"digest: {REPO_URI}@{DIGEST}\n")
    assert result.stdout.startswith(f"image:  {REPO_URI}:tool-")
    buildspec = yaml.safe_load(str(rig.builds.started[0]["buildspec"]))
    assert "--build-arg 'A=1 2'" in buildspec["phases"]["build"]["commands"][0]

    quiet = Rig(rig.builds.statuses)
    quiet.logs.lines = rig.logs.lines
    result = invoke(quiet, "build", str(context), "-c", "demo", "-q", "--name", "tool2")
    assert result.exit_code == 0 and "  | Step" not in result.stderr


def test_a_failed_build_exits_1_with_the_reason_and_a_hint(context: Path) -> None:
    rig = Rig(
        [
            BuildStatus(
                "p:1",
                BuildState.FAILED,
                log_group="g",
                log_stream="s",
                console_url="https://console/p:1",
                failure="BUILD: exit status 100",
            )
        ]
    )
    rig.logs.lines = ["E: Unable to locate package nope\n"]
    result = invoke(rig, "build", str(context), "-c", "demo", "-q")
    assert result.exit_code == 1
    assert "error: image build p:1 ended FAILED in BUILD: exit status 100" in result.stderr
    assert "hint: " in result.stderr and "https://console/p:1" in result.stderr
    assert "  | E: Unable to locate package nope" in result.stderr  # the tail, even with -q
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "-c", "demo"], "either a build context directory or --preset"),
        (["build", "CTX", "--preset", "debian", "-c", "demo"], "either a build context"),
        (["build", "--preset", "centos", "-c", "demo"], "unknown preset 'centos'"),
        (["build", "CTX", "--build-arg", "novalue", "-c", "demo"], "invalid --build-arg"),
        (["build", "CTX", "--name", "Bad Name", "-c", "demo"], "invalid image name"),
        (["build", "CTX", "--local", "--repository", "r"], "apply to AWS clusters only"),
        (["build", "CTX", "-f", "Nope", "-c", "demo"], "no Nope in build context"),
        (["build", "--preset", "debian", "-f", "x", "-c", "demo"], "--file cannot be used"),
    ],
)
def test_usage_errors_exit_2_with_a_hint(context: Path, args: list[str], message: str) -> None:
    rig = Rig()
    result = invoke(rig, *[str(context) if a == "CTX" else a for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "hint: " in result.stderr
    assert rig.builds.started == []


def test_preset_dry_run_on_the_local_engine_needs_no_docker(context: Path) -> None:
    result = invoke(
        Rig(),
        "build",
        "--preset",
        "debian",
        "--local",
        "--base-image",
        "batchkit-base/debian:bookworm",
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["image"] == f"batchkit/debian:{plan['contentHash']}"
    assert plan["dockerfile"] == "debian/Dockerfile"
    assert plan["buildArgs"] == {"BASE_IMAGE": "batchkit-base/debian:bookworm"}
    other = json.loads(
        invoke(Rig(), "build", "--preset", "debian", "--local", "--dry-run", "--json").stdout
    )
    assert other["contentHash"] != plan["contentHash"]  # the base image is part of the recipe


def test_without_a_cluster_the_local_engine_is_used(context: Path) -> None:
    result = invoke(Rig(), "build", str(context), "--dry-run")
    assert result.exit_code == 0
    assert "image:        batchkit/my-project:" in result.stdout


class FakeImage:
    def __init__(self, tags: list[str], created: str, size: int) -> None:
        self.tags = tags
        self.id = "sha256:" + "1" * 64
        self.attrs = {"Created": created, "Size": size}


class FakeDocker:
    class images:  # mimics docker.DockerClient.images
        filters: list[dict[str, str]] = []

        @classmethod
        def list(cls, filters: dict[str, str]) -> list[FakeImage]:
            cls.filters.append(filters)
            return [
                FakeImage(
                    ["batchkit/debian:latest", "batchkit/debian:abc"],
                    "2026-01-02T03:04:05.123Z",
                    2_500_000,
                )
            ]


def test_list_local_images(context: Path) -> None:
    env = ImageCliEnv(cloud=Rig().cloud, local=lambda: LocalImageBuilder(FakeDocker()))
    result = invoke(env, "list", "--local", "--json")
    assert result.exit_code == 0, result.output
    [image] = json.loads(result.stdout)
    assert image["repository"] == "batchkit/debian"
    assert image["tags"] == ["abc", "latest"]
    assert image["pushedAt"].startswith("2026-01-02T03:04:05")
    table = invoke(env, "list", "--local").stdout
    assert "batchkit/debian" in table and "2.4 MiB" in table


def test_list_cloud_images_against_moto(context: Path) -> None:
    with mock_aws():
        ecr = boto3.client("ecr")
        ecr.create_repository(repositoryName="batchkit-demo")
        ecr.put_image(
            repositoryName="batchkit-demo",
            imageManifest=json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "layers": [],
                }
            ),
            imageTag="debian-0123456789abcdef",
        )
        from batchkit.providers.aws.ecr import EcrGateway
        from batchkit.providers.aws.session import AwsSession

        rig = Rig()
        rig.registry = EcrGateway(AwsSession(region="us-east-1").api("ecr"))  # type: ignore[assignment]
        result = invoke(rig, "list", "-c", "demo")
        assert result.exit_code == 0, result.output
        assert "debian-0123456789abcdef" in result.stdout
        assert result.stdout.splitlines()[0].split() == [
            "repository",
            "tags",
            "pushedAt",
            "size",
            "digest",
        ]
        empty = Rig()
        assert invoke(empty, "list", "-c", "demo").stdout == "No images\n"
        assert json.loads(invoke(empty, "list", "-c", "demo", "--json").stdout) == []


def test_the_image_commands_are_reachable_from_the_batchkit_app() -> None:
    from batchkit.cli.app import app as batchkit_app

    result = CliRunner().invoke(batchkit_app, ["image", "build", "--help"])
    assert result.exit_code == 0
    assert "--preset" in result.stdout and "--dry-run" in result.stdout
    assert "--local" in result.stdout and "--json" in result.stdout
    # --profile/--region default to the cluster's settings, as for the job commands.
    assert "the cluster's in config.yaml" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--no-cache", "--platform", "linux/arm64"],
        ["--build-arg", "A=$(id) 'x'", "--base-image", "debian:12", "--name", "tool"],
    ],
)
def test_buildspec_prints_what_build_sends_for_the_same_flags(
    context: Path, flags: list[str]
) -> None:
    rig = Rig()
    built = invoke(rig, "build", str(context), "-c", "demo", *flags)
    assert built.exit_code == 0, built.output
    printed = invoke(rig, "buildspec", str(context), *flags)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == rig.builds.started[0]["buildspec"]
    assert len(rig.requests) == 1  # buildspec asked nothing of the cloud
    as_json = json.loads(invoke(rig, "buildspec", str(context), *flags, "--json").stdout)
    assert as_json["buildspec"] == printed.stdout
    assert as_json["cache"] is ("--no-cache" not in flags)
    # the variables the buildspec reads are the ones each build sets
    assert set(as_json["environment"]) == set(rig.builds.started[0]["environment"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["buildspec"], "give either a build context directory or --preset"),
        (["buildspec", "CTX", "-f", "missing/Dockerfile"], "no missing/Dockerfile in build"),
        (["buildspec", "--preset", "alpine"], "unknown preset 'alpine'"),
        (["buildspec", "--preset", "debian", "--name", "Bad"], "invalid image name 'Bad'"),
    ],
)
def test_buildspec_usage_errors_exit_2(context: Path, args: list[str], message: str) -> None:
    result = invoke(Rig(), *[str(context) if a == "CTX" else a for a in args])
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in result.stderr and "hint: " in result.stderr


def test_ctrl_c_during_a_build_exits_130_and_says_the_build_goes_on(context: Path) -> None:
    class Interrupting(FakeBuilds):
        def get_build(self, build_id: str) -> BuildStatus:
            raise KeyboardInterrupt

    rig = Rig()
    rig.builds = Interrupting([])
    result = invoke(rig, "build", str(context), "-c", "demo")
    assert result.exit_code == 130
    assert "build p:1 goes on in CodeBuild" in result.stderr
    assert "aws codebuild stop-build --id p:1" in result.stderr


def run_batchkit(tmp_path: Path, *args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [str(Path(sys.executable).parent / "batchkit"), "image", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def test_the_installed_cli_against_a_moto_server(moto_endpoint: str, context: Path) -> None:
    """End to end: the `batchkit` console script, AWS_ENDPOINT_URL pointing at moto."""
    from tests.images.moto_cluster import create_image_cluster, push_tag

    uri = create_image_cluster("demo", endpoint_url=moto_endpoint)
    tmp = context.parent

    dry = run_batchkit(tmp, "build", str(context), "-c", "demo", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["image"] == f"{uri}:{plan['tag']}"

    built = run_batchkit(tmp, "build", str(context), "-c", "demo")
    assert built.returncode == 0, built.stderr
    assert "started CodeBuild build demo-images:" in built.stderr
    assert built.stdout == f"image:  {uri}:{plan['tag']}\ndigest: -\n"  # moto pushes nothing

    push_tag(plan["tag"], endpoint_url=moto_endpoint)
    again = run_batchkit(tmp, "build", str(context), "-c", "demo", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["upToDate"] is True
    assert "up to date" in again.stderr

    listed = run_batchkit(tmp, "list", "-c", "demo")
    assert listed.returncode == 0 and plan["tag"] in listed.stdout

    missing = run_batchkit(tmp, "build", str(context), "-c", "nope")
    assert missing.returncode == 3
    assert "error: no cluster named 'nope'" in missing.stderr and "hint:" in missing.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["image", "build", "--bogus"], "error: No such option: --bogus"),
        (["cluster", "delete"], "error: Missing argument 'NAME'."),
    ],
)
def test_the_cluster_and_image_commands_report_flag_errors_like_every_command(
    args: list[str], said: str
) -> None:
    """Their parse errors read `error:`/`hint:` with exit 2, not Click's Usage block."""
    from batchkit.cli.app import app as batchkit_app

    result = CliRunner().invoke(batchkit_app, args)
    assert result.exit_code == 2
    assert said in result.stderr
    assert f"hint: see `batchkit {' '.join(args[:2])} --help`" in result.stderr
    assert "Usage:" not in result.stderr

"""Image names and the wiring from a cluster's stack outputs to a builder (moto in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from batchkit.cli.image import ImageCliEnv, app
from batchkit.errors import ClusterNotFoundError, UsageError
from batchkit.images.build import CloudImageBuilder
from batchkit.images.pipeline import CloudRequest, TargetOverrides, open_cloud_builder
from batchkit.images.plan import BuildDone, ImageRecipe
from batchkit.images.resolve import target_from_outputs
from batchkit.providers.images import resolve_image
from tests.fixtures.moto_server import SIMPLE_CONFIG
from tests.images.moto_cluster import create_image_cluster

URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/batchkit-demo"


@pytest.mark.parametrize(
    ("image", "repository_uri", "expected"),
    [
        ("debian", URI, f"{URI}:debian"),
        ("debian:0123456789abcdef", URI, f"{URI}:debian-0123456789abcdef"),
        ("debian", None, "batchkit/debian:latest"),
        ("myimage:v2", None, "batchkit/myimage:v2"),
        (
            "public.ecr.aws/docker/library/python:3.12",
            URI,
            "public.ecr.aws/docker/library/python:3.12",
        ),
        ("batchkit-base/busybox:latest", None, "batchkit-base/busybox:latest"),
        ("python@sha256:" + "a" * 64, URI, "python@sha256:" + "a" * 64),
    ],
)
def test_resolve_image(image: str, repository_uri: str | None, expected: str) -> None:
    assert resolve_image(image, repository_uri) == expected


@pytest.mark.parametrize("bad", ["", "Debian", "debian:-x", "debian:a b", "x" * 70])
def test_resolve_image_rejects_bad_names(bad: str) -> None:
    with pytest.raises(UsageError):
        resolve_image(bad, URI)


def test_target_from_outputs_needs_the_image_outputs() -> None:
    target = target_from_outputs(
        "demo",
        {
            "EcrRepositoryName": "batchkit-demo",
            "EcrRepositoryUri": URI,
            "CodeBuildProjectName": "demo-images",
            "BucketName": "bk-bucket",
        },
        {"ArtifactS3RootDirectory": "/batchkit/demo/"},
    )
    assert target.context_prefix == "batchkit/demo/images"
    assert (target.bucket, target.project) == ("bk-bucket", "demo-images")
    with pytest.raises(UsageError, match="CodeBuildProjectName, BucketName") as info:
        target_from_outputs("pc", {"EcrRepositoryName": "r", "EcrRepositoryUri": URI})
    assert info.value.hint and "--project" in info.value.hint
    no_builds = {
        "EcrRepositoryName": "r",
        "EcrRepositoryUri": URI,
        "BucketName": "b",
        "CodeBuildProjectName": "NONE",  # the stack was made with image builds disabled
    }
    with pytest.raises(UsageError, match="without image builds") as info:
        target_from_outputs("demo", no_builds)
    assert info.value.hint and "--local" in info.value.hint


@pytest.fixture
def stack() -> Iterator[str]:
    """A batchkit-like cluster `demo`: its stack outputs, repository, bucket, project (moto)."""
    with mock_aws(config=SIMPLE_CONFIG):
        yield create_image_cluster("demo")


def test_the_builder_comes_from_the_stack_outputs(stack: str, tmp_path: Path) -> None:
    builder = open_cloud_builder(CloudRequest("demo"))
    assert builder.target.repository_uri == stack
    assert builder.target.project == "demo-images"
    assert builder.target.bucket == "bk-bucket"
    assert builder.target.context_prefix == "batchkit/demo/images"

    overridden = open_cloud_builder(
        CloudRequest("demo", overrides=TargetOverrides(project="other", prefix="ctx"))
    )
    assert overridden.target.project == "other" and overridden.target.context_prefix == "ctx"


def test_overrides_that_name_everything_read_no_stack(stack: str) -> None:
    builder = open_cloud_builder(
        CloudRequest(
            "no-such-stack",
            overrides=TargetOverrides(repository="batchkit-demo", project="p", bucket="b"),
        )
    )
    assert builder.target.repository_uri == stack  # account and region from STS and the session


def test_a_missing_cluster_says_how_to_name_the_resources(stack: str) -> None:
    with pytest.raises(ClusterNotFoundError) as info:
        open_cloud_builder(CloudRequest("nope"))
    assert info.value.hint and "--repository" in info.value.hint


def test_the_local_cluster_has_no_codebuild() -> None:
    with pytest.raises(UsageError, match="no CodeBuild") as info:
        open_cloud_builder(CloudRequest("local"))
    assert info.value.hint and "--local" in info.value.hint


def test_image_build_on_a_cluster_end_to_end_in_moto(stack: str, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    waits: list[float] = []  # the build polls with this sleep, not a real one

    def cloud(request: CloudRequest) -> CloudImageBuilder:
        return open_cloud_builder(request, sleep=waits.append)

    runner = CliRunner()
    built = runner.invoke(
        app,
        ["build", str(tmp_path / "ctx"), "-c", "demo", "--json"],
        obj=ImageCliEnv(cloud=cloud),
    )
    assert built.exit_code == 0, built.output
    result = json.loads(built.stdout)
    assert result["image"].startswith(f"{stack}:ctx-") and result["upToDate"] is False
    assert result["buildId"].startswith("demo-images:")
    keys = boto3.client("s3").list_objects_v2(Bucket="bk-bucket")["Contents"]
    assert [k["Key"] for k in keys] == [f"batchkit/demo/images/ctx-{result['contentHash']}.tar"]

    listed = runner.invoke(app, ["list", "-c", "demo", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []  # moto builds push nothing

    assert waits  # moto's build was IN_PROGRESS once: the CLI polled
    builder = cloud(CloudRequest("demo"))
    plan = builder.plan(ImageRecipe("ctx", tmp_path / "ctx"))
    assert plan.content_hash == result["contentHash"]
    assert isinstance(list(builder.build(plan))[-1], BuildDone)

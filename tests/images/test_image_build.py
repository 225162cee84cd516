"""The CodeBuild image driver: up-to-date check, upload, build, live log, wait, failure.

Progress and failure go through the driver's seams (fake registry, builds, logs, clock); the
wiring against real gateways is checked against moto at the end.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchkit.errors import ExitCode, UsageError
from batchkit.images.build import BuildTarget, CloudImageBuilder
from batchkit.images.plan import (
    BuildDone,
    BuildEvent,
    BuildLogLine,
    BuildPhase,
    BuildStarted,
    ContextUploaded,
    ImageBuildFailedError,
    ImageRecipe,
)
from batchkit.infra.buildspec import DIGEST_MARKER
from batchkit.providers.images import BuildState, BuildStatus
from tests.images.fakes import Clock, FakeBuilds, FakeLogs, FakeObjects, FakeRegistry

REPO_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/batchkit-demo"
TARGET = BuildTarget(
    cluster="demo",
    repository_name="batchkit-demo",
    repository_uri=REPO_URI,
    project="batchkit-demo-images",
    bucket="bucket",
    context_prefix="batchkit/demo/images",
)
DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def recipe(tmp_path: Path) -> ImageRecipe:
    context = tmp_path / "ctx"
    (context / "app").mkdir(parents=True)
    (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app /app\n")
    (context / "app" / "run.sh").write_text("echo hi\n")
    return ImageRecipe("myimage", context, build_args={"BASE_IMAGE": "debian"})


def running(phase: str, logs: bool = True) -> BuildStatus:
    return BuildStatus(
        "p:1",
        BuildState.IN_PROGRESS,
        phase=phase,
        log_group="/aws/codebuild/p" if logs else None,
        log_stream="1" if logs else None,
    )


def builder(
    registry: FakeRegistry,
    builds: FakeBuilds,
    logs: FakeLogs | None,
    clock: Clock,
    objects: FakeObjects | None = None,
    timeout: float = 3600,
) -> CloudImageBuilder:
    return CloudImageBuilder(
        TARGET,
        registry=registry,
        builds=builds,
        objects=objects or FakeObjects(),
        logs=logs,
        clock=clock,
        sleep=clock.sleep,
        poll_interval=5,
        timeout=timeout,
    )


def test_plan_names_the_image_by_content_and_touches_nothing(recipe: ImageRecipe) -> None:
    registry = FakeRegistry()
    plan = builder(registry, FakeBuilds([]), None, Clock()).plan(recipe)
    assert plan.tag == f"myimage-{plan.content_hash}" and len(plan.content_hash) == 16
    assert plan.image == f"{REPO_URI}:myimage-{plan.content_hash}"
    assert plan.alias == "myimage"
    assert registry.calls == []
    again = builder(registry, FakeBuilds([]), None, Clock()).plan(recipe)
    assert again.tag == plan.tag


def test_an_image_ecr_already_has_is_not_rebuilt_after_one_ecr_call(
    recipe: ImageRecipe,
) -> None:
    clock = Clock()
    probe = builder(FakeRegistry(), FakeBuilds([]), None, clock).plan(recipe)
    registry = FakeRegistry({probe.tag: DIGEST})
    builds = FakeBuilds([])
    objects = FakeObjects()
    events = list(builder(registry, builds, None, clock, objects).build(probe))
    assert events == [
        BuildDone(
            events[-1].result  # type: ignore[union-attr]
        )
    ]
    result = events[0].result  # type: ignore[union-attr]
    assert result.up_to_date and result.digest == f"{REPO_URI}@{DIGEST}"
    assert registry.calls == [("batchkit-demo", probe.tag)]
    assert builds.started == [] and objects.store == {}


def test_a_build_uploads_starts_streams_the_log_live_and_reports_the_digest(
    recipe: ImageRecipe,
) -> None:
    clock = Clock()
    logs = FakeLogs()
    statuses = [running("PROVISIONING", logs=False), running("PRE_BUILD"), running("BUILD")]
    done = BuildStatus(
        "p:1", BuildState.SUCCEEDED, phase="COMPLETED", log_group="g", log_stream="1"
    )
    builds = FakeBuilds([*statuses, done])
    objects = FakeObjects()
    registry = FakeRegistry()
    drv = builder(registry, builds, logs, clock, objects)
    plan = drv.plan(recipe)

    events: list[BuildEvent] = []
    for event in drv.build(plan):
        events.append(event)
        # the log grows while the build runs: lines appear as they are written
        if isinstance(event, BuildPhase) and event.phase == "PRE_BUILD":
            logs.lines += ["[Container] Running command docker login\n", "Login Succeeded\n"]
        if isinstance(event, BuildPhase) and event.phase == "BUILD":
            logs.lines += ["Step 1/3 : FROM debian\n", f"{DIGEST_MARKER}{REPO_URI}@{DIGEST}\n"]

    uploaded = next(e for e in events if isinstance(e, ContextUploaded))
    key = f"batchkit/demo/images/{plan.tag}.tar"
    assert uploaded.url == f"s3://bucket/{key}"
    with tarfile.open(fileobj=io.BytesIO(objects.store[key])) as archive:
        assert sorted(archive.getnames()) == ["Dockerfile", "app", "app/run.sh"]

    [start] = builds.started
    assert start["project"] == "batchkit-demo-images"
    assert start["environment"] == {
        "BATCHKIT_IMAGE_REPOSITORY": REPO_URI,
        "BATCHKIT_IMAGE_TAG": plan.tag,
        "BATCHKIT_IMAGE_ALIAS": "myimage",
        "BATCHKIT_CONTEXT_URL": uploaded.url,
    }
    assert "--build-arg BASE_IMAGE=debian" in str(start["buildspec"])

    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["ContextUploaded", "BuildStarted"]
    phases = [e.phase for e in events if isinstance(e, BuildPhase)]
    assert phases == ["SUBMITTED", "PROVISIONING", "PRE_BUILD", "BUILD", "COMPLETED"]
    lines = [e.message for e in events if isinstance(e, BuildLogLine)]
    assert lines == [
        "[Container] Running command docker login",
        "Login Succeeded",
        "Step 1/3 : FROM debian",
        f"{DIGEST_MARKER}{REPO_URI}@{DIGEST}",
    ]
    # the login lines came before the BUILD phase was announced: the log is live
    assert events.index(BuildLogLine("Login Succeeded")) < events.index(BuildPhase("BUILD"))
    final = events[-1]
    assert isinstance(final, BuildDone)
    assert final.result.digest == f"{REPO_URI}@{DIGEST}"
    assert final.result.image == plan.image and not final.result.up_to_date
    assert final.result.build_id == "p:1"
    assert clock.sleeps == [5, 5, 5, 5]  # polled with the injected sleep, never for real
    assert registry.calls == [("batchkit-demo", plan.tag)]  # digest came from the log


def test_without_a_digest_line_the_digest_is_asked_of_ecr(recipe: ImageRecipe) -> None:
    clock = Clock()
    registry = FakeRegistry()
    builds = FakeBuilds([BuildStatus("p:1", BuildState.SUCCEEDED)])
    drv = builder(registry, builds, FakeLogs(), clock)
    plan = drv.plan(recipe)
    events = drv.build(plan)
    next(events)  # ContextUploaded
    registry.tags[plan.tag] = DIGEST  # pushed by the build
    final = list(events)[-1]
    assert isinstance(final, BuildDone) and final.result.digest == f"{REPO_URI}@{DIGEST}"


def test_a_failed_build_raises_with_the_phase_the_log_tail_and_the_console_link(
    recipe: ImageRecipe,
) -> None:
    clock = Clock()
    logs = FakeLogs()
    logs.lines = [f"line {i}\n" for i in range(30)] + ["E: Unable to locate package nope\n"]
    failed = BuildStatus(
        "p:1",
        BuildState.FAILED,
        phase="COMPLETED",
        log_group="g",
        log_stream="1",
        console_url="https://console/p:1",
        failure="BUILD: Error while executing command: docker build ... Reason: exit status 100",
    )
    drv = builder(FakeRegistry(), FakeBuilds([running("BUILD"), failed]), logs, clock)
    with pytest.raises(ImageBuildFailedError) as info:
        list(drv.build(drv.plan(recipe)))
    err = info.value
    assert err.exit_code is ExitCode.JOB_FAILED
    assert "image build p:1 ended FAILED in BUILD: Error while executing" in err.message
    assert err.hint and "https://console/p:1" in err.hint
    assert err.build_id == "p:1"
    assert err.log_tail[-1] == "E: Unable to locate package nope"
    assert len(err.log_tail) == 20


def test_a_build_that_outlives_the_timeout_is_stopped(recipe: ImageRecipe) -> None:
    clock = Clock()
    builds = FakeBuilds([running("BUILD")])
    drv = builder(FakeRegistry(), builds, FakeLogs(), clock, timeout=60)
    with pytest.raises(ImageBuildFailedError, match="did not finish within 60 s") as info:
        list(drv.build(drv.plan(recipe)))
    assert builds.stopped == ["p:1"]
    assert info.value.hint and "--timeout" in info.value.hint
    assert clock.now == 60


def test_a_context_edited_between_plan_and_build_is_refused(recipe: ImageRecipe) -> None:
    drv = builder(FakeRegistry(), FakeBuilds([]), None, Clock())
    plan = drv.plan(recipe)
    (recipe.context_dir / "app" / "run.sh").write_text("echo changed!!\n")
    with pytest.raises(UsageError, match="changed"):
        list(drv.build(plan))


def test_invalid_image_names_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    drv = builder(FakeRegistry(), FakeBuilds([]), None, Clock())
    for bad in ("My Image", "-x", "", "a/b", "x" * 65):
        with pytest.raises(UsageError, match="invalid image name"):
            drv.plan(ImageRecipe(bad, tmp_path))


def test_against_moto_gateways_build_then_up_to_date(recipe: ImageRecipe) -> None:
    """The real gateways wired together: moto's CodeBuild succeeds at once without logs."""
    from batchkit.providers.aws.codebuild import CodeBuildGateway
    from batchkit.providers.aws.ecr import EcrGateway
    from batchkit.providers.aws.logs import LogsGateway
    from batchkit.providers.aws.s3 import S3ObjectStore
    from batchkit.providers.aws.session import AwsSession
    from tests.fixtures.moto_server import SIMPLE_CONFIG

    with mock_aws(config=SIMPLE_CONFIG):
        ecr = boto3.client("ecr")
        uri = ecr.create_repository(repositoryName="batchkit-demo")["repository"]["repositoryUri"]
        boto3.client("s3").create_bucket(Bucket="bucket")
        role = boto3.client("iam").create_role(RoleName="cb", AssumeRolePolicyDocument="{}")
        boto3.client("codebuild").create_project(
            name="batchkit-demo-images",
            source={"type": "S3", "location": "bucket/x.zip"},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "computeType": "BUILD_GENERAL1_SMALL",
            },
            serviceRole=role["Role"]["Arn"],
        )
        session = AwsSession(region="us-east-1")
        target = BuildTarget("demo", "batchkit-demo", uri, "batchkit-demo-images", "bucket")
        clock = Clock()
        drv = CloudImageBuilder(
            target,
            registry=EcrGateway(session.api("ecr")),
            builds=CodeBuildGateway(session.api("codebuild")),
            objects=S3ObjectStore(session.api("s3"), "bucket"),
            logs=LogsGateway(session.api("logs")),
            clock=clock,
            sleep=clock.sleep,
        )
        plan = drv.plan(recipe)
        events = list(drv.build(plan))
        assert isinstance(events[1], BuildStarted)
        final = events[-1]
        assert isinstance(final, BuildDone) and final.result.digest is None  # nothing pushed
        body = boto3.client("s3").get_object(Bucket="bucket", Key=f"images/{plan.tag}.tar")
        assert len(body["Body"].read()) == plan.archive.size

        # CodeBuild would have pushed the tag; now the same context is up to date
        ecr.put_image(
            repositoryName="batchkit-demo",
            imageManifest='{"schemaVersion": 2, "mediaType": "application/vnd.docker.'
            'distribution.manifest.v2+json", "layers": []}',
            imageTag=plan.tag,
        )
        again = list(drv.build(drv.plan(recipe)))
        assert len(again) == 1 and isinstance(again[0], BuildDone) and again[0].result.up_to_date


def test_lines_that_reach_the_log_after_the_build_ended_are_still_shown(
    recipe: ImageRecipe,
) -> None:
    """CloudWatch lags CodeBuild: the last lines may land after the build reports FAILED."""
    clock = Clock()
    failed = BuildStatus("p:1", BuildState.FAILED, log_group="g", log_stream="1")

    class LateLogs(FakeLogs):
        reads = 0

        def get_log_events(self, group: str, stream: str, **kwargs: object) -> Any:
            LateLogs.reads += 1
            if LateLogs.reads == 2:  # the grace read after the build ended
                self.lines.append("E: the real error\n")
            return super().get_log_events(group, stream, **kwargs)  # type: ignore[arg-type]

    logs = LateLogs()
    drv = builder(FakeRegistry(), FakeBuilds([failed]), logs, clock)
    with pytest.raises(ImageBuildFailedError) as info:
        list(drv.build(drv.plan(recipe)))
    assert info.value.log_tail == ("E: the real error",)
    assert clock.sleeps == [5, 3]  # one poll, then one short grace read

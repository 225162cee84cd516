"""The CodeBuild gateway against moto: start a build with overrides, read it back, stop it.

moto's builds are SUCCEEDED at once and have no logs; progress and failure are tested through
the driver's seam (tests/images/test_image_build.py).
"""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest

from batchkit.providers.aws.codebuild import CodeBuildGateway, ProjectNotFoundError, _status
from batchkit.providers.aws.errors import AwsServiceError
from batchkit.providers.aws.session import AwsSession
from batchkit.providers.images import BuildState
from tests.providers.aws.faults import Faults


@pytest.fixture
def project(session: AwsSession) -> str:
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="cb", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("codebuild").create_project(
        name="batchkit-demo-images",
        source={"type": "S3", "location": "bucket/placeholder.zip", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
        },
        serviceRole=role,
    )
    return "batchkit-demo-images"


def test_start_build_then_get_build(session: AwsSession, project: str) -> None:
    gateway = CodeBuildGateway(session.api("codebuild"))
    seen: list[dict[str, object]] = []
    session.add_hook(
        "provide-client-params.codebuild.StartBuild", lambda params, **kw: seen.append(params)
    )
    started = gateway.start_build(
        project,
        buildspec="version: 0.2\n",
        environment={"B": "2", "A": "1"},
        timeout_minutes=30,
    )
    assert started.build_id.startswith(f"{project}:")
    assert seen[0]["sourceTypeOverride"] == "NO_SOURCE"
    assert seen[0]["privilegedModeOverride"] is True
    assert seen[0]["buildspecOverride"] == "version: 0.2\n"
    assert seen[0]["environmentVariablesOverride"] == [
        {"name": "A", "value": "1", "type": "PLAINTEXT"},
        {"name": "B", "value": "2", "type": "PLAINTEXT"},
    ]
    again = gateway.get_build(started.build_id)
    assert again.build_id == started.build_id
    assert again.state is BuildState.SUCCEEDED  # moto: instantly
    assert again.state.done


def test_starting_a_build_of_a_missing_project_names_it(session: AwsSession) -> None:
    gateway = CodeBuildGateway(session.api("codebuild"))
    with pytest.raises(ProjectNotFoundError, match="'nope'") as info:
        gateway.start_build("nope", buildspec="version: 0.2", environment={})
    assert info.value.hint and "--project" in info.value.hint


def test_start_build_is_resent_with_the_same_idempotency_token(
    make_session: Callable[..., AwsSession], project: str
) -> None:
    # CodeBuild starts one build per idempotencyToken: a 5xx after the work is safe to resend
    faults = Faults(acted_error=1.0, operation="StartBuild")
    session = make_session(hooks=faults.hooks("codebuild"))
    seen: list[object] = []
    session.add_hook(
        "provide-client-params.codebuild.StartBuild",
        lambda params, **kw: seen.append(params["idempotencyToken"]),
    )
    gateway = CodeBuildGateway(session.api("codebuild"))
    with pytest.raises(AwsServiceError):
        gateway.start_build(project, buildspec="version: 0.2", environment={})
    assert len(seen) == session.retry.max_attempts
    assert len(set(seen)) == 1


def test_stop_build(session: AwsSession, project: str) -> None:
    gateway = CodeBuildGateway(session.api("codebuild"))
    started = gateway.start_build(project, buildspec="version: 0.2", environment={})
    assert gateway.stop_build(started.build_id).state is BuildState.STOPPED


def test_status_reads_logs_and_the_failed_phase_message() -> None:
    status = _status(
        {
            "id": "p:1",
            "buildStatus": "FAILED",
            "currentPhase": "COMPLETED",
            "logs": {"groupName": "/aws/codebuild/p", "streamName": "1", "deepLink": "https://x"},
            "phases": [
                {"phaseType": "PRE_BUILD", "phaseStatus": "SUCCEEDED"},
                {
                    "phaseType": "BUILD",
                    "phaseStatus": "FAILED",
                    "contexts": [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": "exit 1"}],
                },
            ],
        }
    )
    assert status.state is BuildState.FAILED
    assert (status.log_group, status.log_stream) == ("/aws/codebuild/p", "1")
    assert status.failure == "BUILD: exit 1"
    assert status.console_url == "https://x"
    assert _status({"id": "p:2", "buildStatus": "WEIRD"}).state is BuildState.FAULT

"""The default-image Lambda, run as a plain function against moto CodeBuild and ECR, answering a
local server (the ResponseURL). moto's builds succeed at once, so the states a real build goes
through are played by a thin wrapper around moto's CodeBuild client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas import default_image
from tests.lambdas.test_cleanup_handlers import Context, Responses, bundled, response_server

__all__ = ["response_server"]

REPOSITORY = "batchkit/research"
TAG = "default-0123456789abcdef"


class Builds:
    """moto's CodeBuild, with the statuses batch_get_builds reports scripted per poll."""

    def __init__(self, client: Any, statuses: list[str], final: dict[str, Any] | None = None):
        self._client = client
        self._statuses = list(statuses)
        self._final = final or {}
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []

    def start_build(self, **request: Any) -> Any:
        self.started.append(request)
        return self._client.start_build(**request)

    def batch_get_builds(self, ids: list[str]) -> Any:
        response = self._client.batch_get_builds(ids=ids)
        build = response["builds"][0]
        if self._statuses:
            build["buildStatus"] = self._statuses.pop(0)
        if build["buildStatus"] in default_image.DONE:
            build.update(self._final)
        return response

    def stop_build(self, id: str) -> Any:
        self.stopped.append(id)
        return self._client.stop_build(id=id)


class Invocations:
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, **request: Any) -> None:
        assert request["InvocationType"] == "Event"
        self.payloads.append(json.loads(request["Payload"]))


class LambdaContext(Context):
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:batchkit-r-default-image"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        uri = ecr.create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="cb", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        codebuild = boto3.client("codebuild", region_name="us-east-1")
        codebuild.create_project(
            name="batchkit-research-images",
            # moto wants a source location even for the stack's NO_SOURCE project.
            source={"type": "S3", "location": "bucket/placeholder.zip", "buildspec": "v"},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
                "computeType": "BUILD_GENERAL1_MEDIUM",
            },
            serviceRole=role,
        )
        yield {"ecr": ecr, "codebuild": codebuild, "uri": uri}


def event(url: str, request_type: str, uri: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/research/x",
        "RequestId": "0b2c4d6e-1111-2222-3333-444455556666",
        "LogicalResourceId": "DefaultImage",
        "ResourceType": "Custom::DefaultImage",
        "ResourceProperties": {
            "ServiceToken": "arn:...",
            "ProjectName": "batchkit-research-images",
            "RepositoryName": REPOSITORY,
            "RepositoryUri": uri,
            "ImageTag": TAG,
            "BuildTimeoutMinutes": "40",
            "Buildspec": "version: 0.2\nphases: {build: {commands: [echo hi]}}\n",
        },
        **extra,
    }


def run(
    aws: dict[str, Any],
    request: dict[str, Any],
    builds: Builds,
    context: Any = None,
    handler: Callable[..., None] = default_image.handler,
) -> Any:
    clients = SimpleNamespace(codebuild=builds, ecr=aws["ecr"], lambda_=Invocations())
    sleeps: list[float] = []
    handler(request, context or LambdaContext(), clients, sleeps.append)
    return clients, sleeps


def test_create_starts_a_build_waits_for_it_and_answers_the_image(
    aws: dict[str, Any], response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    builds = Builds(aws["codebuild"], ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"])
    _, sleeps = run(aws, event(url, "Create", aws["uri"]), builds)
    body = received.bodies[0]
    assert body["Status"] == "SUCCESS", body
    assert body["Data"] == {"ImageUri": f"{aws['uri']}:{TAG}"}
    assert body["PhysicalResourceId"] == f"{aws['uri']}:{TAG}"
    assert len(sleeps) == 2
    (started,) = builds.started
    assert started["sourceTypeOverride"] == "NO_SOURCE"
    assert started["buildspecOverride"].startswith("version: 0.2")
    assert started["timeoutInMinutesOverride"] == 40
    env = {e["name"]: e["value"] for e in started["environmentVariablesOverride"]}
    assert env["BATCHKIT_IMAGE_TAG"] == TAG and env["BATCHKIT_IMAGE_REPOSITORY"] == aws["uri"]


def test_bundled_source_is_self_contained_and_runs(
    aws: dict[str, Any], response_server: tuple[str, Responses]
) -> None:
    """The index.py the template inlines (cfn_response's `send` ahead of the handler) builds and
    answers alone, as the module does."""
    url, received = response_server
    builds = Builds(aws["codebuild"], ["IN_PROGRESS", "SUCCEEDED"])
    handler = bundled("default_image")["handler"]
    _, sleeps = run(aws, event(url, "Create", aws["uri"]), builds, handler=handler)
    assert received.bodies[0]["Status"] == "SUCCESS", received.bodies[0]
    assert received.bodies[0]["Data"] == {"ImageUri": f"{aws['uri']}:{TAG}"}
    assert len(builds.started) == 1 and len(sleeps) == 1


def test_an_image_already_in_the_repository_is_not_built_again(
    aws: dict[str, Any], response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": "sha256:" + "1" * 64, "size": 1},
            "layers": [],
        }
    )
    aws["ecr"].put_image(repositoryName=REPOSITORY, imageManifest=manifest, imageTag=TAG)
    builds = Builds(aws["codebuild"], [])
    run(aws, event(url, "Update", aws["uri"], PhysicalResourceId="old"), builds)
    assert received.bodies[0]["Status"] == "SUCCESS"
    assert received.bodies[0]["Data"]["ImageUri"].endswith(f":{TAG}")
    assert builds.started == []


def test_a_failed_build_fails_the_resource_and_names_its_log(
    aws: dict[str, Any], response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    final = {
        "phases": [
            {"phaseType": "PROVISIONING", "phaseStatus": "SUCCEEDED"},
            {
                "phaseType": "BUILD",
                "phaseStatus": "FAILED",
                "contexts": [{"message": "COMMAND_EXECUTION_ERROR: docker build exit 1"}],
            },
        ],
        "logs": {
            "groupName": "/batchkit/research/codebuild",
            "streamName": "abc-123",
            "deepLink": "https://console.example/logs",
        },
    }
    builds = Builds(aws["codebuild"], ["IN_PROGRESS", "FAILED"], final)
    run(aws, event(url, "Create", aws["uri"]), builds)
    body = received.bodies[0]
    assert body["Status"] == "FAILED"
    assert "BUILD: COMMAND_EXECUTION_ERROR: docker build exit 1" in body["Reason"]
    assert "/batchkit/research/codebuild, stream abc-123" in body["Reason"]
    assert body["PhysicalResourceId"] == "batchkit-DefaultImage"


def test_a_build_longer_than_one_invocation_is_handed_on_then_answered(
    aws: dict[str, Any], response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    builds = Builds(aws["codebuild"], ["IN_PROGRESS"])
    clients, _ = run(aws, event(url, "Create", aws["uri"]), builds, LambdaContext(70_000))
    assert received.bodies == []  # no answer yet: the next invocation gives it
    (handed,) = clients.lambda_.payloads
    assert handed["BatchkitRound"] == 2 and handed["BatchkitBuildId"]

    later = Builds(aws["codebuild"], ["SUCCEEDED"])
    run(aws, handed, later)
    assert later.started == []  # the same build, not a second one
    assert received.bodies[0]["Status"] == "SUCCESS"


def test_a_build_that_outlasts_every_round_is_stopped_and_fails(
    aws: dict[str, Any], response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    builds = Builds(aws["codebuild"], ["IN_PROGRESS"])
    run(aws, event(url, "Create", aws["uri"]), builds)
    build_id = builds.started and aws["codebuild"].list_builds()["ids"][0]
    last = event(url, "Create", aws["uri"], BatchkitBuildId=build_id, BatchkitRound=4)
    stuck = Builds(aws["codebuild"], ["IN_PROGRESS"])
    received.bodies.clear()
    run(aws, last, stuck, LambdaContext(70_000))
    assert received.bodies[0]["Status"] == "FAILED"
    assert "ran too long" in received.bodies[0]["Reason"]
    assert stuck.stopped == [build_id]


def test_delete_succeeds_without_touching_anything(
    aws: dict[str, Any], response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    builds = Builds(aws["codebuild"], [])
    request = event(url, "Delete", aws["uri"], PhysicalResourceId=f"{aws['uri']}:{TAG}")
    run(aws, request, builds)
    assert received.bodies[0]["Status"] == "SUCCESS"
    assert received.bodies[0]["PhysicalResourceId"] == f"{aws['uri']}:{TAG}"
    assert builds.started == []


def test_any_error_is_answered_failed_so_the_stack_never_hangs(
    aws: dict[str, Any], response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    request = event(url, "Create", aws["uri"])
    request["ResourceProperties"]["RepositoryName"] = "batchkit/missing"
    run(aws, request, Builds(aws["codebuild"], []))
    assert received.bodies[0]["Status"] == "FAILED"
    assert "RepositoryNotFound" in received.bodies[0]["Reason"]

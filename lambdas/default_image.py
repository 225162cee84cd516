"""Custom resource Lambda: build the cluster's default job image while the stack is created.

Properties: `ProjectName` (the cluster's CodeBuild project), `RepositoryName`, `RepositoryUri`,
`ImageTag` (content hash of the preset) and `Buildspec` (carries the build context inline, so
no bucket has to exist first). Create and Update start a CodeBuild build unless ECR already has
the tag, and answer once it ends: SUCCESS with `ImageUri`, or FAILED naming the build's log.
Delete succeeds without touching anything (the image goes with the repository).

A build can outlast one invocation (at most 15 minutes), so a call that runs out of time hands
the build on to a fresh asynchronous invocation of the same function and returns without
answering; CloudFormation waits up to the resource's ServiceTimeout. Every path answers, so the
stack never hangs. Only boto3 and the standard library: the template inlines this file after
`cfn_response.py`.
"""

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from .cfn_response import send  # bundled: inlined above this file

RETRIES = Config(retries={"max_attempts": 10, "mode": "standard"})
POLL_SECONDS = 15
HANDOFF_MS = 60_000  # hand the build on while this much time is left
MAX_ROUNDS = 4  # invocations of at most 15 minutes: under CloudFormation's one-hour wait
BUILD_KEY = "BatchkitBuildId"
ROUND_KEY = "BatchkitRound"
DONE = ("SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT")


class Clients:
    """The AWS clients the handler uses; tests pass their own."""

    def __init__(self) -> None:
        self.codebuild = boto3.client("codebuild", config=RETRIES)
        self.ecr = boto3.client("ecr", config=RETRIES)
        self.lambda_ = boto3.client("lambda", config=RETRIES)


def image_exists(ecr: Any, repository: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        return False
    return True


def start(codebuild: Any, event: dict[str, Any]) -> str:
    """Start the build; the request id makes a resent StartBuild return the same build."""
    properties = event["ResourceProperties"]
    build = codebuild.start_build(
        projectName=properties["ProjectName"],
        sourceTypeOverride="NO_SOURCE",
        buildspecOverride=properties["Buildspec"],
        privilegedModeOverride=True,
        idempotencyToken=event["RequestId"][:64],
        timeoutInMinutesOverride=int(properties["BuildTimeoutMinutes"]),
        environmentVariablesOverride=[
            {"name": name, "value": value, "type": "PLAINTEXT"}
            for name, value in (
                ("BATCHKIT_IMAGE_REPOSITORY", properties["RepositoryUri"]),
                ("BATCHKIT_IMAGE_TAG", properties["ImageTag"]),
                ("BATCHKIT_IMAGE_ALIAS", "default"),
            )
        ],
    )["build"]
    return str(build["id"])


def failure(build: dict[str, Any]) -> str:
    """Why the build failed and where its log is."""
    reasons = [
        f"{phase.get('phaseType')}: {context.get('message') or phase.get('phaseStatus')}"
        for phase in build.get("phases") or []
        if phase.get("phaseStatus") not in (None, "SUCCEEDED", "IN_PROGRESS")
        for context in phase.get("contexts") or [{}]
    ]
    logs = build.get("logs") or {}
    where = (
        f"CloudWatch log group {logs.get('groupName')}, stream {logs.get('streamName')}"
        if logs.get("groupName")
        else f"the CodeBuild console, build {build.get('id')}"
    )
    link = f" ({logs['deepLink']})" if logs.get("deepLink") else ""
    return (
        f"the default image build {build.get('id')} ended {build.get('buildStatus')}: "
        f"{'; '.join(reasons) or 'no reason given'}. Its log: {where}{link}"
    )


def wait(
    clients: Any, build_id: str, context: Any, sleep: Callable[[float], None]
) -> dict[str, Any] | None:
    """The finished build, or None when this invocation must hand it on."""
    while True:
        build = clients.codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build.get("buildStatus") in DONE:
            return dict(build)
        if context.get_remaining_time_in_millis() < HANDOFF_MS + POLL_SECONDS * 1000:
            return None
        sleep(POLL_SECONDS)


def run(
    event: dict[str, Any], context: Any, clients: Any, sleep: Callable[[float], None]
) -> tuple[str, str, str] | None:
    """(status, reason, image) to answer with, or None when the build was handed on."""
    if event.get("RequestType") == "Delete":
        return "SUCCESS", "the image goes with the repository", ""
    properties = event["ResourceProperties"]
    image = f"{properties['RepositoryUri']}:{properties['ImageTag']}"
    build_id = event.get(BUILD_KEY)
    if build_id is None:
        if image_exists(clients.ecr, properties["RepositoryName"], properties["ImageTag"]):
            return "SUCCESS", f"{image} is already in the repository", image
        build_id = start(clients.codebuild, event)
        print(f"started CodeBuild build {build_id} of {image}")
    build = wait(clients, build_id, context, sleep)
    if build is None:
        rounds = int(event.get(ROUND_KEY, 1))
        if rounds >= MAX_ROUNDS:
            clients.codebuild.stop_build(id=build_id)
            return "FAILED", f"the default image build {build_id} ran too long: stopped", ""
        handed = {**event, BUILD_KEY: build_id, ROUND_KEY: rounds + 1}
        clients.lambda_.invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps(handed).encode(),
        )
        print(f"build {build_id} still running: handed on to invocation {rounds + 1}")
        return None
    if build["buildStatus"] != "SUCCEEDED":
        return "FAILED", failure(build), ""
    return "SUCCESS", f"built {image} (CodeBuild build {build_id})", image


def handler(
    event: dict[str, Any],
    context: Any,
    clients: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Answer the request (or hand it on); any error answers FAILED, so nothing hangs."""
    physical_id = event.get("PhysicalResourceId") or f"batchkit-{event['LogicalResourceId']}"
    try:
        outcome = run(event, context, clients or Clients(), sleep)
    except Exception as err:
        outcome = "FAILED", f"{type(err).__name__}: {err}", ""
    if outcome is None:
        return
    status, reason, image = outcome
    print(f"{event.get('RequestType')} {event.get('LogicalResourceId')}: {status}: {reason}")
    # A new image is a new physical id: CloudFormation then sends the old one a (no-op) Delete.
    send(event, status, reason, image or physical_id, {"ImageUri": image} if image else {})

"""The CodeBuild gateway: start a build of an image, look at it, stop it.

Every batchkit build overrides the project's source and buildspec: the context is a tar in the
cluster bucket that the buildspec fetches itself (`NO_SOURCE`), because a CodeBuild S3 source must
be a zip and batchkit's context archive is a deterministic tar. Docker needs privileged mode in
the CodeBuild build container (not in the jobs), so it is requested on every build.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from batchkit.errors import NotFoundError
from batchkit.providers.aws.errors import AwsNotFoundError
from batchkit.providers.aws.session import Api
from batchkit.providers.images import BuildState, BuildStatus


class ProjectNotFoundError(NotFoundError):
    def __init__(self, project: str) -> None:
        super().__init__(
            f"CodeBuild project {project!r} not found",
            hint="check the cluster (-c) and region; `batchkit cluster status` shows the "
            "project of a cluster, or pass --project",
        )
        self.project = project


def _status(build: Mapping[str, Any]) -> BuildStatus:
    logs = build.get("logs") or {}
    failure = None
    for phase in build.get("phases") or []:
        if phase.get("phaseStatus") not in (None, "SUCCEEDED", "IN_PROGRESS"):
            messages = [c.get("message") for c in phase.get("contexts") or [] if c.get("message")]
            failure = f"{phase.get('phaseType')}: " + ("; ".join(messages) or phase["phaseStatus"])
    try:
        state = BuildState(build.get("buildStatus", "IN_PROGRESS"))
    except ValueError:
        state = BuildState.FAULT
    return BuildStatus(
        build_id=str(build["id"]),
        state=state,
        phase=build.get("currentPhase"),
        log_group=logs.get("groupName"),
        log_stream=logs.get("streamName"),
        console_url=logs.get("deepLink"),
        failure=failure,
    )


class CodeBuildGateway:
    """CodeBuild calls batchkit makes, returning `BuildStatus` and raising `BatchkitError`s."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def start_build(
        self,
        project: str,
        *,
        buildspec: str,
        environment: Mapping[str, str],
        timeout_minutes: int | None = None,
        idempotency_token: str | None = None,
    ) -> BuildStatus:
        """Start one build of `project` with this buildspec and these environment variables.

        `idempotency_token` makes it safe to resend: CodeBuild starts one build per token
        within five minutes (StartBuild's `idempotencyToken`, CodeBuild API Reference), so a 5xx
        or a lost answer is retried with the same token."""
        request: dict[str, Any] = {
            "projectName": project,
            "idempotencyToken": idempotency_token or uuid.uuid4().hex,
            "sourceTypeOverride": "NO_SOURCE",
            "buildspecOverride": buildspec,
            "privilegedModeOverride": True,
            "environmentVariablesOverride": [
                {"name": name, "value": value, "type": "PLAINTEXT"}
                for name, value in sorted(environment.items())
            ],
        }
        if timeout_minutes is not None:
            request["timeoutInMinutesOverride"] = timeout_minutes
        try:
            response = self._api.call("start_build", resource=project, **request)
        except AwsNotFoundError as err:
            raise ProjectNotFoundError(project) from err
        return _status(response["build"])

    def get_build(self, build_id: str) -> BuildStatus:
        response = self._api.call("batch_get_builds", resource=build_id, ids=[build_id])
        builds = response.get("builds") or []
        if not builds:
            raise NotFoundError(
                f"CodeBuild build {build_id!r} not found",
                hint="check the region and the build id (CodeBuild keeps builds for a year)",
            )
        return _status(builds[0])

    def latest_build(self, project: str) -> BuildStatus | None:
        """The project's most recently started build, or None before its first."""
        response = self._api.call(
            "list_builds_for_project", resource=project, projectName=project, sortOrder="DESCENDING"
        )
        ids = response.get("ids") or []
        return self.get_build(str(ids[0])) if ids else None

    def stop_build(self, build_id: str) -> BuildStatus:
        response = self._api.call("stop_build", resource=build_id, id=build_id)
        return _status(response["build"])

"""`cluster create` shows the default image's build between the stack events."""

from __future__ import annotations

from batchkit.errors import AwsError
from batchkit.providers.aws.stackevents import DefaultImageWatch, Progress, StackEvent
from batchkit.providers.images import BuildState, BuildStatus


class Builds:
    def __init__(self, phases: list[str | None], fail: bool = False) -> None:
        self.phases = phases
        self.fail = fail
        self.calls = 0

    def latest_build(self, project: str) -> BuildStatus | None:
        assert project == "batchkit-research-images"
        self.calls += 1
        if self.fail:
            raise AwsError("AccessDenied: codebuild:ListBuildsForProject")
        phase = self.phases.pop(0) if len(self.phases) > 1 else self.phases[0]
        return BuildStatus(
            build_id="batchkit-research-images:1",
            state=BuildState.IN_PROGRESS,
            phase=phase,
            log_group="/batchkit/research/codebuild",
            log_stream="1",
        )


def event(logical: str, status: str) -> Progress:
    return Progress(status, StackEvent(1.0, logical, "Custom::DefaultImage", status))


def test_build_phases_are_reported_only_while_the_image_resource_is_in_progress() -> None:
    shown: list[Progress] = []
    builds = Builds(["PROVISIONING", "PROVISIONING", "BUILD", "POST_BUILD"])
    watch = DefaultImageWatch(builds, "batchkit-research-images", shown.append)  # type: ignore[arg-type]
    watch.poll()
    assert builds.calls == 0  # nothing to watch before the resource starts
    watch.observe(event("DefaultImage", "CREATE_IN_PROGRESS"))
    for _ in range(4):
        watch.poll()
    watch.observe(event("DefaultImage", "CREATE_COMPLETE"))
    watch.poll()
    texts = [p.text for p in shown]
    assert texts == [
        "CREATE_IN_PROGRESS",
        "default image: build batchkit-research-images:1 PROVISIONING;"
        " log /batchkit/research/codebuild 1",
        "default image: build batchkit-research-images:1 BUILD; log /batchkit/research/codebuild 1",
        "default image: build batchkit-research-images:1 POST_BUILD;"
        " log /batchkit/research/codebuild 1",
        "CREATE_COMPLETE",
    ]
    assert builds.calls == 4


def test_a_build_it_may_not_see_does_not_fail_the_create() -> None:
    shown: list[Progress] = []
    builds = Builds([None], fail=True)
    watch = DefaultImageWatch(builds, "batchkit-research-images", shown.append)  # type: ignore[arg-type]
    watch.observe(event("DefaultImage", "CREATE_IN_PROGRESS"))
    watch.poll()
    watch.poll()
    assert builds.calls == 1
    assert [p.text for p in shown] == ["CREATE_IN_PROGRESS"]

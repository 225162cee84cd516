"""The local Docker build driver against a fake docker client (the real engine is exercised in
test_image_docker.py)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from msgspec.structs import replace

from batchkit.errors import EngineError
from batchkit.images.local import LABEL_HASH, LocalImageBuilder
from batchkit.images.plan import BuildDone, BuildLogLine, ImageBuildFailedError, ImageRecipe


class FakeApi:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks
        self.builds: list[dict[str, Any]] = []
        self.tags: list[tuple[str, str, str]] = []

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs["context"] = kwargs.pop("fileobj").read()
        self.builds.append(kwargs)
        return iter(self.chunks)

    def tag(self, image: str, repository: str, tag: str, force: bool = False) -> None:
        self.tags.append((image, repository, tag))


class FakeImages:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def get(self, reference: str) -> Any:
        if reference not in self.present:
            raise docker.errors.ImageNotFound(reference)
        return type("Image", (), {"id": "sha256:" + "9" * 64})()


class FakeClient:
    def __init__(self, chunks: list[dict[str, Any]], present: set[str] | None = None) -> None:
        self.api = FakeApi(chunks)
        self.images = FakeImages(present or set())


@pytest.fixture
def recipe(tmp_path: Path) -> ImageRecipe:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    return ImageRecipe("tool", context, build_args={"BASE_IMAGE": "batchkit-base/debian:bookworm"})


def test_build_sends_the_archive_with_host_network_and_tags_latest(recipe: ImageRecipe) -> None:
    client = FakeClient(
        [
            {"stream": "Step 1/2 : ARG BASE_IMAGE\n"},
            {"stream": "\n"},
            {"aux": {"ID": "sha256:" + "a" * 64}},
            {"stream": "Successfully built aaaa\n"},
        ]
    )
    builder = LocalImageBuilder(client)
    plan = builder.plan(recipe)
    events = list(builder.build(plan))
    assert [e.message for e in events if isinstance(e, BuildLogLine)] == [
        "Step 1/2 : ARG BASE_IMAGE",
        "Successfully built aaaa",
    ]
    done = events[-1]
    assert isinstance(done, BuildDone)
    assert done.result.image == f"batchkit/tool:{plan.content_hash}"
    assert done.result.digest == "sha256:" + "a" * 64 and not done.result.up_to_date
    [sent] = client.api.builds
    assert sent["network_mode"] == "host" and sent["custom_context"] is True
    assert sent["buildargs"] == {"BASE_IMAGE": "batchkit-base/debian:bookworm"}
    assert sent["labels"][LABEL_HASH] == plan.content_hash
    assert sent["nocache"] is False
    with tarfile.open(fileobj=io.BytesIO(sent["context"])) as archive:
        assert archive.getnames() == ["Dockerfile"]
    assert client.api.tags == [(plan.image, "batchkit/tool", "latest")]


def test_no_cache_builds_every_layer_afresh_under_the_same_tag(recipe: ImageRecipe) -> None:
    client = FakeClient([{"aux": {"ID": "sha256:" + "b" * 64}}])
    builder = LocalImageBuilder(client)
    fresh = replace(recipe, cache=False)
    list(builder.build(builder.plan(fresh)))
    [sent] = client.api.builds
    assert sent["nocache"] is True
    assert builder.plan(fresh).image == builder.plan(recipe).image  # how, not what


def test_an_image_the_engine_has_is_not_rebuilt(recipe: ImageRecipe) -> None:
    probe = LocalImageBuilder(None).plan(recipe)
    client = FakeClient([], present={probe.image})
    events = list(LocalImageBuilder(client).build(probe))
    assert len(events) == 1 and events[0].result.up_to_date  # type: ignore[union-attr]
    assert client.api.builds == []


def test_a_failed_pull_of_the_base_image_points_at_base_image(recipe: ImageRecipe) -> None:
    client = FakeClient(
        [
            {"stream": "Step 1/2 : FROM public.ecr.aws/docker/library/debian:bookworm-slim\n"},
            {
                "error": "failed",
                "errorDetail": {
                    "message": "Get https://public.ecr.aws/v2/: dial tcp: lookup public.ecr.aws"
                },
            },
        ]
    )
    builder = LocalImageBuilder(client)
    with pytest.raises(ImageBuildFailedError, match="dial tcp") as info:
        list(builder.build(builder.plan(recipe)))
    assert info.value.hint and "--base-image batchkit-base/debian:bookworm" in info.value.hint
    assert info.value.log_tail == (
        "Step 1/2 : FROM public.ecr.aws/docker/library/debian:bookworm-slim",
    )


def test_a_failing_run_step_is_a_build_failure_with_a_plain_hint(recipe: ImageRecipe) -> None:
    client = FakeClient([{"error": "The command '/bin/sh -c false' returned a non-zero code: 1"}])
    builder = LocalImageBuilder(client)
    with pytest.raises(ImageBuildFailedError, match="non-zero code: 1") as info:
        list(builder.build(builder.plan(recipe)))
    assert info.value.hint and "Dockerfile" in info.value.hint


def test_an_engine_that_stops_answering_is_an_engine_error(recipe: ImageRecipe) -> None:
    class Broken(FakeApi):
        def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
            raise docker.errors.APIError("500 Server Error: daemon gone")

    client = FakeClient([])
    client.api = Broken([])
    builder = LocalImageBuilder(client)
    with pytest.raises(EngineError, match="daemon gone") as info:
        list(builder.build(builder.plan(recipe)))
    assert info.value.hint and "DOCKER_HOST" in info.value.hint

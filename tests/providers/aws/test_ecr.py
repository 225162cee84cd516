"""The ECR gateway against moto: the one-call up-to-date check and the image listing."""

from __future__ import annotations

import json

import boto3
import pytest

from batchkit.errors import ExitCode
from batchkit.providers.aws.ecr import EcrGateway, RepositoryNotFoundError
from batchkit.providers.aws.session import AwsSession


def push(repository: str, *tags: str, layer: str = "a") -> None:
    """Put an image into moto's ECR (no registry: a manifest is enough)."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": f"sha256:{layer * 64}", "size": 1, "mediaType": "x"},
            "layers": [],
        }
    )
    ecr = boto3.client("ecr")
    for tag in tags:
        ecr.put_image(
            repositoryName=repository,
            imageManifest=manifest,
            imageManifestMediaType="application/vnd.docker.distribution.manifest.v2+json",
            imageTag=tag,
        )


@pytest.fixture
def repository(session: AwsSession) -> str:
    boto3.client("ecr").create_repository(repositoryName="batchkit-demo")
    return "batchkit-demo"


def count_calls(session: AwsSession) -> list[str]:
    calls: list[str] = []
    session.add_hook("before-send.ecr", lambda **kw: calls.append(kw["request"].url) and None)
    return calls


def test_find_image_is_one_call_and_says_none_for_a_missing_tag(
    session: AwsSession, repository: str
) -> None:
    push(repository, "debian-0123456789abcdef", "debian")
    ecr = EcrGateway(session.api("ecr"))
    calls = count_calls(session)

    found = ecr.find_image(repository, "debian-0123456789abcdef")
    assert found is not None
    assert found.repository == repository
    assert found.digest.startswith("sha256:")
    assert "debian-0123456789abcdef" in found.tags
    assert found.pushed_at is not None
    assert len(calls) == 1

    assert ecr.find_image(repository, "debian-ffffffffffffffff") is None
    assert len(calls) == 2


def test_a_missing_repository_is_a_not_found_error_with_a_hint(session: AwsSession) -> None:
    ecr = EcrGateway(session.api("ecr"))
    with pytest.raises(RepositoryNotFoundError) as info:
        ecr.find_image("nope", "x")
    assert info.value.exit_code is ExitCode.NOT_FOUND
    assert "'nope'" in info.value.message and info.value.hint
    with pytest.raises(RepositoryNotFoundError):
        ecr.list_images("nope")


def test_list_images_gives_tags_push_time_and_size_for_every_image(
    session: AwsSession, repository: str
) -> None:
    push(repository, "debian-1111111111111111", "debian")
    push(repository, "al2023-2222222222222222", layer="b")
    records = EcrGateway(session.api("ecr")).list_images(repository)
    all_tags = {tag for record in records for tag in record.tags}
    assert {"debian-1111111111111111", "debian", "al2023-2222222222222222"} <= all_tags
    assert all(r.pushed_at is not None and r.size_bytes >= 0 for r in records)
    as_json = records[0].to_dict()
    assert set(as_json) == {"repository", "digest", "tags", "pushedAt", "sizeBytes"}
    json.dumps(as_json)

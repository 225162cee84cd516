"""The cleanup Lambdas, run as plain functions against moto S3/ECR, answering a local server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchkit.infra.cleanup import lambda_source
from batchkit.shipped import folder
from lambdas import empty_ecr, empty_s3

BUCKET = "batchkit-research-123456789012-us-east-1"
PREFIX = "batchkit/research/"


class Responses:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []


@pytest.fixture
def response_server() -> Iterator[tuple[str, Responses]]:
    """A ResponseURL on 127.0.0.1 that records what the function PUTs."""
    received = Responses()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            received.bodies.append(json.loads(self.rfile.read(length)))
            received.headers.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/response?sig=abc", received
    server.shutdown()
    server.server_close()


class Context:
    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def event(url: str, request_type: str, **properties: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/research/x",
        "RequestId": "req-1",
        "LogicalResourceId": "EmptyS3OnDelete",
        "ResourceType": "Custom::EmptyS3",
        **({"PhysicalResourceId": "batchkit-EmptyS3OnDelete"} if request_type != "Create" else {}),
        "ResourceProperties": {"ServiceToken": "arn:...", **properties},
    }


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _bucket_with_objects() -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for i in range(25):
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}batch/job-a-{i}/a.sh", Body=b"1")
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}batch/job-a-{i}/a.sh", Body=b"2")
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}batch/job-a-0/a.sh")  # a delete marker
    s3.put_object(Bucket=BUCKET, Key="someone-else/keep.txt", Body=b"x")
    return s3


def _versions(s3: Any, prefix: str) -> int:
    page = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    return len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_succeed_without_touching_anything(
    aws: None, response_server: tuple[str, Responses], request_type: str
) -> None:
    url, received = response_server
    s3 = _bucket_with_objects()
    empty_s3.handler(event(url, request_type, BucketName=BUCKET, Prefix=PREFIX), Context())
    assert received.bodies[0]["Status"] == "SUCCESS"
    assert received.bodies[0]["PhysicalResourceId"] == "batchkit-EmptyS3OnDelete"
    assert received.bodies[0]["RequestId"] == "req-1"
    assert received.headers[0].get("Content-Type", "") == ""
    assert _versions(s3, PREFIX) == 51


def test_delete_removes_every_version_under_the_prefix_only(
    aws: None, response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    s3 = _bucket_with_objects()
    empty_s3.handler(event(url, "Delete", BucketName=BUCKET, Prefix=PREFIX), Context())
    body = received.bodies[0]
    assert body["Status"] == "SUCCESS", body
    assert "deleted 51 objects" in body["Reason"]
    assert _versions(s3, PREFIX) == 0
    assert _versions(s3, "someone-else/") == 1


def test_delete_of_a_missing_bucket_succeeds(
    aws: None, response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    empty_s3.handler(event(url, "Delete", BucketName="gone-bucket", Prefix=PREFIX), Context())
    assert received.bodies[0]["Status"] == "SUCCESS"


def test_a_prefix_that_is_not_a_folder_is_refused_with_failed(
    aws: None, response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    s3 = _bucket_with_objects()
    empty_s3.handler(event(url, "Delete", BucketName=BUCKET, Prefix="/"), Context())
    assert received.bodies[0]["Status"] == "FAILED"
    assert "refusing to empty" in received.bodies[0]["Reason"]
    assert _versions(s3, PREFIX) == 51


def test_answers_failed_before_the_lambda_times_out(
    aws: None, response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    s3 = _bucket_with_objects()
    empty_s3.handler(event(url, "Delete", BucketName=BUCKET, Prefix=PREFIX), Context(5_000))
    assert received.bodies[0]["Status"] == "FAILED"
    assert "about to time out" in received.bodies[0]["Reason"]
    assert _versions(s3, PREFIX) == 51


def _repository_with_images(count: int) -> Any:
    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.create_repository(repositoryName="batchkit/research")
    for i in range(count):
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{i:064x}", "size": i},
                "layers": [],
            }
        )
        ecr.put_image(repositoryName="batchkit/research", imageManifest=manifest, imageTag=f"t{i}")
    return ecr


def test_ecr_delete_empties_the_repository(
    aws: None, response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    ecr = _repository_with_images(130)
    empty_ecr.handler(event(url, "Delete", RepositoryName="batchkit/research"), Context())
    assert received.bodies[0]["Status"] == "SUCCESS", received.bodies[0]
    assert ecr.list_images(repositoryName="batchkit/research")["imageIds"] == []


def test_ecr_delete_of_a_missing_repository_succeeds(
    aws: None, response_server: tuple[str, Responses]
) -> None:
    url, received = response_server
    empty_ecr.handler(event(url, "Delete", RepositoryName="batchkit/nothing"), Context())
    assert received.bodies[0]["Status"] == "SUCCESS"


class FakeEcr:
    """An ECR whose index must go before its child, and one image that never goes."""

    def __init__(self, stuck: bool) -> None:
        self.images = {
            "sha256:index": "application/vnd.oci.image.index.v1+json",
            "sha256:child": "application/vnd.oci.image.manifest.v1+json",
        }
        if stuck:
            self.images["sha256:stuck"] = "application/vnd.oci.image.manifest.v1+json"

    def get_paginator(self, name: str) -> Any:
        fake = self

        class Paginator:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                details = [
                    {"imageDigest": d, "imageManifestMediaType": t} for d, t in fake.images.items()
                ]
                return [{"imageDetails": details[:1]}, {"imageDetails": details[1:]}]

        return Paginator()

    def batch_delete_image(self, repositoryName: str, imageIds: list[dict[str, str]]) -> Any:
        deleted, failures = [], []
        for image in imageIds:
            digest = image["imageDigest"]
            if digest == "sha256:child" and "sha256:index" in self.images:
                failures.append({"imageId": image, "failureCode": "ImageReferencedByManifestList"})
            elif digest == "sha256:stuck":
                failures.append({"imageId": image, "failureCode": "KmsError", "failureReason": "x"})
            else:
                deleted.append(image)
        for image in deleted:
            del self.images[image["imageDigest"]]
        return {"imageIds": deleted, "failures": failures}


def test_ecr_deletes_image_indexes_before_their_children() -> None:
    fake = FakeEcr(stuck=False)
    progress: list[int] = []
    assert empty_ecr.empty_repository(fake, "r", on_progress=progress.append) == 2
    assert fake.images == {}
    assert progress[-1] == 2


def test_ecr_reports_images_it_cannot_delete() -> None:
    fake = FakeEcr(stuck=True)
    with pytest.raises(empty_ecr.CleanupError, match="KmsError"):
        empty_ecr.empty_repository(fake, "r")


def bundled(module: str) -> dict[str, Any]:
    """What CloudFormation inlines as index.py for `module`, run alone: its namespace, after
    checking that it imports neither batchkit nor anything relative."""
    source = lambda_source(module)
    imports = [line.strip() for line in source.splitlines() if re.match(r"\s*(from|import) ", line)]
    assert imports
    assert not [line for line in imports if "batchkit" in line or line.startswith("from .")]
    namespace: dict[str, Any] = {"__name__": "index"}
    exec(compile(source, "index.py", "exec"), namespace)
    return namespace


def test_bundled_source_is_self_contained_and_runs(
    aws: None, response_server: tuple[str, Responses]
) -> None:
    """What CloudFormation inlines as index.py works alone: no batchkit, no relative imports."""
    url, received = response_server
    s3 = _bucket_with_objects()
    bundled("empty_s3")["handler"](
        event(url, "Delete", BucketName=BUCKET, Prefix=PREFIX), Context()
    )
    assert received.bodies[0]["Status"] == "SUCCESS"
    assert _versions(s3, PREFIX) == 0
    bundled("empty_ecr")["handler"](
        event(url, "Delete", RepositoryName="batchkit/nothing"), Context()
    )
    assert received.bodies[1]["Status"] == "SUCCESS"


@pytest.mark.parametrize("module", ["empty_s3", "empty_ecr", "default_image"])
def test_a_zip_of_the_folder_deploys_one_function_by_itself(tmp_path: Path, module: str) -> None:
    """The README's recipe for deploying one function alone: a zip holding the folder `lambdas/`
    (so the handler's `from .cfn_response import` finds its package), handler
    `lambdas.<module>.handler`. Unpacked as Lambda does into its task root, which alone is put
    ahead of the standard library: no checkout, no batchkit (-I: no current folder either)."""
    archive = tmp_path / "function.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder("lambdas").glob("*.py")):
            zipped.write(path, f"lambdas/{path.name}")
    task = tmp_path / "task"
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(task)
    probe = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(task)!r})\n"
        f"name, _, attr = 'lambdas.{module}.handler'.rpartition('.')\n"
        "module = importlib.import_module(name)\n"
        "assert callable(getattr(module, attr))\n"
        "print(module.__file__)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('batchkit', 'lambdas'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    where, loaded = done.stdout.splitlines()
    assert where == str(task / "lambdas" / f"{module}.py")
    assert loaded == str(sorted({"lambdas", "lambdas.cfn_response", f"lambdas.{module}"}))


def test_a_delete_while_the_stack_lives_on_empties_nothing(
    aws: None, response_server: tuple[str, Responses]
) -> None:
    """An update that drops the custom resource (CleanupOnDelete=false) sends a Delete too."""
    url, received = response_server
    s3 = _bucket_with_objects()
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    stack_id = cloudformation.create_stack(
        StackName="research",
        TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}),
    )["StackId"]
    request = event(url, "Delete", BucketName=BUCKET, Prefix=PREFIX)
    request["StackId"] = stack_id
    empty_s3.handler(request, Context())
    assert received.bodies[0]["Status"] == "SUCCESS"
    assert "the stack is not being deleted" in received.bodies[0]["Reason"]
    assert _versions(s3, PREFIX) == 51

    cloudformation.delete_stack(StackName=stack_id)  # gone: now the cleanup runs
    empty_s3.handler(request, Context())
    assert received.bodies[1]["Status"] == "SUCCESS"
    assert _versions(s3, PREFIX) == 0

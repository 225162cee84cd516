"""The cluster's default job image, built while its stack is created (as ParallelCluster did).

A config without `image:` gets the `al2023` preset (the AWS CLI, python3 with boto3 and
cloudpickle, the rendezvous script) built into the cluster's own ECR repository by a custom
resource: its Lambda (`lambdas/default_image.py`) starts a build on the cluster's CodeBuild
project and answers when the image is pushed, and the default job definitions use the image it
returns. The build context travels inside the buildspec (a base64 gzipped tar of the preset's few
files), so nothing has to exist before the stack. The tag is the context's content hash: a
batchkit whose preset changed builds a new image on `cluster update`, an unchanged one finds the
tag and builds nothing.

Off (the bare public Amazon Linux image) when image builds are off or `BuildDefaultImage=false`,
e.g. on moto, which cannot run custom resources.
"""

from __future__ import annotations

import ast
import base64
import functools
import gzip
import io
from pathlib import Path
from typing import Any

from msgspec import Struct

from batchkit.images.context import (
    BuildContext,
    ContextEntry,
    content_tag,
    scan_context,
    write_archive,
)
from batchkit.infra import iam
from batchkit.infra.buildspec import BuildspecOptions, buildspec_yaml
from batchkit.infra.cfn import Json, allow, get_att, if_, ref, sub
from batchkit.infra.cleanup import lambda_source, without_annotations, without_docstrings
from batchkit.infra.config import DEFAULT_IMAGE, ClusterConfig
from batchkit.infra.naming import DEFAULT_IMAGE_FUNCTION, Names
from batchkit.infra.storage import DEFAULT_IMAGE_TAG_PREFIX, log_group
from batchkit.shipped import folder

PRESET = "al2023"
PARAMETER = "BuildDefaultImage"
ENABLED = "DefaultImageEnabled"
CONDITION = "DefaultImageBuilt"
SERVICE_TIMEOUT = 3600  # seconds CloudFormation waits for the answer (its maximum)
BUILD_TIMEOUT_MINUTES = 40  # the build stops itself well within that
CONTEXT_LIMIT = 12_000  # characters of inline context; the template's 51,200 bytes bind first
"""CodeBuild documents no length limit for an inline buildspec (ProjectSource.buildspec and
StartBuild.buildspecOverride are plain Strings in the CodeBuild API Reference); CloudFormation's
TemplateBody limit of 51,200 bytes is the one that binds, so the context is kept small."""


class PresetContext(Struct, frozen=True):
    tag: str
    archive_base64: str


def _preset_files(context: BuildContext) -> BuildContext:
    """Only what the preset's Dockerfile uses: its own folder and the shared scripts."""
    keep = (f"{PRESET}/", f"{PRESET}", "scripts/", "scripts")
    entries = tuple(e for e in context.entries if e.path.startswith(keep))
    return BuildContext(context.root, context.dockerfile, entries)


def _compact_python(path: Path, entry: ContextEntry) -> bytes | None:
    """A Python script without docstrings and type hints (the same program in fewer template
    bytes); None for any other file."""
    text = path.read_text("utf-8")
    if not text.startswith("#!/usr/bin/env python3"):
        return None
    tree = without_annotations(without_docstrings(ast.parse(text)))
    return f"#!/usr/bin/env python3\n{ast.unparse(tree)}\n".encode()


@functools.cache
def preset_context() -> PresetContext:
    """The preset's context as a deterministic gzipped tar (mtime 0) and its content tag."""
    context = _preset_files(scan_context(folder("dockerfiles"), f"{PRESET}/Dockerfile"))
    buffer = io.BytesIO()
    digest = write_archive(context, buffer, rewrite=_compact_python)
    packed = gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)
    encoded = base64.b64encode(packed).decode("ascii")
    if len(encoded) > CONTEXT_LIMIT:
        raise ValueError(f"the {PRESET} preset is too large to inline ({len(encoded)} characters)")
    tag = content_tag(digest, dockerfile=context.dockerfile)
    return PresetContext(DEFAULT_IMAGE_TAG_PREFIX + tag, encoded)


def buildspec() -> str:
    return buildspec_yaml(
        BuildspecOptions(
            dockerfile=f"{PRESET}/Dockerfile", inline_context=preset_context().archive_base64
        )
    )


def builds_default_image(config: ClusterConfig) -> bool:
    """Whether the template has the default-image build at all (no `image:` in the config)."""
    return config.image is None


def job_image(config: ClusterConfig) -> Any:
    """The image of the default job definitions."""
    if config.image is not None:
        return config.image
    return if_(CONDITION, get_att("DefaultImage", "ImageUri"), DEFAULT_IMAGE)


def conditions() -> Json:
    """Built when image builds are on (it runs on their CodeBuild project) and it is wanted."""
    return {CONDITION: {"Fn::And": [{"Condition": "ImageBuildsEnabled"}, {"Condition": ENABLED}]}}


def resources(config: ClusterConfig) -> Json:
    names = Names.of(config)
    function_name = names.lambda_function(DEFAULT_IMAGE_FUNCTION)
    arn = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
    role = iam.role(
        config,
        "lambda.amazonaws.com",
        f"Builds the default job image of batchkit cluster {names.cluster}",
        condition=CONDITION,
        statements=[
            allow(
                ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"],
                sub(arn % ("codebuild", "project/${CodeBuildProject}")),
            ),
            allow(["ecr:DescribeImages"], sub(iam.REPOSITORY_ARN)),
            # A build that outlasts one invocation is handed on to the next.
            allow(["lambda:InvokeFunction"], sub(arn % ("lambda", f"function:{function_name}"))),
            allow(iam.LOG_WRITE, iam.log_streams("DefaultImageLogGroup")),
        ],
    )
    group = log_group(names.lambda_log_group(function_name), config.log_retention_days)
    context = preset_context()
    return {
        "DefaultImageRole": role,
        "DefaultImageLogGroup": {"Condition": CONDITION, **group},
        "DefaultImageFunction": {
            "Type": "AWS::Lambda::Function",
            "Condition": CONDITION,
            "DependsOn": ["DefaultImageLogGroup"],
            "Properties": {
                "FunctionName": function_name,
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Timeout": 900,
                "MemorySize": 128,
                "Role": get_att("DefaultImageRole", "Arn"),
                "Code": {"ZipFile": lambda_source("default_image")},
            },
        },
        "DefaultImage": {
            "Type": "Custom::DefaultImage",
            "Condition": CONDITION,
            "DependsOn": ["DefaultImageLogGroup", "CodeBuildLogGroup"],
            "Properties": {
                "ServiceToken": get_att("DefaultImageFunction", "Arn"),
                "ServiceTimeout": SERVICE_TIMEOUT,
                "ProjectName": ref("CodeBuildProject"),
                "RepositoryName": ref("Repository"),
                "RepositoryUri": get_att("Repository", "RepositoryUri"),
                "ImageTag": context.tag,
                "BuildTimeoutMinutes": BUILD_TIMEOUT_MINUTES,
                "Buildspec": buildspec(),
            },
        },
    }

"""The CodeBuild buildspec that turns an uploaded build context into an image in ECR.

A pure function of `BuildspecOptions`: what is fixed for an image recipe (Dockerfile, build
arguments, platform) is rendered into the commands with `shlex.quote`; what changes per build (the
repository, the tags, the context's S3 URL) arrives as environment variables, so the rendered file
is stable and can be reviewed and golden-tested.

Fixes over ParallelCluster's buildspec: the login uses `get-login-password | docker login
--password-stdin` (AWS CLI v2; `aws ecr get-login` exists only in CLI v1), BuildKit with an inline
cache and `--cache-from` the repository's moving tag (so unchanged layers are not rebuilt, even on a
fresh CodeBuild host), and the pushed digest is echoed on a marker line the driver parses.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

import yaml
from msgspec import Struct, field

DIGEST_MARKER = "BATCHKIT_IMAGE_DIGEST="
"""Prefix of the log line that reports the pushed image as `<repository>@sha256:<digest>`."""

# The environment variables each build sets (`environmentVariablesOverride`).
ENV_REPOSITORY = "BATCHKIT_IMAGE_REPOSITORY"  # <account>.dkr.ecr.<region>.amazonaws.com/<repo>
ENV_TAG = "BATCHKIT_IMAGE_TAG"  # <name>-<content hash>
ENV_ALIAS = "BATCHKIT_IMAGE_ALIAS"  # <name>: the moving tag, also the cache source
ENV_CONTEXT_URL = "BATCHKIT_CONTEXT_URL"  # s3://<bucket>/<key>.tar
BUILD_ENVIRONMENT = (ENV_REPOSITORY, ENV_TAG, ENV_ALIAS, ENV_CONTEXT_URL)

_CONTEXT_DIR = "context"


class BuildspecOptions(Struct, frozen=True):
    """What decides the rendered buildspec: the image recipe, not the build."""

    dockerfile: str = "Dockerfile"
    build_args: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    cache: bool = True
    inline_context: str | None = None
    """The context as a base64 gzipped tar carried in the buildspec itself (the cluster's default
    image, built while its stack is created, before any bucket exists); None: fetched from S3."""


def _ref(tag_variable: str) -> str:
    return f'"${ENV_REPOSITORY}:${tag_variable}"'


def render_buildspec(options: BuildspecOptions) -> dict[str, Any]:
    """The buildspec (version 0.2) as a plain dict, ready for `yaml.safe_dump`."""
    build = [
        "docker",
        "build",
        "--file",
        shlex.quote(f"{_CONTEXT_DIR}/{options.dockerfile}"),
        "--tag",
        _ref(ENV_TAG),
        "--tag",
        _ref(ENV_ALIAS),
    ]
    if options.platform:
        build += ["--platform", shlex.quote(options.platform)]
    if options.cache:
        build += ["--cache-from", _ref(ENV_ALIAS), "--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    for name, value in sorted(options.build_args.items()):
        build += ["--build-arg", shlex.quote(f"{name}={value}")]
    build.append(_CONTEXT_DIR)
    if options.inline_context is None:
        fetch = [
            f'aws s3 cp --only-show-errors "${ENV_CONTEXT_URL}" context.tar',
            f"mkdir -p {_CONTEXT_DIR}",
            f"tar -xf context.tar -C {_CONTEXT_DIR}",
        ]
    else:
        fetch = [
            f"mkdir -p {_CONTEXT_DIR}",
            f"echo {shlex.quote(options.inline_context)} | base64 -d | tar -xz -C {_CONTEXT_DIR}",
        ]

    return {
        "version": 0.2,
        "env": {
            "shell": "bash",
            "variables": {"DOCKER_BUILDKIT": "1"},
        },
        "phases": {
            "pre_build": {
                "on-failure": "ABORT",
                "commands": [
                    f'registry="${{{ENV_REPOSITORY}%%/*}}"',
                    'aws ecr get-login-password --region "$AWS_REGION"'
                    ' | docker login --username AWS --password-stdin "$registry"',
                    *fetch,
                ],
            },
            "build": {
                "on-failure": "ABORT",
                "commands": [
                    " ".join(build),
                    f"docker push {_ref(ENV_TAG)}",
                    f"docker push {_ref(ENV_ALIAS)}",
                    "digest=\"$(docker inspect --format '{{index .RepoDigests 0}}'"
                    f' {_ref(ENV_TAG)})"',
                    f'echo "{DIGEST_MARKER}$digest"',
                ],
            },
        },
    }


def buildspec_yaml(options: BuildspecOptions) -> str:
    """The buildspec serialised as YAML (what `buildspecOverride` carries)."""
    return yaml.safe_dump(render_buildspec(options), sort_keys=False, width=1000)


def parse_digest_line(line: str) -> str | None:
    """The `<repository>@sha256:<hex>` a marker line reports, or None for any other line."""
    line = line.strip()
    if not line.startswith(DIGEST_MARKER):
        return None
    value = line[len(DIGEST_MARKER) :].strip()
    return value if "@sha256:" in value else None

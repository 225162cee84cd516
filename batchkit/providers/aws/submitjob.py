"""Pure functions from a `SubmitRequest` to the SubmitJob and RegisterJobDefinition payloads.

No AWS calls here: the provider resolves the queue and the job definition, these functions only
shape the dicts (tested directly, hostile values included).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from batchkit.errors import UsageError
from batchkit.limits import MAX_DEPENDENCIES, MAX_RETRY_ATTEMPTS, MIN_RETRY_ATTEMPTS
from batchkit.models import SPOT_RETRY_TAG, SubmitRequest
from batchkit.providers.aws.batch import S3_URL_VARIABLE

CLIENT_TOKEN_TAG = "batchkit:client-token"  # noqa: S105 (a tag key, not a secret)
CLUSTER_TAG = "batchkit:cluster"
"""Tags a cluster's stack and the job definitions batchkit registers for it on demand."""
SPOT_RETRY_DEFAULT_ATTEMPTS = 3

# Keys AWS Batch puts on a described job definition that RegisterJobDefinition does not accept.
_DESCRIBE_ONLY_KEYS = ("jobDefinitionArn", "revision", "status", "containerOrchestrationType")


def retry_strategy(request: SubmitRequest) -> dict[str, Any]:
    """`retryStrategy`; with the opt-in spot policy, retry only when the host was reclaimed.

    A Spot interruption ends the attempt with a status reason starting `Host EC2` (e.g. "Host EC2
    (instance i-...) terminated."); any other failure is the job's own and is not retried.
    """
    attempts = max(MIN_RETRY_ATTEMPTS, min(MAX_RETRY_ATTEMPTS, request.retry_attempts))
    if request.tags.get(SPOT_RETRY_TAG, "").lower() != "true":
        return {"attempts": attempts}
    return {
        "attempts": max(attempts, SPOT_RETRY_DEFAULT_ATTEMPTS) if attempts < 2 else attempts,
        "evaluateOnExit": [
            {"onStatusReason": "Host EC2*", "action": "RETRY"},
            {"onReason": "*", "action": "EXIT"},
        ],
    }


def container_overrides(request: SubmitRequest) -> dict[str, Any]:
    """The command, resources (resourceRequirements, not the deprecated vcpus/memory) and
    environment of the container. `PCLUSTER_JOB_S3_URL` from the request's environment wins
    over `s3_folder_url`."""
    environment = dict(request.environment)
    if request.s3_folder_url and S3_URL_VARIABLE not in environment:
        environment[S3_URL_VARIABLE] = request.s3_folder_url
    requirements = [
        {"type": "VCPU", "value": _number(request.resources.vcpus)},
        {"type": "MEMORY", "value": str(int(request.resources.memory))},
    ]
    if request.resources.gpus:
        requirements.append({"type": "GPU", "value": str(int(request.resources.gpus))})
    overrides: dict[str, Any] = {
        "command": list(request.command),
        "resourceRequirements": requirements,
    }
    if environment:
        overrides["environment"] = [
            {"name": name, "value": value} for name, value in environment.items()
        ]
    return overrides


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def job_tags(request: SubmitRequest) -> dict[str, str]:
    tags = {str(k): str(v) for k, v in request.tags.items()}
    if request.client_token:
        tags[CLIENT_TOKEN_TAG] = request.client_token
    return tags


def submit_job_params(request: SubmitRequest, *, queue: str, job_definition: str) -> dict[str, Any]:
    """The SubmitJob parameters for a single, array or multi-node parallel job."""
    if len(request.depends_on) > MAX_DEPENDENCIES:
        raise UsageError(
            f"job {request.name!r} depends on {len(request.depends_on)} jobs; AWS Batch accepts "
            f"at most {MAX_DEPENDENCIES}",
            hint="chain the work through fewer jobs, or depend on an array job instead",
        )
    params: dict[str, Any] = {
        "jobName": request.name,
        "jobQueue": queue,
        "jobDefinition": job_definition,
        "dependsOn": [dep.to_api() for dep in request.depends_on],
        "retryStrategy": retry_strategy(request),
    }
    overrides = container_overrides(request)
    if request.nodes > 1:
        params["nodeOverrides"] = {
            "numNodes": request.nodes,
            "nodePropertyOverrides": [{"targetNodes": "0:", "containerOverrides": overrides}],
        }
    else:
        params["containerOverrides"] = overrides
        if request.array_size is not None and request.array_size > 1:
            params["arrayProperties"] = {"size": request.array_size}
    if request.timeout is not None:
        params["timeout"] = {"attemptDurationSeconds": int(request.timeout)}
    # Only for a queue with a fair-share policy, which requires the first (SubmitJob).
    if request.share is not None:
        params["shareIdentifier"] = request.share
    if request.priority is not None:
        params["schedulingPriorityOverride"] = request.priority
    tags = job_tags(request)
    if tags:
        params["tags"] = tags
        params["propagateTags"] = True
    return params


def image_job_definition(base: Mapping[str, Any], image: str, *, cluster: str) -> dict[str, Any]:
    """A RegisterJobDefinition payload: `base` (a described job definition) with `image`,
    tagged `batchkit:cluster=<cluster>` (so that `cluster delete` finds it) and named
    `batchkit-<hash12>` after a hash of its content, tag included, so that the same image on the
    same base of the same cluster maps to the same definition and is registered once."""
    payload = {k: copy.deepcopy(v) for k, v in base.items() if k not in _DESCRIBE_ONLY_KEYS}
    payload.pop("jobDefinitionName", None)
    payload["tags"] = {CLUSTER_TAG: cluster}
    if payload.get("type") == "multinode":
        for node_range in payload.get("nodeProperties", {}).get("nodeRangeProperties", []):
            node_range.setdefault("container", {})["image"] = image
    else:
        payload.setdefault("containerProperties", {})["image"] = image
    digest = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    payload["jobDefinitionName"] = f"batchkit-{digest[:12]}"
    return payload


def content_matches(described: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """Whether an existing ACTIVE definition has the payload's image (the name carries the rest)."""
    if payload.get("type") == "multinode":
        ranges = described.get("nodeProperties", {}).get("nodeRangeProperties", [])
        wanted = payload["nodeProperties"]["nodeRangeProperties"]
        return [r.get("container", {}).get("image") for r in ranges] == [
            r.get("container", {}).get("image") for r in wanted
        ]
    return bool(
        described.get("containerProperties", {}).get("image")
        == payload["containerProperties"]["image"]
    )

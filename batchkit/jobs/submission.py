"""Submitting a job: validate, plan the job folder, upload it, then one SubmitJob.

Works through the `Provider` seam only, so the same code submits to AWS Batch and to the local
engine. Every submission carries a fresh client token: a provider that sees the same token twice
(a retried call after a timeout) returns the job it already created instead of a second one.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from batchkit.errors import UsageError
from batchkit.jobs import fairshare, fargate, multinode, validation
from batchkit.jobs.staging import StagingPlan, plan_staging
from batchkit.jobs.wrapper import FETCH_REASON_VARIABLE, IMAGE_VARIABLE
from batchkit.models import (
    EXECUTOR_CHOICES,
    EXECUTOR_TAG,
    Job,
    JobSpec,
    SubmitRequest,
)
from batchkit.providers.base import Provider

#: The vCPUs of each node of a multi-node job, for the preset images' rendezvous (hostfile
#: slots): a container's own view of its CPUs is the host's, not what the job reserved.
NODE_VCPUS_VARIABLE = "BATCHKIT_JOB_VCPUS"

#: The per-job secret of a multi-node job's launch agents (dockerfiles/scripts/batchkit-launch):
#: made fresh for each submission and sent in SubmitJob's overrides, never in the image or the job
#: definition, so that only this job's nodes can start processes on each other.
LAUNCH_KEY_VARIABLE = "BATCHKIT_LAUNCH_KEY"


def _new_secret() -> str:
    # 32 bytes from the OS's CSPRNG, as secrets.token_hex(32) makes them (the secrets module
    # imports hmac, hashlib and random: ~5 ms of every submitter's start-up)
    return os.urandom(32).hex()


def _new_token() -> str:
    return uuid.uuid4().hex


class Submitter:
    def __init__(
        self,
        provider: Provider,
        *,
        clock: Callable[[], float] = time.time,
        new_token: Callable[[], str] = _new_token,
        new_secret: Callable[[], str] = _new_secret,
    ) -> None:
        self._provider = provider
        self._clock = clock
        self._new_token = new_token
        self._new_secret = new_secret

    def plan(self, spec: JobSpec) -> StagingPlan:
        """Validate `spec` and lay out its job folder; nothing is uploaded yet. (`submit` has
        fitted a default memory to a Fargate queue first: `fargate.fit_memory`.)"""
        validation.validate_spec(spec)
        executor = spec.tags.get(EXECUTOR_TAG, "auto")
        if executor not in EXECUTOR_CHOICES:
            raise UsageError(
                f"--executor {executor!r} is not one of {', '.join(EXECUTOR_CHOICES)}",
                hint="auto runs in Docker when an image is given and an engine answers",
            )
        validation.check_inputs(spec)
        fairshare.check_share(spec, self._provider.fair_share(spec.queue))
        capacity = self._provider.queue_capacity(spec.queue)
        if spec.nodes > 1:
            multinode.check_queue(spec, capacity)
        fargate.check_fargate(spec, capacity)
        return plan_staging(
            spec,
            artifact_root=self._provider.artifact_root,
            epoch_ms=int(self._clock() * 1000),
            input_files={**_read_inputs(spec.input_files), **spec.staged_files},
        )

    def submit(self, spec: JobSpec) -> Job:
        spec = fargate.fit_memory(spec, self._provider.queue_capacity(spec.queue))
        plan = self.plan(spec)
        objects = self._provider.objects
        for item in plan.objects:
            objects.put(item.key, item.body)
        folder_url = objects.url(plan.folder_key)
        environment = {"PCLUSTER_JOB_S3_URL": folder_url, **plan.environment}
        if plan.needs_fetch:
            # for the error of an image that cannot fetch the folder (see jobs.wrapper)
            environment[IMAGE_VARIABLE] = spec.image or "(the cluster's default image)"
            environment[FETCH_REASON_VARIABLE] = plan.fetch_reason
        if spec.nodes > 1:
            environment[NODE_VCPUS_VARIABLE] = _vcpus_text(spec.resources.vcpus)
            environment[LAUNCH_KEY_VARIABLE] = self._new_secret()
        request = SubmitRequest(
            name=spec.name,
            command=plan.command,
            environment=environment,
            resources=spec.resources,
            image=spec.image,
            queue=spec.queue,
            array_size=spec.array_size,
            nodes=spec.nodes,
            depends_on=spec.depends_on,
            retry_attempts=spec.retry_attempts,
            timeout=spec.timeout,
            tags={EXECUTOR_TAG: "auto", **spec.tags},
            client_token=self._new_token(),
            s3_folder_url=folder_url,
            share=spec.share,
            priority=spec.priority,
        )
        return self._provider.submit(request)


def _vcpus_text(vcpus: float) -> str:
    return str(int(vcpus)) if float(vcpus).is_integer() else str(vcpus)


def _read_inputs(paths: tuple[str, ...]) -> Mapping[str, bytes]:
    contents: dict[str, bytes] = {}
    for path in paths:
        file = validation.check_input_file(path)
        try:
            contents[file.name] = file.read_bytes()
        except OSError as err:
            raise UsageError(
                f"-if/--input-file: cannot read {path!r}: {err.strerror}",
                hint="check the file's permissions",
            ) from err
    return contents


def read_command_file(path: str) -> bytes:
    """The bytes of a `-cf` command file."""
    file: Path = validation.check_command_file(path)
    try:
        return file.read_bytes()
    except OSError as err:
        raise UsageError(
            f"-cf/--command-file: cannot read {path!r}: {err.strerror}",
            hint="check the file's permissions",
        ) from err

"""One job per submission, whatever the network does: SubmitJob sent once, and after a failure
after which Batch may have made the job (a 5xx, a lost answer), the job looked up by its client
token before anything is sent again.

Batch has no idempotency token of its own (AWS Batch API Reference, SubmitJob), so the token
travels as a job tag (`submitjob.CLIENT_TOKEN_TAG`) and the lookup lists the queue's jobs of that
name (ListJobs' JOB_NAME filter, every status). ListJobs is eventually consistent: the lookup is
repeated over 5 s (`LOOKUP_WAITS`) before the job is taken not to exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchkit.errors import AwsError
from batchkit.models import SubmitRequest
from batchkit.providers.aws.batch import BatchGateway
from batchkit.providers.aws.errors import AmbiguousCallError
from batchkit.providers.aws.session import RetryPolicy
from batchkit.providers.aws.submitjob import CLIENT_TOKEN_TAG

CLOCK_SKEW_MS = 5 * 60 * 1000
# Before each client-token lookup (5 s in all): ListJobs is eventually consistent.
LOOKUP_WAITS = (0.5, 1.0, 1.5, 2.0)


class SubmitOnce:
    """SubmitJob through `batch`, exactly once; waits through `retry`'s sleep."""

    def __init__(self, batch: BatchGateway, retry: RetryPolicy, clock: Callable[[], float]):
        self._batch = batch
        self._retry = retry
        self._clock = clock

    def submit(self, params: dict[str, Any], request: SubmitRequest, queue: str) -> str:
        """The id of the job SubmitJob made with `params` (sent again only when the lookup
        finds none, with the same token, up to the retry policy's attempts)."""
        attempt = 0
        # Only jobs created since shortly before the first try can carry this token (the margin
        # covers clock skew between this machine and AWS).
        since = int(self._clock() * 1000) - CLOCK_SKEW_MS
        while True:
            try:
                return self._batch.submit_job(params)
            except AmbiguousCallError as err:
                attempt += 1
                token = request.client_token
                if token is None:
                    raise AwsError(
                        f"no answer from AWS Batch while submitting job {request.name!r}; it may "
                        "or may not have been created",
                        hint="check with `batchkit stat -s ALL` before submitting again",
                    ) from err
                found = self._poll(queue, request.name, token, since)
                if found is not None:
                    return found
                if attempt >= self._retry.max_attempts:
                    raise AwsError(
                        f"AWS Batch kept dropping the answer to SubmitJob for {request.name!r}",
                        hint="check the network and retry; no duplicate job was created",
                    ) from err

    def _poll(self, queue: str, name: str, token: str, since: int) -> str | None:
        """`find` after each of `LOOKUP_WAITS` (through the retry policy's sleep) until the job
        shows; None when it never did."""
        for wait in LOOKUP_WAITS:
            self._retry.sleep(wait)
            found = self.find(queue, name, token, since=since)
            if found is not None:
                return found
        return None

    def find(self, queue: str, name: str, token: str, *, since: int = 0) -> str | None:
        """The id of the job of this queue and name tagged with this client token, if any."""
        ids = self._batch.find_by_name(queue, name, created_after=since)
        for job_id, tags in self._batch.job_tags(ids).items():
            if tags.get(CLIENT_TOKEN_TAG) == token:
                return job_id
        return None

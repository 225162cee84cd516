"""The client factory every AWS gateway receives through its constructor.

`AwsSession` owns the botocore session (standard credential and region chain, `profile`, `region`,
`AWS_ENDPOINT_URL` or an explicit `endpoint_url`), the botocore configuration, and the two
policies every call obeys: the process-wide rate limiter and batchkit's jittered retries.

botocore's own retries are switched off here (`total_max_attempts: 1`), in the one place clients
are configured, and connecting is bounded (4 s) — an unreachable endpoint gets three quick
tries in all, not botocore's retries under batchkit's. botocore's
retry loop would resend SubmitJob after a read timeout or a 5xx (creating a duplicate job), knows
nothing of the shared rate budget, and sleeps for real. `Api.call` retries throttling, 5xx and
dropped connections itself, takes a rate token before each attempt, and refuses to blindly resend
a non-idempotent call that may have taken effect (`AmbiguousCallError`).

Typical use (other gateways do the same):

    session = AwsSession(profile=None, region="eu-west-1")
    batch = session.api("batch")
    page = batch.call("describe_job_queues", jobQueues=["q"])
    raw_client = session.client("ecr")       # for code that needs the botocore client itself
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from msgspec import Struct, field

from batchkit.providers.aws.errors import (
    Context,
    is_retryable,
    is_unreachable,
    lost_answer,
    may_have_acted,
    translate,
)
from batchkit.providers.aws.ratelimit import RateLimiter, Sleep, process_rate_limiter

Hook = tuple[str, Callable[..., Any]]
"""A botocore event name (e.g. `before-send.batch.SubmitJob`) and its handler."""

CONSOLE_DOMAINS = {
    "aws": "https://console.aws.amazon.com",
    "aws-cn": "https://console.amazonaws.cn",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
}


def partition_of(region: str) -> str:
    """The AWS partition of a region name."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"


class RetryPolicy(Struct):
    """Exponential backoff with full jitter: attempt k waits uniform(0, min(cap, base * 2**k))."""

    max_attempts: int = 10
    base: float = 0.25
    cap: float = 20.0
    sleep: Sleep = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    # An endpoint that cannot be connected to (refused, no route, connect timeout) is not busy
    # but wrong or down: a few quick tries, so that a mistyped AWS_ENDPOINT_URL or a dead network
    # fails in seconds instead of after the full throttling schedule.
    unreachable_attempts: int = 3
    unreachable_cap: float = 1.0

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, min(self.cap, self.base * (2**attempt)))

    def gives_up(self, err: BaseException, attempt: int) -> bool:
        if is_unreachable(err):
            return attempt >= self.unreachable_attempts
        return not is_retryable(err) or attempt >= self.max_attempts

    def delay_after(self, err: BaseException, attempt: int) -> float:
        if is_unreachable(err):
            return min(self.unreachable_cap, self.delay(attempt))
        return self.delay(attempt)


class Api:
    """One service's calls, rate-limited, retried and translated into batchkit errors."""

    def __init__(
        self,
        client: Any,
        service: str,
        limiter: RateLimiter,
        retry: RetryPolicy,
        *,
        cluster: str | None = None,
    ) -> None:
        """`client` is a botocore client, or a callable that makes one on first use (creating a
        client loads its service model: ~0.1 s a service, which a short command should only pay
        for the services it calls)."""
        self._client = client
        self.service = service
        self._limiter = limiter
        self._retry = retry
        self._cluster = cluster

    @property
    def client(self) -> Any:
        if callable(self._client) and not hasattr(self._client, "meta"):
            self._client = self._client()
        return self._client

    def call(
        self,
        operation: str,
        /,
        *,
        resource: str | None = None,
        idempotent: bool = True,
        **params: Any,
    ) -> dict[str, Any]:
        """Call `operation` (snake_case) with `params`; return the response dict.

        Retries throttling, 5xx and connection errors with jittered backoff. A failure after
        which the call may have taken effect (any 5xx, a read timeout, a connection closed after
        sending) is retried only when `idempotent`, else it raises `AmbiguousCallError` at once
        so that the caller can look before it resends (a throttle or a refused connection is
        resent: the service did nothing).
        """
        method = getattr(self.client, operation)
        api_name = self.client.meta.method_to_api_mapping.get(operation, operation)
        attempt = 0
        while True:
            self._limiter.acquire(self.service, api_name)
            try:
                return cast(dict[str, Any], method(**params))
            except Exception as err:
                attempt += 1
                ctx = Context(self.service, api_name, resource, attempt, self._cluster)
                if not idempotent and may_have_acted(err):
                    # a 5xx or a lost answer: the call may have taken effect, the caller looks
                    raise lost_answer(err, ctx) from err
                if self._retry.gives_up(err, attempt):
                    raise translate(err, ctx) from err
                self._retry.sleep(self._retry.delay_after(err, attempt))

    def paginate(
        self,
        operation: str,
        /,
        *,
        cursor_in: str = "nextToken",
        cursor_out: str = "nextToken",
        resource: str | None = None,
        **params: Any,
    ) -> Iterator[dict[str, Any]]:
        """Every page of a paginated call, each page fetched through `call`."""
        token: str | None = None
        while True:
            page_params = dict(params)
            if token:
                page_params[cursor_in] = token
            page = self.call(operation, resource=resource, **page_params)
            yield page
            next_token = page.get(cursor_out)
            if not next_token or next_token == token:
                return
            token = str(next_token)


def _with_retries() -> Any:
    """botocore's standard retry mode, 10 attempts (see `AwsSession.retrying_client`)."""
    from botocore.config import Config

    return Config(retries={"max_attempts": 10, "mode": "standard"})


class AwsSession:
    """boto3 session + botocore config + rate limiter + retry policy, built once per process.

    Thread-safe: clients are created under a lock and cached per service (botocore clients are
    themselves safe to share between threads). `hooks` are botocore event handlers registered on
    every client this session creates (tests inject faults and count calls this way).
    """

    def __init__(
        self,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        hooks: Sequence[Hook] = (),
        max_pool_connections: int = 32,
        connect_timeout: float = 4.0,
        read_timeout: float = 60.0,
        cluster: str | None = None,
        workers: int = 8,
    ) -> None:
        # botocore directly, not boto3: the same credential and region chain without importing
        # s3transfer, which a command that runs for half a second notices.
        from botocore.session import Session as BotocoreSession

        self.profile = profile
        self.endpoint_url = endpoint_url
        self.limiter = limiter or process_rate_limiter()
        self.retry = retry or RetryPolicy()
        self.cluster = cluster
        # How many calls the gateways of this session run at once (describe chunks, statuses);
        # 1 runs them one after the other in the calling thread (in-process moto needs that).
        self.workers = max(1, workers)
        self._hooks = list(hooks)
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._account_id: str | None = None
        try:
            self._boto = BotocoreSession(profile=profile)
            if profile:
                self._boto.get_scoped_config()  # an unknown profile fails here, not later
            if region:
                self._boto.set_config_variable("region", region)
            # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is what the other AWS SDKs and
            # CLI v2 read (and what batchkit's hints name), so it counts here too.
            self._region: str | None = self._boto.get_config_variable("region") or (
                os.environ.get("AWS_REGION") or None
            )
        except Exception as err:
            raise translate(err, Context("sts", "Session", profile)) from err
        self._config = self._botocore_config(max_pool_connections, connect_timeout, read_timeout)

    @staticmethod
    def _botocore_config(pool: int, connect_timeout: float, read_timeout: float) -> Any:
        from botocore.config import Config

        return Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=pool,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent_extra="batchkit",
        )

    @property
    def configured_region(self) -> str | None:
        """The region from the flag, the profile or the environment; None when there is none."""
        return str(self._region) if self._region else None

    @property
    def region(self) -> str:
        region = self._region
        if not region:
            from botocore.exceptions import NoRegionError

            err = NoRegionError()
            raise translate(err, Context("sts", "Session")) from err
        return str(region)

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def console_domain(self) -> str:
        return CONSOLE_DOMAINS.get(self.partition, CONSOLE_DOMAINS["aws"])

    def add_hook(self, event: str, handler: Callable[..., Any]) -> None:
        """Register a botocore event handler on every client, existing and future."""
        with self._lock:
            self._hooks.append((event, handler))
            for client in self._clients.values():
                client.meta.events.register(event, handler)

    def client(self, service: str) -> Any:
        """The botocore client for `service` (cached), configured as described above."""
        return self._cached_client(service, service, self._config)

    def retrying_client(self, service: str) -> Any:
        """A botocore client with botocore's own standard retries (10 attempts), for the code
        that batchkit shares with its cleanup Lambdas (`lambdas/`): it calls the client
        directly, page by page, so a throttled DeleteObjects must be retried underneath it.
        Only idempotent deletions and listings go through it."""
        return self._cached_client(
            f"{service}+retries", service, self._config.merge(_with_retries())
        )

    def _cached_client(self, key: str, service: str, config: Any) -> Any:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                try:
                    client = self._boto.create_client(
                        service,
                        region_name=self.region,
                        endpoint_url=self.endpoint_url,
                        config=config,
                    )
                except Exception as err:
                    raise translate(err, Context(service, "CreateClient")) from err
                for event, handler in self._hooks:
                    client.meta.events.register(event, handler)
                self._clients[key] = client
            return client

    def api(self, service: str) -> Api:
        """A rate-limited, retrying, error-translating caller; the client is made on first use."""
        return Api(
            lambda: self.client(service), service, self.limiter, self.retry, cluster=self.cluster
        )

    def account_id(self) -> str:
        """The caller's account id (STS GetCallerIdentity, asked once)."""
        if self._account_id is None:
            identity = self.api("sts").call("get_caller_identity")
            self._account_id = str(identity["Account"])
        return self._account_id

"""One process-wide budget for AWS API calls: a token bucket per service (and per hot operation).

AWS Batch allows about 50 transactions per second per account and region, shared by every
client; CloudWatch Logs' GetLogEvents (25 TPS) and FilterLogEvents (5 TPS) quotas cannot be
raised. batchkit therefore takes a token before every HTTP attempt (retries included), from
buckets shared by every gateway and thread of the process, and stays a little under the quotas
so that a console or another tool keeps some room.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from msgspec import Struct

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Budget(Struct, frozen=True):
    """A sustained rate (calls per second) and a burst (bucket size)."""

    rate: float
    burst: float


DEFAULT_BUDGETS: Mapping[str, Budget] = {
    "batch": Budget(rate=40.0, burst=40.0),
    "logs": Budget(rate=20.0, burst=20.0),
    "logs.FilterLogEvents": Budget(rate=4.0, burst=4.0),
    "logs.DescribeLogStreams": Budget(rate=4.0, burst=4.0),
    "cloudformation": Budget(rate=8.0, burst=8.0),
    "ecs": Budget(rate=20.0, burst=20.0),
    "ec2": Budget(rate=20.0, burst=20.0),
    "s3": Budget(rate=200.0, burst=200.0),
    "sts": Budget(rate=10.0, burst=10.0),
}
"""Keys are a service (`batch`) or `service.Operation` for a stricter per-operation quota."""

UNLISTED = Budget(rate=20.0, burst=20.0)


class TokenBucket:
    """A thread-safe token bucket. `acquire()` blocks (through the injected `sleep`) until a
    token is available; a token is reserved before sleeping, so waiters are served in order."""

    def __init__(self, budget: Budget, *, clock: Clock = time.monotonic) -> None:
        self._rate = budget.rate
        self._burst = budget.burst
        self._clock = clock
        self._tokens = budget.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token and return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._rate


class RateLimiter:
    """The buckets of one process. Use `process_rate_limiter()` unless a test injects its own."""

    def __init__(
        self,
        budgets: Mapping[str, Budget] = DEFAULT_BUDGETS,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._budgets = dict(budgets)
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self.waited = 0.0
        self.calls = 0

    def _bucket(self, key: str) -> TokenBucket | None:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None and key in self._budgets:
                bucket = self._buckets[key] = TokenBucket(self._budgets[key], clock=self._clock)
            return bucket

    def acquire(self, service: str, operation: str) -> None:
        """Wait for a token of the service's bucket and, if it has one, the operation's."""
        with self._lock:
            self._budgets.setdefault(service, UNLISTED)
        service_bucket = self._bucket(service)
        assert service_bucket is not None
        wait = service_bucket.reserve()
        operation_bucket = self._bucket(f"{service}.{operation}")
        if operation_bucket is not None:
            wait = max(wait, operation_bucket.reserve())
        with self._lock:
            self.calls += 1
            self.waited += wait
        if wait > 0:
            self._sleep(wait)


_PROCESS_LIMITER: RateLimiter | None = None
_PROCESS_LOCK = threading.Lock()


def process_rate_limiter() -> RateLimiter:
    """The one limiter every gateway of this process shares."""
    global _PROCESS_LIMITER
    with _PROCESS_LOCK:
        if _PROCESS_LIMITER is None:
            _PROCESS_LIMITER = RateLimiter()
        return _PROCESS_LIMITER

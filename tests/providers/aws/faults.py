"""Fault injection through the session seam: botocore event hooks, never patched imports."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ReadTimeoutError


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _answer(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    """An error answer as botocore would have parsed it from the service."""
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers},
    }
    return AWSResponse("https://injected", status, headers, _Raw(body)), parsed


class Faults:
    """Counts HTTP attempts and answers a share of them with an error instead of sending them.

    `hooks()` go to `AwsSession(hooks=...)`; `lost` makes a share of calls take effect and then
    lose their answer (a read timeout after the service did the work); `acted_error` makes a
    share take effect and then answer 500 (AWS does that too). `limit` caps the injected
    failures (None: no cap), so that a call can fail once and then be answered.
    """

    def __init__(
        self,
        *,
        throttle: float = 0.0,
        server_error: float = 0.0,
        lost: float = 0.0,
        acted_error: float = 0.0,
        seed: int = 1,
        operation: str = "*",
        limit: int | None = None,
    ) -> None:
        self.throttle = throttle
        self.server_error = server_error
        self.lost = lost
        self.acted_error = acted_error
        self.operation = operation
        self.limit = limit
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.sent: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.injected = {"throttle": 0, "server_error": 0, "lost": 0, "acted_error": 0}

    def _roll(self) -> float:
        """A uniform draw; 1.0 (nothing injected) once `limit` failures were injected."""
        with self._lock:
            if self.limit is not None and sum(self.injected.values()) >= self.limit:
                return 1.0
            return self._rng.random()

    def _count(self, key: str, name: str) -> None:
        with self._lock:
            if key in ("sent", "attempts"):
                counts = self.sent if key == "sent" else self.attempts
                counts[name] = counts.get(name, 0) + 1
            else:
                self.injected[key] += 1

    def before_send(self, request: Any, **kwargs: Any) -> None:
        """Counts HTTP requests that really leave the client."""
        name = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        self._count("sent", name)

    def before_call(self, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        """Answers instead of the service (before anything is sent), with a throttle or a 5xx.

        A `before-call` answer short-circuits the whole request; a `before-send` one would not
        stop in-process moto, whose own `before-send` handler has already done the work.
        """
        name = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        self._count("attempts", name)
        if self.operation not in ("*", name):
            return None
        roll = self._roll()
        if roll < self.throttle:
            self._count("throttle", name)
            return _answer(429, "TooManyRequestsException", "Too Many Requests")
        if roll < self.throttle + self.server_error:
            self._count("server_error", name)
            return _answer(500, "ServerException", "injected 5xx")
        return None

    def after_call(self, **kwargs: Any) -> None:
        """Loses the answer of a call the service did carry out (a read timeout after the work)."""
        name = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        status = kwargs.get("http_response").status_code if kwargs.get("http_response") else 200
        if status >= 300 or self.operation not in ("*", name):
            return None
        roll = self._roll() if self.lost or self.acted_error else 1.0
        if roll < self.lost:
            self._count("lost", name)
            raise ReadTimeoutError(endpoint_url="injected")
        if roll < self.lost + self.acted_error:
            self._count("acted_error", name)
            _, parsed = _answer(500, "ServerException", "injected 5xx after the work")
            raise ClientError(parsed, name)
        return None

    def hooks(self, service: str = "batch") -> list[tuple[str, Any]]:
        return [
            (f"before-call.{service}", self.before_call),
            (f"before-send.{service}", self.before_send),
            (f"after-call.{service}", self.after_call),
        ]

    def total(self, name: str | None = None) -> int:
        """API call attempts (injected failures included), of one operation or all."""
        return sum(self.attempts.values()) if name is None else self.attempts.get(name, 0)

"""Fault injection through the session seam: botocore event hooks, never patched imports."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def error_response(url: str, status: int, code: str, message: str = "injected") -> AWSResponse:
    """An HTTP error response as AWS's JSON protocols send it."""
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
    return AWSResponse(url, status, headers, _Raw(body))


class Faults:
    """Counts HTTP attempts and answers a share of them with an error instead of sending them.

    `hooks()` go to `AwsSession(hooks=...)`; `lost` makes a share of calls take effect and then
    lose their answer (a read timeout after the service did the work).
    """

    def __init__(
        self,
        *,
        throttle: float = 0.0,
        server_error: float = 0.0,
        lost: float = 0.0,
        seed: int = 1,
        operation: str = "*",
    ) -> None:
        self.throttle = throttle
        self.server_error = server_error
        self.lost = lost
        self.operation = operation
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.sent: dict[str, int] = {}
        self.injected = {"throttle": 0, "server_error": 0, "lost": 0}

    def _roll(self) -> float:
        with self._lock:
            return self._rng.random()

    def _count(self, key: str, name: str) -> None:
        with self._lock:
            if key == "sent":
                self.sent[name] = self.sent.get(name, 0) + 1
            else:
                self.injected[key] += 1

    def before_send(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        name = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        self._count("sent", name)
        if self.operation not in ("*", name):
            return None
        roll = self._roll()
        if roll < self.throttle:
            self._count("throttle", name)
            return error_response(request.url, 429, "TooManyRequestsException", "Too Many Requests")
        if roll < self.throttle + self.server_error:
            self._count("server_error", name)
            return error_response(request.url, 500, "ServerException", "injected 5xx")
        return None

    def after_call(self, **kwargs: Any) -> None:
        name = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        if self.lost and self.operation in ("*", name) and self._roll() < self.lost:
            self._count("lost", name)
            raise ReadTimeoutError(endpoint_url="injected")

    def hooks(self, service: str = "batch") -> list[tuple[str, Any]]:
        return [
            (f"before-send.{service}", self.before_send),
            (f"after-call.{service}", self.after_call),
        ]

    def total(self, name: str | None = None) -> int:
        return sum(self.sent.values()) if name is None else self.sent.get(name, 0)

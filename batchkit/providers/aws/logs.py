"""The CloudWatch Logs gateway: one GetLogEvents page at a time, as `LogPage`s.

A job's stream appears only once its container has started, so a missing group or stream is
reported as an empty page (with the caller's token echoed back), not as an error.
"""

from __future__ import annotations

from typing import Any

from batchkit.logmodel import LogEvent, LogPage
from batchkit.providers.aws.errors import AwsNotFoundError
from batchkit.providers.aws.session import Api

MAX_PAGE = 10_000
"""GetLogEvents returns at most 10,000 events (or 1 MB) a call."""


class LogsGateway:
    def __init__(self, api: Api) -> None:
        self._api = api

    def get_log_events(
        self,
        group: str,
        stream: str,
        *,
        start_from_head: bool = True,
        limit: int | None = None,
        next_token: str | None = None,
        job_id: str | None = None,
    ) -> LogPage:
        params: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": start_from_head,
        }
        if limit is not None:
            params["limit"] = max(1, min(MAX_PAGE, int(limit)))
        if next_token:
            params["nextToken"] = next_token
        try:
            response = self._api.call(
                "get_log_events", resource=f"log stream {group}:{stream}", **params
            )
        except AwsNotFoundError:
            return LogPage(events=[], next_forward_token=next_token, next_backward_token=None)
        events = [
            LogEvent(
                timestamp=int(item.get("timestamp", 0)),
                message=str(item.get("message", "")),
                job_id=job_id,
            )
            for item in response.get("events") or ()
        ]
        return LogPage(
            events=events,
            next_forward_token=response.get("nextForwardToken"),
            next_backward_token=response.get("nextBackwardToken"),
        )

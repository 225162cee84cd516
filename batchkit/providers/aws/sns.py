"""The SNS gateway: who is subscribed to a cluster's job events topic, and who has confirmed."""

from __future__ import annotations

from typing import Any

from batchkit.clustermodel import Subscription
from batchkit.providers.aws.session import Api

PENDING = "PendingConfirmation"
"""SNS API Reference, `Subscription`: the SubscriptionArn of a subscription not confirmed yet."""


class SnsGateway:
    def __init__(self, api: Api) -> None:
        self._api = api

    def subscriptions(self, topic_arn: str) -> list[Subscription]:
        """Every subscription of the topic, following NextToken (100 a page)."""
        found: list[Subscription] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"TopicArn": topic_arn}
            if token:
                params["NextToken"] = token
            page = self._api.call(
                "list_subscriptions_by_topic", resource=f"SNS topic {topic_arn}", **params
            )
            for item in page.get("Subscriptions") or ():
                found.append(
                    Subscription(
                        protocol=str(item.get("Protocol", "")),
                        endpoint=str(item.get("Endpoint", "")),
                        confirmed=item.get("SubscriptionArn") not in (PENDING, None, ""),
                    )
                )
            token = page.get("NextToken")
            if not token:
                return found

"""The SNS gateway: subscriptions of the job events topic, confirmed or pending, every page."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from batchkit.clustermodel import Subscription
from batchkit.providers.aws.session import AwsSession
from batchkit.providers.aws.sns import SnsGateway


class PagedApi:
    """What ListSubscriptionsByTopic answers on AWS: pages, and pending subscriptions."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def call(self, operation: str, /, **params: Any) -> dict[str, Any]:
        self.calls.append({"operation": operation, **params})
        if "NextToken" not in params:
            return {
                "Subscriptions": [
                    {"Protocol": "email", "Endpoint": "a@example.com", "SubscriptionArn": "arn:1"}
                ],
                "NextToken": "page2",
            }
        return {
            "Subscriptions": [
                {
                    "Protocol": "email",
                    "Endpoint": "b@example.com",
                    "SubscriptionArn": "PendingConfirmation",
                }
            ]
        }


def test_pending_subscriptions_are_unconfirmed_and_every_page_is_read() -> None:
    api = PagedApi()
    found = SnsGateway(api).subscriptions("arn:aws:sns:us-east-1:1:t")  # type: ignore[arg-type]
    assert found == [
        Subscription("email", "a@example.com", confirmed=True),
        Subscription("email", "b@example.com", confirmed=False),
    ]
    assert [c.get("NextToken") for c in api.calls] == [None, "page2"]
    assert all(c["resource"] == "SNS topic arn:aws:sns:us-east-1:1:t" for c in api.calls)


def test_subscriptions_of_a_moto_topic() -> None:
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        topic = sns.create_topic(Name="t")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
        gateway = SnsGateway(AwsSession(region="us-east-1").api("sns"))
        assert gateway.subscriptions(topic) == [
            Subscription("email", "ops@example.com", confirmed=True)
        ]

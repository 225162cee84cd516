"""The Lambdas call AWS through boto3's own clients, not an `AwsSession`, so the autouse rules
check (`tests/fixtures/aws_rules_check.py`) does not reach them by itself: here every boto3
client a test of `lambdas/` makes (the handlers' and the tests' moto clients they are handed)
gets the same hooks, reporting to the same checker, so a request AWS would refuse fails the test.
Wrapping `Session.client` rather than registering on boto3's default session: `mock_aws`
replaces that session while it runs."""

from __future__ import annotations

from typing import Any

import boto3.session
import pytest

from tests.aws_rules import RuleChecker, rule_hooks


@pytest.fixture(autouse=True)
def lambda_aws_rules(aws_rules: RuleChecker, monkeypatch: pytest.MonkeyPatch) -> None:
    make_client = boto3.session.Session.client
    hooks = rule_hooks(aws_rules)

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        made = make_client(self, *args, **kwargs)
        for event, handler in hooks:
            made.meta.events.register(event, handler)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)

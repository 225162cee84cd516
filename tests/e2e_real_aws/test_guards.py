"""The real-AWS tier's guards (these run everywhere, without AWS)."""

from __future__ import annotations

from tests.e2e_real_aws.conftest import why_not_real_aws

OPTED_IN = {"BATCHKIT_TEST_AWS_CLUSTER": "research"}


def test_nothing_runs_unless_a_cluster_is_named() -> None:
    reason = why_not_real_aws({"AWS_PROFILE": "prod"})
    assert reason and "BATCHKIT_TEST_AWS_CLUSTER" in reason


def test_an_endpoint_override_means_moto_not_aws() -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BATCH"):
        reason = why_not_real_aws({**OPTED_IN, name: "http://127.0.0.1:5000"})
        assert reason and name in reason


def test_ci_never_runs_them_unless_allowed() -> None:
    reason = why_not_real_aws({**OPTED_IN, "CI": "true"})
    assert reason and "CI" in reason
    assert why_not_real_aws({**OPTED_IN, "CI": "true", "BATCHKIT_TEST_AWS_ALLOW_CI": "1"}) is None


def test_opted_in_without_endpoint_may_try() -> None:
    assert why_not_real_aws(OPTED_IN) is None

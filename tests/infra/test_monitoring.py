"""Notifications (rule pattern, message, subscriptions), the events log, the dashboard, and
fair-share scheduling policies in the template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchkit.errors import ConfigError
from batchkit.infra.config import load_cluster_config, parse_cluster_config
from batchkit.infra.template import render_template

ROOT = Path(__file__).resolve().parents[2]
BASE = """\
name: lab
region: eu-west-1
subnets: [subnet-0123456789abcdef0]
security_groups: [sg-0123456789abcdef0]
queues:
  - name: cpu
    compute_environments: [{name: od}]
  - name: gpu-big
    gpu: true
    compute_environments: [{name: g5, instance_types: [g5]}]
"""


def template(text: str) -> dict[str, Any]:
    return render_template(parse_cluster_config(text, "lab.yaml"))


def test_rule_matches_only_this_clusters_queues_and_the_statuses_asked() -> None:
    rule = template(BASE + "notifications: {statuses: [FAILED, SUCCEEDED]}\n")["Resources"][
        "JobStateRule"
    ]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        "detail": {
            "jobQueue": [{"Ref": "JobQueueCpu"}, {"Ref": "JobQueueGpuBig"}],
            "status": ["FAILED", "SUCCEEDED"],
        },
    }


def test_default_is_failures_only() -> None:
    pattern = template(BASE)["Resources"]["JobStateRule"]["Properties"]["EventPattern"]
    assert pattern["detail"]["status"] == ["FAILED"]


def test_blocked_adds_a_queue_blocked_rule_with_its_own_message() -> None:
    resources = template(BASE + "notifications: {statuses: [FAILED, BLOCKED]}\n")["Resources"]
    assert resources["JobStateRule"]["Properties"]["EventPattern"]["detail"]["status"] == ["FAILED"]
    blocked = resources["QueueBlockedRule"]["Properties"]
    assert blocked["Name"] == "batchkit-lab-queue-blocked"
    assert blocked["EventPattern"] == {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job Queue Blocked"],
        "detail": {"jobQueue": [{"Ref": "JobQueueCpu"}, {"Ref": "JobQueueGpuBig"}]},
    }
    text = json.loads(blocked["Targets"][0]["InputTransformer"]["InputTemplate"])
    assert "queue <queue> is blocked: job <name> (<job>) stays <status>" in text
    assert "batchkit stat -c lab <job>" in text
    # The topic takes messages from both rules, and only from them.
    policy = resources["JobEventsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        {"Fn::GetAtt": ["JobStateRule", "Arn"]},
        {"Fn::GetAtt": ["QueueBlockedRule", "Arn"]},
    ]
    only_blocked = template(BASE + "notifications: {statuses: [BLOCKED]}\n")["Resources"]
    assert "JobStateRule" not in only_blocked
    assert "QueueBlockedRule" in only_blocked
    assert "QueueBlockedRule" not in template(BASE)["Resources"]


def test_message_names_job_status_reason_and_the_out_command() -> None:
    target = template(BASE)["Resources"]["JobStateRule"]["Properties"]["Targets"][0]
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"]["reason"] == "$.detail.statusReason"
    text = json.loads(transformer["InputTemplate"])  # a quoted JSON string, as SNS needs
    for placeholder in ("<name>", "<job>", "<status>", "<reason>"):
        assert placeholder in text
    assert "batchkit out <job> -c lab" in text


def test_each_address_is_subscribed_once_with_a_stable_logical_id() -> None:
    first = template(
        BASE + "notifications: {email: [a@example.com, b@example.com, a@example.com]}\n"
    )
    swapped = template(BASE + "notifications: {email: [b@example.com, a@example.com]}\n")
    subs = {k: r for k, r in first["Resources"].items() if r["Type"] == "AWS::SNS::Subscription"}
    assert sorted(r["Properties"]["Endpoint"] for r in subs.values()) == [
        "a@example.com",
        "b@example.com",
    ]
    assert all(r["Properties"]["Protocol"] == "email" for r in subs.values())
    assert all(r["Properties"]["TopicArn"] == {"Ref": "JobEventsTopic"} for r in subs.values())
    swapped_ids = {
        k for k, r in swapped["Resources"].items() if r["Type"] == "AWS::SNS::Subscription"
    }
    assert swapped_ids == set(subs)


@pytest.mark.parametrize(
    ("notifications", "expected"),
    [
        ("{email: [not-an-address]}", "notifications.email[0]"),
        ("{statuses: [EXPLODED]}", "notifications.statuses[0]"),
        ("{statuses: []}", "notifications.statuses"),
    ],
)
def test_bad_notifications_name_the_key(notifications: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        template(BASE + f"notifications: {notifications}\n")
    assert f"lab.yaml:11: {expected}" in caught.value.message


def test_every_event_goes_to_the_events_log_group_for_the_dashboard() -> None:
    resources = template(BASE)["Resources"]
    rule = resources["JobEventsLogRule"]["Properties"]
    assert rule["EventPattern"]["detail-type"] == [
        "Batch Job State Change",
        "Batch Job Queue Blocked",
    ]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["JobEventsLogGroup", "Arn"]}
    assert resources["JobEventsLogGroup"]["Properties"]["LogGroupName"] == "/batchkit/lab/events"
    policy = resources["JobEventsLogPolicy"]["Properties"]["PolicyDocument"]["Fn::Sub"]
    assert "log-group:/batchkit/lab/events:*" in policy


def test_dashboard_shows_status_queue_failures_builds_and_cleanup_errors() -> None:
    body = template(BASE)["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    assert titles[:3] == [
        "Jobs by status (state changes per 5 minutes)",
        "Jobs by queue (state changes per 5 minutes)",
        "Newest failures",
    ]
    queries = {w["properties"]["title"]: w["properties"].get("query", "") for w in widgets}
    assert "SOURCE '/batchkit/lab/events'" in queries["Newest failures"]
    assert "detail.statusReason" in queries["Newest failures"]
    metrics = {
        w["properties"]["title"]: w["properties"]["metrics"]
        for w in widgets
        if w["type"] == "metric"
    }
    assert ["AWS/CodeBuild", "FailedBuilds", "ProjectName", "batchkit-lab-images"] in metrics[
        "Image builds"
    ]
    assert ["AWS/Lambda", "Errors", "FunctionName", "batchkit-lab-empty-s3"] in metrics[
        "Cleanup Lambda errors"
    ]
    # Laid out on a 24-column grid without overlaps.
    cells = {(w["x"] + dx, w["y"]) for w in widgets for dx in range(w["width"])}
    assert len(cells) == sum(w["width"] for w in widgets)
    assert all(w["x"] + w["width"] <= 24 for w in widgets)


def test_fair_share_queue_references_its_scheduling_policy() -> None:
    config = load_cluster_config(ROOT / "examples" / "platform.yaml")
    rendered = render_template(config)
    resources = rendered["Resources"]
    policy = resources["SchedulingPolicyShared"]["Properties"]
    assert policy["Name"] == "platform_shared"
    assert policy["FairsharePolicy"] == {
        "ComputeReservation": 10,
        "ShareDecaySeconds": 3600,
        "ShareDistribution": [
            {"ShareIdentifier": "genomics", "WeightFactor": 1.0},
            {"ShareIdentifier": "imaging", "WeightFactor": 2.0},
            {"ShareIdentifier": "adhoc*", "WeightFactor": 4.0},
        ],
    }
    queue = resources["JobQueueShared"]["Properties"]
    assert queue["SchedulingPolicyArn"] == {"Ref": "SchedulingPolicyShared"}
    assert "SchedulingPolicyArn" not in resources["JobQueueQuick"]["Properties"]
    output = json.loads(rendered["Outputs"]["SchedulingPolicies"]["Value"]["Fn::Sub"])
    assert output == {"shared": "${SchedulingPolicyShared}"}


@pytest.mark.parametrize(
    ("fair_share", "expected"),
    [
        ("{shares: {}}", "queues[0].fair_share.shares"),
        ("{shares: {a: 0}}", "queues[0].fair_share.shares.a"),
        ("{shares: {'a b': 1}}", "queues[0].fair_share.shares"),
        ("{shares: {a: 1}, compute_reservation: 100}", "queues[0].fair_share.compute_reservation"),
        ("{shares: {a: 1}, share_decay_seconds: -1}", "queues[0].fair_share.share_decay_seconds"),
    ],
)
def test_bad_fair_share_names_the_key(fair_share: str, expected: str) -> None:
    text = BASE.replace(
        "    compute_environments: [{name: od}]\n",
        f"    compute_environments: [{{name: od}}]\n    fair_share: {fair_share}\n",
    )
    with pytest.raises(ConfigError) as caught:
        template(text)
    assert expected in caught.value.message

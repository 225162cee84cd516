"""Job events of this cluster's queues: e-mail notifications (EventBridge → SNS), and a log of
every event for the dashboard (EventBridge → CloudWatch Logs)."""

from __future__ import annotations

import hashlib
import json

from batchkit.infra import dashboard
from batchkit.infra.cfn import Json, get_att, ref, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names, queue_id
from batchkit.infra.storage import log_group

STATE_CHANGE = "Batch Job State Change"
# Batch User Guide, "Job queue blocked events": sent when a RUNNABLE job blocks its queue.
QUEUE_BLOCKED = "Batch Job Queue Blocked"


def _queues(config: ClusterConfig) -> list[Json]:
    return [ref(queue_id(queue)) for queue in config.queues]


def state_change_pattern(config: ClusterConfig) -> Json:
    """This cluster's queues only, the statuses asked for only."""
    return {
        "source": ["aws.batch"],
        "detail-type": [STATE_CHANGE],
        "detail": {"jobQueue": _queues(config), "status": config.notifications.job_statuses},
    }


def queue_blocked_pattern(config: ClusterConfig) -> Json:
    """A RUNNABLE job blocking one of this cluster's queues."""
    return {
        "source": ["aws.batch"],
        "detail-type": [QUEUE_BLOCKED],
        "detail": {"jobQueue": _queues(config)},
    }


def _message(text: str) -> Json:
    """An input transformer. A string template is quoted JSON (EventBridge User Guide, "Amazon
    EventBridge input transformation"); EventBridge escapes the values it puts in."""
    return {
        "InputPathsMap": {
            "job": "$.detail.jobId",
            "name": "$.detail.jobName",
            "status": "$.detail.status",
            "reason": "$.detail.statusReason",
            "queue": "$.detail.jobQueue",
        },
        "InputTemplate": json.dumps(text),
    }


def state_change_message(config: ClusterConfig) -> Json:
    """Which job, its status, the reason, and the command that prints its output."""
    cluster = config.name
    return _message(
        f"batchkit cluster {cluster}: job <name> (<job>) is <status>. "
        f"Reason: <reason>. Queue: <queue>. "
        f"Read its output with: batchkit out <job> -c {cluster}"
    )


def queue_blocked_message(config: ClusterConfig) -> Json:
    """Which queue, the job that blocks it, why, and the command that shows the job."""
    cluster = config.name
    return _message(
        f"batchkit cluster {cluster}: queue <queue> is blocked: job <name> (<job>) stays "
        f"<status>. Reason: <reason>. See the job with: batchkit stat -c {cluster} <job>"
    )


def _rule(config: ClusterConfig, name: str, what: str, pattern: Json, message: Json) -> Json:
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Name": name,
            "Description": f"{what} of batchkit cluster {config.name}",
            "State": "ENABLED",
            "EventPattern": pattern,
            "Targets": [
                {
                    "Id": "job-events-topic",
                    "Arn": ref("JobEventsTopic"),
                    "InputTransformer": message,
                }
            ],
        },
    }


def notification_rules(config: ClusterConfig) -> Json:
    """One rule per kind of event asked for, each with its own message."""
    names = Names.of(config)
    rules: Json = {}
    if config.notifications.job_statuses:
        rules["JobStateRule"] = _rule(
            config,
            names.job_state_rule,
            "Job notifications",
            state_change_pattern(config),
            state_change_message(config),
        )
    if config.notifications.blocked:
        rules["QueueBlockedRule"] = _rule(
            config,
            names.queue_blocked_rule,
            "Blocked-queue notifications",
            queue_blocked_pattern(config),
            queue_blocked_message(config),
        )
    return rules


def topic(config: ClusterConfig) -> Json:
    return {
        "Type": "AWS::SNS::Topic",
        "Properties": {
            "TopicName": Names.of(config).job_events_topic,
            "DisplayName": f"batchkit {config.name} job events",
        },
    }


def topic_policy(rules: list[str]) -> Json:
    """EventBridge may publish to the topic, for these rules only."""
    return {
        "Type": "AWS::SNS::TopicPolicy",
        "Properties": {
            "Topics": [ref("JobEventsTopic")],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "JobRulesPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": ref("JobEventsTopic"),
                        "Condition": {
                            "ArnEquals": {"aws:SourceArn": [get_att(r, "Arn") for r in rules]}
                        },
                    }
                ],
            },
        },
    }


def subscription_id(address: str) -> str:
    """A logical id that follows the address, not its position: reordering the list changes
    nothing, removing one address removes only its subscription."""
    digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()[:10]
    return f"NotificationEmail{digest}"


def subscriptions(config: ClusterConfig) -> Json:
    """Each address gets SNS's confirmation e-mail; nothing is delivered until it confirms."""
    return {
        subscription_id(address): {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": ref("JobEventsTopic"),
                "Protocol": "email",
                "Endpoint": address,
            },
        }
        for address in dict.fromkeys(config.notifications.email)
    }


def event_log_rule(config: ClusterConfig) -> Json:
    """Every state change and blocked-queue event of this cluster's queues, into the events log
    group that the dashboard's queries read."""
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Name": Names.of(config).job_event_log_rule,
            "Description": f"Job events of batchkit cluster {config.name}, for its dashboard",
            "State": "ENABLED",
            "EventPattern": {
                "source": ["aws.batch"],
                "detail-type": [STATE_CHANGE, QUEUE_BLOCKED],
                "detail": {"jobQueue": _queues(config)},
            },
            "Targets": [{"Id": "job-events-log", "Arn": get_att("JobEventsLogGroup", "Arn")}],
        },
    }


def event_log_policy(config: ClusterConfig) -> Json:
    """CloudWatch Logs lets EventBridge write to a log group only through a resource policy
    (EventBridge User Guide, "Permissions for CloudWatch Logs"): for this group only."""
    group = Names.of(config).job_events_log_group
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeWritesJobEvents",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": (
                    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                    f"log-group:{group}:*"
                ),
            }
        ],
    }
    return {
        "Type": "AWS::Logs::ResourcePolicy",
        "Properties": {
            "PolicyName": Names.of(config).job_events_log_policy,
            "PolicyDocument": sub(json.dumps(document)),
        },
    }


def resources(config: ClusterConfig) -> Json:
    names = Names.of(config)
    rules = notification_rules(config)
    return {
        "JobEventsTopic": topic(config),
        "JobEventsTopicPolicy": topic_policy(list(rules)),
        **rules,
        **subscriptions(config),
        "JobEventsLogGroup": log_group(
            names.job_events_log_group,
            config.log_retention_days,
            retain=config.keep_data_on_delete,
        ),
        "JobEventsLogPolicy": event_log_policy(config),
        "JobEventsLogRule": event_log_rule(config),
        "Dashboard": dashboard.dashboard(config),
    }

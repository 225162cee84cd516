"""Job state events (EventBridge → SNS, for optional notifications) and a CloudWatch dashboard."""

from __future__ import annotations

import json

from batchkit.infra.cfn import Json, get_att, ref, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names, queue_id


def job_state_rule(config: ClusterConfig) -> Json:
    """This cluster's Batch job state changes only: the pattern lists its own queues."""
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Name": Names.of(config).job_state_rule,
            "Description": f"Batch job state changes of batchkit cluster {config.name}",
            "State": "ENABLED",
            "EventPattern": {
                "source": ["aws.batch"],
                "detail-type": ["Batch Job State Change"],
                "detail": {"jobQueue": [ref(queue_id(queue)) for queue in config.queues]},
            },
            "Targets": [{"Id": "job-events-topic", "Arn": ref("JobEventsTopic")}],
        },
    }


def topic(config: ClusterConfig) -> Json:
    return {
        "Type": "AWS::SNS::Topic",
        "Properties": {
            "TopicName": Names.of(config).job_events_topic,
            "DisplayName": f"batchkit {config.name} job events",
        },
    }


def topic_policy() -> Json:
    """EventBridge may publish to the topic, for this rule only."""
    return {
        "Type": "AWS::SNS::TopicPolicy",
        "Properties": {
            "Topics": [ref("JobEventsTopic")],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "JobStateRulePublishes",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": ref("JobEventsTopic"),
                        "Condition": {
                            "ArnEquals": {"aws:SourceArn": get_att("JobStateRule", "Arn")}
                        },
                    }
                ],
            },
        },
    }


def dashboard_body(config: ClusterConfig) -> str:
    """Job state changes by the rule's metrics, and the newest job log lines.

    `${...}` placeholders are filled by Fn::Sub; the job log group name is literal.
    """
    names = Names.of(config)
    widgets = [
        {
            "type": "metric",
            "x": 0,
            "y": 0,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Job state changes",
                "region": "${AWS::Region}",
                "stat": "Sum",
                "period": 300,
                "metrics": [
                    ["AWS/Events", "MatchedEvents", "RuleName", names.job_state_rule],
                    ["AWS/SNS", "NumberOfMessagesPublished", "TopicName", names.job_events_topic],
                ],
            },
        },
        {
            "type": "log",
            "x": 12,
            "y": 0,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Newest job log lines",
                "region": "${AWS::Region}",
                "query": f"SOURCE '{names.job_log_group}' | fields @timestamp, "
                "@logStream, @message | sort @timestamp desc | limit 100",
                "view": "table",
            },
        },
    ]
    return json.dumps({"widgets": widgets}, indent=1)


def dashboard(config: ClusterConfig) -> Json:
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": Names.of(config).prefix,
            "DashboardBody": sub(dashboard_body(config)),
        },
    }


def resources(config: ClusterConfig) -> Json:
    return {
        "JobEventsTopic": topic(config),
        "JobEventsTopicPolicy": topic_policy(),
        "JobStateRule": job_state_rule(config),
        "Dashboard": dashboard(config),
    }

"""The cluster's CloudWatch dashboard: jobs by status and by queue over time and the newest
failures (Logs Insights over the job events log group), blocked queues, image builds, cleanup
Lambda errors and the newest job log lines.

The body is JSON text for Fn::Sub: `${AWS::Region}` is filled in by CloudFormation; every name in
it is literal (CloudWatch User Guide, "Dashboard Body Structure and Syntax").
"""

from __future__ import annotations

import json
from typing import Any

from batchkit.infra import cleanup
from batchkit.infra.cfn import Json, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names

WIDTH = 24
STATE_CHANGES = "filter `detail-type` = 'Batch Job State Change'"


def _insights(title: str, group: str, query: str, view: str, width: int = 12) -> Json:
    return {
        "type": "log",
        "width": width,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "query": f"SOURCE '{group}' | {query}",
            "view": view,
        },
    }


def _metrics(title: str, metrics: list[list[Any]], width: int = 12) -> Json:
    return {
        "type": "metric",
        "width": width,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "stat": "Sum",
            "period": 300,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def widgets(config: ClusterConfig) -> list[Json]:
    names = Names.of(config)
    events = names.job_events_log_group
    project = names.codebuild_project
    functions = [names.lambda_function(purpose) for _, purpose, _ in cleanup.FUNCTIONS.values()]
    placed: list[Json] = [
        _insights(
            "Jobs by status (state changes per 5 minutes)",
            events,
            f"{STATE_CHANGES} | stats count(*) by detail.status, bin(5m)",
            "bar",
        ),
        _insights(
            "Jobs by queue (state changes per 5 minutes)",
            events,
            f"{STATE_CHANGES} | stats count(*) by detail.jobQueue, bin(5m)",
            "bar",
        ),
        _insights(
            "Newest failures",
            events,
            f"{STATE_CHANGES} and detail.status = 'FAILED' | fields @timestamp, "
            "detail.jobName as job, detail.jobId as id, detail.statusReason as reason, "
            "detail.container.exitCode as exitCode | sort @timestamp desc | limit 50",
            "table",
            WIDTH,
        ),
        _insights(
            "Blocked queues",
            events,
            "filter `detail-type` = 'Batch Job Queue Blocked' | fields @timestamp, "
            "detail.jobQueue as queue, detail.jobName as job, detail.statusReason as reason "
            "| sort @timestamp desc | limit 20",
            "table",
        ),
        _metrics(
            "Image builds",
            [
                ["AWS/CodeBuild", "SucceededBuilds", "ProjectName", project],
                ["AWS/CodeBuild", "FailedBuilds", "ProjectName", project],
            ],
        ),
        _metrics(
            "Cleanup Lambda errors",
            [
                ["AWS/Lambda", metric, "FunctionName", function]
                for function in functions
                for metric in ("Errors", "Invocations")
            ],
        ),
        _insights(
            "Newest job log lines",
            names.job_log_group,
            "fields @timestamp, @logStream, @message | sort @timestamp desc | limit 100",
            "table",
        ),
    ]
    x = y = 0
    for widget in placed:
        if x + widget["width"] > WIDTH:
            x, y = 0, y + 6
        widget.update(x=x, y=y)
        x += widget["width"]
    return placed


def dashboard_body(config: ClusterConfig) -> str:
    return json.dumps({"widgets": widgets(config)}, indent=1)


def dashboard(config: ClusterConfig) -> Json:
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": Names.of(config).dashboard,
            "DashboardBody": sub(dashboard_body(config)),
        },
    }

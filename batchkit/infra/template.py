"""One cluster config → one CloudFormation template (a dict; `to_yaml` for text).

The parameters and outputs follow contract C4, so awsbatch-cli 1.6.0 can drive a batchkit cluster
and batchkit's discovery can read it. Three parameters switch off what some environments cannot
run (moto cannot run CodeBuild projects, multinode job definitions or custom resources, so the
offline tests deploy with all three off); real clusters keep them on:

- `EnableImageBuilds`: the CodeBuild project (with its role and log group) for image builds;
- `EnableMultiNode`: the default multi-node parallel job definition;
- `CleanupOnDelete`: custom resources whose Lambdas empty the bucket prefix and the ECR repository
  when the stack is deleted from anywhere (console, other tools). Absent when the config keeps data.
- `BuildDefaultImage` (with image builds on): a custom resource that builds the default job image
  (`defaultimage.py`). Absent when the config names its `image:`.
"""

from __future__ import annotations

import json
from typing import Any

from batchkit.infra import (
    access,
    cleanup,
    compute,
    defaultimage,
    fairshare,
    iam,
    monitoring,
    storage,
)
from batchkit.infra.cfn import Json, get_att, if_, ref, sub, to_yaml
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names, compute_environment_id, queue_id
from batchkit.infra.queueconfig import QueueConfig
from batchkit.version import __version__

BATCH_CLI_REQUIREMENTS = "aws-parallelcluster-awsbatch-cli<2.0.0"
CODEBUILD_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
PLACEHOLDER_BUILDSPEC = """\
version: 0.2
phases:
  build:
    commands:
      - echo "Builds are started by 'batchkit image build' with their own source and buildspec."
"""

FEATURES = {
    # parameter: (condition, description)
    "EnableImageBuilds": (
        "ImageBuildsEnabled",
        "Create the CodeBuild project that `batchkit image build` uses",
    ),
    "EnableMultiNode": (
        "MultiNodeEnabled",
        "Register the default multi-node parallel job definition",
    ),
    "CleanupOnDelete": (
        "CleanupOnDeleteEnabled",
        "Empty the bucket prefix and the ECR repository when the stack is deleted",
    ),
    defaultimage.PARAMETER: (
        defaultimage.ENABLED,
        "Build the default job image (the al2023 preset) into the repository at create",
    ),
}


def feature_defaults(config: ClusterConfig) -> dict[str, bool]:
    features = config.features
    defaults = {
        "EnableImageBuilds": features.image_builds,
        "EnableMultiNode": features.multinode,
        "CleanupOnDelete": features.cleanup_on_delete,
    }
    if config.keep_data_on_delete:
        del defaults["CleanupOnDelete"]
    if defaultimage.builds_default_image(config):
        defaults[defaultimage.PARAMETER] = features.default_image
    return defaults


def parameters(config: ClusterConfig) -> Json:
    names = Names.of(config)
    result: Json = {
        "Scheduler": {
            "Type": "String",
            "Default": "awsbatch",
            "AllowedValues": ["awsbatch"],
            "Description": "Read by awsbatch-cli: this cluster runs AWS Batch",
        },
        "ResourcesS3Bucket": {
            "Type": "String",
            "AllowedPattern": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            "Description": "Name of the bucket the stack creates "
            f"(batchkit uses batchkit-{names.cluster}-<account>-<region>)",
        },
        "ArtifactS3RootDirectory": {
            "Type": "String",
            "Default": f"batchkit/{names.cluster}",
            "AllowedPattern": r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$",
            "Description": "Key prefix of everything the cluster stores in the bucket",
        },
        "BatchServiceRole": {
            "Type": "String",
            "Default": "",
            "Description": "ARN of a Batch service role for the compute environments; empty: "
            "Batch's service-linked role",
        },
        "ProxyServer": {
            "Type": "String",
            "Default": "NONE",
            "Description": "Read by awsbatch-cli: an HTTP proxy for the CLI, or NONE",
        },
    }
    for parameter, default in feature_defaults(config).items():
        result[parameter] = {
            "Type": "String",
            "Default": "true" if default else "false",
            "AllowedValues": ["true", "false"],
            "Description": FEATURES[parameter][1],
        }
    return result


def conditions(config: ClusterConfig) -> Json:
    result: Json = {
        FEATURES[parameter][0]: {"Fn::Equals": [ref(parameter), "true"]}
        for parameter in feature_defaults(config)
    }
    if defaultimage.builds_default_image(config):
        result.update(defaultimage.conditions())
    result["HasBatchServiceRole"] = {"Fn::Not": [{"Fn::Equals": [ref("BatchServiceRole"), ""]}]}
    return result


def codebuild(config: ClusterConfig) -> Json:
    names = Names.of(config)
    log_group = storage.log_group(
        names.codebuild_log_group, config.log_retention_days, retain=config.keep_data_on_delete
    )
    return {
        "CodeBuildLogGroup": {"Condition": "ImageBuildsEnabled", **log_group},
        "CodeBuildProject": {
            "Type": "AWS::CodeBuild::Project",
            "Condition": "ImageBuildsEnabled",
            "Properties": {
                "Name": names.codebuild_project,
                "Description": f"Docker image builds of batchkit cluster {names.cluster}",
                "ServiceRole": get_att("CodeBuildRole", "Arn"),
                "Artifacts": {"Type": "NO_ARTIFACTS"},
                "Source": {"Type": "NO_SOURCE", "BuildSpec": PLACEHOLDER_BUILDSPEC},
                "Environment": {
                    "Type": "LINUX_CONTAINER",
                    "ComputeType": "BUILD_GENERAL1_MEDIUM",
                    "Image": CODEBUILD_IMAGE,
                    "PrivilegedMode": True,
                    "EnvironmentVariables": [
                        {"Name": "AWS_ACCOUNT_ID", "Value": ref("AWS::AccountId")},
                        {"Name": "IMAGE_REPO_NAME", "Value": ref("Repository")},
                        {"Name": "IMAGE_REPO_URI", "Value": get_att("Repository", "RepositoryUri")},
                    ],
                },
                "Cache": {"Type": "LOCAL", "Modes": ["LOCAL_DOCKER_LAYER_CACHE"]},
                "LogsConfig": {
                    "CloudWatchLogs": {"Status": "ENABLED", "GroupName": ref("CodeBuildLogGroup")}
                },
                "TimeoutInMinutes": 60,
            },
        },
    }


def _json_output(entries: list[tuple[str, str]]) -> Json:
    """A JSON object output whose values are `Ref`s, e.g. `{"cpu": "<queue ARN>"}`."""
    return sub(json.dumps({key: f"${{{logical}}}" for key, logical in entries}))


def queue_capacity(queue: QueueConfig) -> str:
    if queue.is_fargate:
        return "FARGATE"
    return "SPOT" if queue.spot_only else "EC2"


def outputs(config: ClusterConfig) -> Json:
    names = Names.of(config)
    default = config.resolved_default_queue
    queues = [default, *(q for q in config.queues if q is not default)]
    result: dict[str, Any] = {
        "BatchComputeEnvironmentArn": ref(
            compute_environment_id(default, default.compute_environments[0])
        ),
        "BatchJobQueueArn": ref(queue_id(default)),
        "BatchJobDefinitionArn": ref("JobDefinition"),
        "BatchJobDefinitionMnpArn": {
            "Condition": "MultiNodeEnabled",
            "Value": ref("JobDefinitionMnp"),
        },
        "HeadNodePrivateIP": "NONE",
        "BatchCliRequirements": BATCH_CLI_REQUIREMENTS,
        "BatchkitVersion": __version__,
        "BucketName": ref("Bucket"),
        "EcrRepositoryUri": get_att("Repository", "RepositoryUri"),
        "EcrRepositoryName": ref("Repository"),
        "CodeBuildProjectName": if_("ImageBuildsEnabled", ref("CodeBuildProject"), "NONE"),
        "JobLogGroup": ref("JobLogGroup"),
        "JobRoleArn": get_att("JobRole", "Arn"),
        "ExecutionRoleArn": get_att("ExecutionRole", "Arn"),
        "JobQueues": _json_output([(q.name, queue_id(q)) for q in queues]),
        "ComputeEnvironments": _json_output(
            [
                (names.compute_environment(q, ce), compute_environment_id(q, ce))
                for q in queues
                for ce in q.compute_environments
            ]
        ),
        "JobEventsTopicArn": ref("JobEventsTopic"),
        "JobEventsLogGroup": ref("JobEventsLogGroup"),
        "SchedulingPolicies": _json_output(
            [(q.name, fairshare.policy_id(q)) for q in queues if q.fair_share is not None]
        ),
        # What each queue runs on, so that a multi-node job is checked before it is sent
        # (batchkit.jobs.multinode): FARGATE, SPOT (Spot only) or EC2.
        "QueueCapacity": json.dumps({q.name: queue_capacity(q) for q in queues}),
    }
    efa = [q for q in queues if q in compute.efa_queues(config)]
    fargate = [q for q in queues if q.is_fargate]
    if fargate:
        # Queue name → the definition its jobs get (Batch refuses an EC2 one on Fargate).
        result["FargateJobDefinitions"] = _json_output(
            [(q.name, "JobDefinitionFargate") for q in fargate]
        )
    if efa:
        # Queue name → the multi-node job definition with the EFA device, for those queues.
        result["EfaJobDefinitions"] = {
            "Condition": "MultiNodeEnabled",
            "Value": _json_output([(q.name, "JobDefinitionMnpEfa") for q in efa]),
        }
    return {
        key: value if isinstance(value, dict) and "Value" in value else {"Value": value}
        for key, value in result.items()
    }


def render_template(config: ClusterConfig) -> Json:
    """The whole template for `config` (pure: same config, same template)."""
    cleanup_enabled = not config.keep_data_on_delete
    resources: Json = {}
    resources.update(storage.resources(config))
    resources.update(iam.resources(config, cleanup=cleanup_enabled))
    resources.update(compute.resources(config))
    resources.update(codebuild(config))
    resources.update(monitoring.resources(config))
    resources.update(access.resources(config))
    if cleanup_enabled:
        resources.update(cleanup.resources(config))
    if defaultimage.builds_default_image(config):
        resources.update(defaultimage.resources(config))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"batchkit cluster {config.name} (batchkit {__version__})",
        "Metadata": {"batchkit": {"cluster": config.name, "version": __version__}},
        "Parameters": parameters(config),
        "Conditions": conditions(config),
        "Resources": resources,
        "Outputs": {**outputs(config), **access.outputs()},
    }


def render_yaml(config: ClusterConfig) -> str:
    return to_yaml(render_template(config))

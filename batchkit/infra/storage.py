"""The cluster's data: S3 bucket and its policy, ECR repository, and the job log group."""

from __future__ import annotations

import json

from batchkit.infra.cfn import Json, get_att, ref, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names

DEFAULT_IMAGE_TAG_PREFIX = "default-"
"""Tags of the images `defaultimage` builds."""


def deletion_policy(config: ClusterConfig) -> Json:
    """Retain data on stack deletion when the config asks for it.

    DeletionPolicy cannot depend on a parameter, so this is decided at render time.
    """
    policy = "Retain" if config.keep_data_on_delete else "Delete"
    return {"DeletionPolicy": policy, "UpdateReplacePolicy": "Retain"}


def bucket(config: ClusterConfig) -> Json:
    """Encrypted, private, bucket-owner-only; job folders expire, stale uploads are aborted."""
    return {
        "Type": "AWS::S3::Bucket",
        **deletion_policy(config),
        "Properties": {
            "BucketName": ref("ResourcesS3Bucket"),
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "expire-job-folders",
                        "Status": "Enabled",
                        "Prefix": sub("${ArtifactS3RootDirectory}/batch/"),
                        "ExpirationInDays": config.job_folder_expiry_days,
                    },
                    {
                        # Once its image is in ECR a build context is never read again.
                        "Id": "expire-image-contexts",
                        "Status": "Enabled",
                        "Prefix": sub("${ArtifactS3RootDirectory}/images/"),
                        "ExpirationInDays": 7,
                    },
                    {
                        "Id": "abort-incomplete-uploads",
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                    },
                ]
            },
        },
    }


def bucket_policy() -> Json:
    """Refuse every request that does not use TLS."""
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": ref("Bucket"),
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [
                            get_att("Bucket", "Arn"),
                            sub("${Bucket.Arn}/*"),
                        ],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        },
    }


def repository_lifecycle(keep_images: int) -> str:
    """Untagged images go after a day; the newest 3 default images stay; of the rest, the newest
    `keep_images` stay."""
    rules = [
        {
            "rulePriority": 1,
            "description": "expire untagged images (superseded layers, failed pushes)",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        },
        {
            # The cluster's default image is kept whatever else is pushed: ECR never lets a
            # lower-priority rule expire an image that matches a higher one's tag selection
            # (Amazon ECR User Guide, "Lifecycle policy evaluation rules").
            "rulePriority": 2,
            "description": "keep the newest 3 default job images",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": [DEFAULT_IMAGE_TAG_PREFIX],
                "countType": "imageCountMoreThan",
                "countNumber": 3,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 3,
            "description": f"keep the newest {keep_images} images",
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": keep_images,
            },
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": rules}, indent=2)


def repository(config: ClusterConfig) -> Json:
    return {
        "Type": "AWS::ECR::Repository",
        **deletion_policy(config),
        "Properties": {
            "RepositoryName": Names.of(config).repository,
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "ImageTagMutability": "MUTABLE",
            "EncryptionConfiguration": {"EncryptionType": "AES256"},
            "LifecyclePolicy": {"LifecyclePolicyText": repository_lifecycle(config.keep_images)},
        },
    }


def log_group(name: str, retention_days: int, *, retain: bool = False) -> Json:
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Retain" if retain else "Delete",
        "UpdateReplacePolicy": "Retain" if retain else "Delete",
        "Properties": {"LogGroupName": name, "RetentionInDays": retention_days},
    }


def resources(config: ClusterConfig) -> Json:
    names = Names.of(config)
    return {
        "Bucket": bucket(config),
        "BucketPolicy": bucket_policy(),
        "Repository": repository(config),
        "JobLogGroup": log_group(
            names.job_log_group, config.log_retention_days, retain=config.keep_data_on_delete
        ),
    }

"""The rendered template: golden files, cfn-lint, least-privilege IAM, C4 parameters/outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint

from batchkit import __version__
from batchkit.clusters.stacktemplate import (
    TEMPLATE_BODY_LIMIT,
    TEMPLATE_URL_LIMIT,
    bootstrap_body,
    template_body,
)
from batchkit.infra.config import ClusterConfig, load_cluster_config, parse_cluster_config
from batchkit.infra.naming import Names
from batchkit.infra.template import render_template, render_yaml

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
CONFIGS = {
    "minimal": Path(__file__).parent / "minimal.yaml",
    "spot-fargate": ROOT / "examples" / "spot-fargate.yaml",
    "gpu-efs": ROOT / "examples" / "gpu-efs.yaml",
    "example": ROOT / "examples" / "batchkit.yaml",
    "platform": ROOT / "examples" / "platform.yaml",
    "mpi": ROOT / "examples" / "mpi.yaml",
}


def config_of(name: str) -> ClusterConfig:
    return load_cluster_config(CONFIGS[name])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_template_matches_its_golden_file(name: str) -> None:
    """Regenerate after an intended change with BATCHKIT_UPDATE_GOLDEN=1."""
    text = render_yaml(config_of(name))
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("BATCHKIT_UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}: run with BATCHKIT_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8"), (
        f"{name}: template differs from {golden.name}; if intended, BATCHKIT_UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cfn_lint_reports_no_errors(name: str) -> None:
    config = config_of(name)
    matches = lint(render_yaml(config), regions=[config.region])
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches]
    errors = [e for e in errors if e.startswith("E")]
    assert errors == []


# Actions without resource-level permissions, the only ones that may act on "*".
STAR_RESOURCE_ALLOWED = {"ecr:GetAuthorizationToken"}


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for inline in resource["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                found.append((logical, statement))
    return found


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_iam_has_no_wildcard_actions_and_star_resources_only_where_needed(name: str) -> None:
    template = render_template(config_of(name))
    statements = _statements(template)
    assert len(statements) >= 8
    for role, statement in statements:
        actions = _listed(statement["Action"])
        assert all("*" not in action for action in actions), (role, actions)
        if "*" in _listed(statement["Resource"]):
            assert set(actions) <= STAR_RESOURCE_ALLOWED, (role, actions)


def test_roles_are_scoped_to_the_cluster_path_and_carry_the_boundary() -> None:
    template = render_template(config_of("gpu-efs"))
    roles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        assert role["Properties"]["Path"] == "/batchkit/ml-training/"
        assert role["Properties"]["PermissionsBoundary"] == (
            "arn:aws:iam::123456789012:policy/MLBoundary"
        )


def test_job_role_reaches_only_the_job_folders_and_the_efs_file_systems() -> None:
    template = render_template(config_of("gpu-efs"))
    text = json.dumps(template["Resources"]["JobRole"])
    assert "${ArtifactS3RootDirectory}/batch/*" in text
    assert "file-system/fs-0123456789abcdef0" in text
    assert "file-system/fs-0fedcba9876543210" in text
    assert "s3:DeleteObject" not in text


def test_c4_parameters_and_outputs_are_present() -> None:
    template = render_template(config_of("example"))
    parameters = template["Parameters"]
    assert parameters["Scheduler"]["Default"] == "awsbatch"
    assert parameters["ArtifactS3RootDirectory"]["Default"] == "batchkit/research"
    assert parameters["ProxyServer"]["Default"] == "NONE"
    assert "ResourcesS3Bucket" in parameters
    outputs = template["Outputs"]
    for key in (
        "BatchComputeEnvironmentArn",
        "BatchJobQueueArn",
        "BatchJobDefinitionArn",
        "BatchJobDefinitionMnpArn",
        "HeadNodePrivateIP",
        "BatchCliRequirements",
        "BatchkitVersion",
        "BucketName",
        "EcrRepositoryUri",
        "EcrRepositoryName",
        "CodeBuildProjectName",
        "JobLogGroup",
        "JobRoleArn",
        "JobQueues",
        "ComputeEnvironments",
    ):
        assert key in outputs, key
    assert outputs["BatchkitVersion"]["Value"] == __version__
    assert outputs["HeadNodePrivateIP"]["Value"] == "NONE"
    assert outputs["BatchCliRequirements"]["Value"] == "aws-parallelcluster-awsbatch-cli<2.0.0"
    assert outputs["BatchJobDefinitionMnpArn"]["Condition"] == "MultiNodeEnabled"
    queues = outputs["JobQueues"]["Value"]["Fn::Sub"]
    assert list(json.loads(queues)) == ["cpu", "gpu", "fargate"]  # the default queue first


def test_default_queue_leads_the_outputs() -> None:
    config = config_of("spot-fargate")
    outputs = render_template(config)["Outputs"]
    assert outputs["BatchJobQueueArn"]["Value"] == {"Ref": "JobQueueBatch"}
    assert outputs["BatchComputeEnvironmentArn"]["Value"] == {"Ref": "ComputeEnvironmentBatchSpot"}


def test_job_definitions_log_to_the_cluster_group_and_have_a_retry_strategy() -> None:
    resources = render_template(config_of("gpu-efs"))["Resources"]
    container = resources["JobDefinition"]["Properties"]
    assert container["RetryStrategy"] == {"Attempts": 1}
    log = container["ContainerProperties"]["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    assert log["Options"]["awslogs-group"] == {"Ref": "JobLogGroup"}
    mounts = {m["ContainerPath"] for m in container["ContainerProperties"]["MountPoints"]}
    assert mounts == {"/home/shared", "/datasets", "/scratch"}
    assert resources["JobDefinitionMnp"]["Condition"] == "MultiNodeEnabled"
    assert resources["JobDefinitionMnp"]["Properties"]["RetryStrategy"] == {"Attempts": 1}


def test_fargate_environments_get_no_instance_settings() -> None:
    resources = render_template(config_of("spot-fargate"))["Resources"]
    fargate = resources["ComputeEnvironmentSmallFargateSpot"]["Properties"]["ComputeResources"]
    assert fargate["Type"] == "FARGATE_SPOT"
    assert not {"InstanceTypes", "InstanceRole", "LaunchTemplate", "MinvCpus"} & set(fargate)
    spot = resources["ComputeEnvironmentBatchSpot"]["Properties"]["ComputeResources"]
    assert spot["BidPercentage"] == 70
    assert spot["AllocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert "SpotIamFleetRole" not in spot
    legacy = resources["ComputeEnvironmentLegacySpotBestfit"]["Properties"]["ComputeResources"]
    assert legacy["SpotIamFleetRole"] == {"Fn::GetAtt": ["SpotFleetRole", "Arn"]}


def test_gpu_queues_use_the_nvidia_ami_and_others_do_not() -> None:
    resources = render_template(config_of("gpu-efs"))["Resources"]
    gpu = resources["ComputeEnvironmentGpuG5"]["Properties"]["ComputeResources"]
    cpu = resources["ComputeEnvironmentCpuOndemand"]["Properties"]["ComputeResources"]
    assert gpu["Ec2Configuration"][0]["ImageType"] == "ECS_AL2023_NVIDIA"
    assert cpu["Ec2Configuration"][0]["ImageType"] == "ECS_AL2023"


def test_fsx_volumes_are_mounted_by_user_data_with_quoted_values() -> None:
    resources = render_template(config_of("gpu-efs"))["Resources"]
    data = resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    script = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert "Content-Type: multipart/mixed" in script
    assert (
        "mount -t lustre -o relatime,flock "
        "'fs-0aaaabbbbccccdddd.fsx.${AWS::Region}.${AWS::URLSuffix}@tcp:/fsx2xhbv' "
        "/mnt/batchkit/scratch"
    ) in script
    assert data["MetadataOptions"]["HttpTokens"] == "required"


def test_keeping_data_retains_storage_and_drops_the_cleanup_resources() -> None:
    kept = render_template(config_of("gpu-efs"))
    for logical in ("Bucket", "Repository", "JobLogGroup"):
        assert kept["Resources"][logical]["DeletionPolicy"] == "Retain"
    assert "CleanupOnDelete" not in kept["Parameters"]
    assert not [r for r in kept["Resources"].values() if r["Type"].startswith("Custom::")]
    cleaned = render_template(config_of("minimal"))
    assert cleaned["Resources"]["Bucket"]["DeletionPolicy"] == "Delete"
    custom = {
        k: r for k, r in cleaned["Resources"].items() if r["Type"].startswith("Custom::Empty")
    }
    assert set(custom) == {"EmptyEcrOnDelete", "EmptyS3OnDelete"}
    assert all(r["Condition"] == "CleanupOnDeleteEnabled" for r in custom.values())


def test_bucket_is_private_encrypted_tls_only_and_expires_job_folders() -> None:
    resources = render_template(config_of("minimal"))["Resources"]
    bucket = resources["Bucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rule = bucket["LifecycleConfiguration"]["Rules"][0]
    assert rule["Prefix"] == {"Fn::Sub": "${ArtifactS3RootDirectory}/batch/"}
    assert rule["ExpirationInDays"] == 30
    deny = resources["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    repository = resources["Repository"]["Properties"]
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]


def test_event_rule_matches_only_this_clusters_queues() -> None:
    resources = render_template(config_of("example"))["Resources"]
    pattern = resources["JobStateRule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.batch"]
    assert pattern["detail"]["jobQueue"] == [
        {"Ref": "JobQueueCpu"},
        {"Ref": "JobQueueGpu"},
        {"Ref": "JobQueueFargate"},
    ]


def test_rendering_is_pure_and_yaml_round_trips() -> None:
    config = config_of("example")
    assert render_yaml(config) == render_yaml(config)
    assert yaml.safe_load(render_yaml(config)) == render_template(config)


def test_toggles_are_parameters_with_user_facing_defaults() -> None:
    text = CONFIGS["minimal"].read_text() + "features: {image_builds: false}\n"
    parameters = render_template(parse_cluster_config(text))["Parameters"]
    assert parameters["EnableImageBuilds"]["Default"] == "false"
    assert parameters["EnableMultiNode"]["Default"] == "true"
    assert parameters["CleanupOnDelete"]["AllowedValues"] == ["true", "false"]


def test_example_shipped_with_init_is_the_examples_file() -> None:
    packaged = ROOT / "batchkit" / "infra" / "example.yaml"
    assert packaged.read_text() == (ROOT / "examples" / "batchkit.yaml").read_text()


@pytest.mark.parametrize("name", ["minimal", "example", "spot-fargate", "gpu-efs"])
def test_job_containers_cannot_reach_the_instance_metadata(name: str) -> None:
    resources = render_template(config_of(name))["Resources"]
    data = resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    user_data = data["UserData"]["Fn::Base64"]
    text = user_data["Fn::Sub"] if isinstance(user_data, dict) else user_data
    assert "echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config" in text
    scripts = text.count("Content-Type: text/x-shellscript")
    assert text.startswith("MIME-Version: 1.0") and scripts == (2 if name == "gpu-efs" else 1)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_example_reaches_cloudformation_inline_or_from_its_bucket(name: str) -> None:
    """TemplateBody takes at most 51,200 bytes, TemplateURL 1 MB (CloudFormation API Reference,
    CreateStack): a template too large inline is created in two steps, the first of which (the
    bucket) must fit inline and declare every parameter the full template does."""
    config = config_of(name)
    body = template_body(config)
    assert len(body.encode()) <= TEMPLATE_URL_LIMIT
    bootstrap = json.loads(bootstrap_body(config))
    assert len(bootstrap_body(config).encode()) <= TEMPLATE_BODY_LIMIT
    assert set(bootstrap["Resources"]) == {"Bucket", "BucketPolicy"}
    assert bootstrap["Parameters"] == json.loads(body)["Parameters"]
    assert bootstrap["Resources"]["Bucket"] == json.loads(body)["Resources"]["Bucket"]


def test_without_an_image_the_cluster_builds_its_default_image_and_its_jobs_use_it() -> None:
    template = render_template(config_of("minimal"))
    resources = template["Resources"]
    built = resources["DefaultImage"]
    assert built["Condition"] == "DefaultImageBuilt"
    assert template["Conditions"]["DefaultImageBuilt"] == {
        "Fn::And": [{"Condition": "ImageBuildsEnabled"}, {"Condition": "DefaultImageEnabled"}]
    }
    assert template["Parameters"]["BuildDefaultImage"]["Default"] == "true"
    properties = built["Properties"]
    assert properties["ServiceToken"] == {"Fn::GetAtt": ["DefaultImageFunction", "Arn"]}
    assert properties["ProjectName"] == {"Ref": "CodeBuildProject"}
    assert properties["ImageTag"].startswith("default-") and len(properties["ImageTag"]) == 24
    assert int(properties["ServiceTimeout"]) <= 3600
    image = resources["JobDefinition"]["Properties"]["ContainerProperties"]["Image"]
    assert image == {
        "Fn::If": [
            "DefaultImageBuilt",
            {"Fn::GetAtt": ["DefaultImage", "ImageUri"]},
            "public.ecr.aws/amazonlinux/amazonlinux:2023",
        ]
    }
    code = resources["DefaultImageFunction"]["Properties"]["Code"]["ZipFile"]
    compile(code, "index.py", "exec")
    assert "def handler(" in code and "def stack_going_away(" not in code  # only what it uses


def test_the_default_image_buildspec_carries_the_preset_context_inline() -> None:
    import base64
    import io
    import tarfile

    spec = yaml.safe_load(
        render_template(config_of("minimal"))["Resources"]["DefaultImage"]["Properties"][
            "Buildspec"
        ]
    )
    commands = spec["phases"]["pre_build"]["commands"]
    assert not any("aws s3" in c for c in commands)  # no bucket needed before the stack
    inline = next(c for c in commands if "base64 -d" in c).split()[1]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(inline)), mode="r:gz") as tar:
        names = set(tar.getnames())
        script = tar.extractfile("scripts/batchkit-rendezvous")
        assert script is not None
        compile(script.read(), "batchkit-rendezvous", "exec")
    assert {"al2023/Dockerfile", "scripts/batchkit-entrypoint"} <= names
    assert not any(n.startswith("debian") for n in names)
    build = " ".join(spec["phases"]["build"]["commands"])
    assert "--file context/al2023/Dockerfile" in build


def test_an_image_in_the_config_means_no_default_image_build() -> None:
    text = CONFIGS["minimal"].read_text() + "image: python:3.12-slim\n"
    template = render_template(parse_cluster_config(text))
    assert "DefaultImage" not in template["Resources"]
    assert "BuildDefaultImage" not in template["Parameters"]
    container = template["Resources"]["JobDefinition"]["Properties"]["ContainerProperties"]
    assert container["Image"] == "python:3.12-slim"


def test_default_images_are_kept_by_the_repository_lifecycle() -> None:
    repository = render_template(config_of("minimal"))["Resources"]["Repository"]["Properties"]
    rules = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    default = next(r for r in rules if r["selection"].get("tagPrefixList") == ["default-"])
    anything = next(r for r in rules if r["selection"]["tagStatus"] == "any")
    assert default["rulePriority"] < anything["rulePriority"]


def test_fargate_queues_get_a_fargate_definition_that_batch_accepts() -> None:
    template = render_template(config_of("spot-fargate"))
    definition = template["Resources"]["JobDefinitionFargate"]["Properties"]
    assert definition["PlatformCapabilities"] == ["FARGATE"]
    container = definition["ContainerProperties"]
    assert container["ExecutionRoleArn"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    assert container["NetworkConfiguration"] == {"AssignPublicIp": "DISABLED"}
    assert container["FargatePlatformConfiguration"] == {"PlatformVersion": "LATEST"}
    assert template["Outputs"]["FargateJobDefinitions"]["Value"] == {
        "Fn::Sub": '{"small": "${JobDefinitionFargate}"}'
    }
    public = (
        CONFIGS["spot-fargate"]
        .read_text()
        .replace("assign_public_ip: false", "assign_public_ip: true")
    )
    container = render_template(parse_cluster_config(public))["Resources"]["JobDefinitionFargate"][
        "Properties"
    ]["ContainerProperties"]
    assert container["NetworkConfiguration"] == {"AssignPublicIp": "ENABLED"}
    assert "JobDefinitionFargate" not in render_template(config_of("minimal"))["Resources"]


def _named(template: dict[str, Any]) -> dict[str, set[str]]:
    """The names the template gives its Lambda functions, rules and Lambda log groups."""
    found: dict[str, set[str]] = {"functions": set(), "rules": set(), "groups": set()}
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            found["functions"].add(properties["FunctionName"])
        elif resource["Type"] == "AWS::Events::Rule":
            found["rules"].add(properties["Name"])
        elif resource["Type"] == "AWS::Logs::LogGroup":
            name = properties["LogGroupName"]
            if isinstance(name, str) and name.startswith("/aws/lambda/"):
                found["groups"].add(name)
    return found


def test_names_lists_every_function_rule_and_lambda_log_group_the_templates_name() -> None:
    """`cluster delete` looks these up by the exact names `Names` lists (a prefix would also
    match cluster `<name>-x`'s): each example names only those, and together all of them."""
    tails: dict[str, set[str]] = {"functions": set(), "rules": set(), "groups": set()}
    for name in CONFIGS:
        config = config_of(name)
        names = Names.of(config)
        listed = {
            "functions": set(names.lambda_functions),
            "rules": set(names.rules),
            "groups": set(names.lambda_log_groups),
        }
        for kind, found in _named(render_template(config)).items():
            assert found <= listed[kind], (name, kind)
            tails[kind] |= {n.replace(names.prefix, "<prefix>") for n in found}
    whole = Names("c")
    assert tails == {
        "functions": {n.replace(whole.prefix, "<prefix>") for n in whole.lambda_functions},
        "rules": {n.replace(whole.prefix, "<prefix>") for n in whole.rules},
        "groups": {n.replace(whole.prefix, "<prefix>") for n in whole.lambda_log_groups},
    }

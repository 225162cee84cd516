"""Batch resources: launch template, compute environments, job queues, default job definitions."""

from __future__ import annotations

from typing import Any

from batchkit.infra import defaultimage, fairshare, volumes
from batchkit.infra.cfn import NO_VALUE, Json, get_att, if_, ref, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.iam import instance_profile_arn
from batchkit.infra.naming import Names, compute_environment_id, pascal, queue_id
from batchkit.infra.queueconfig import ComputeEnvironmentConfig, QueueConfig
from batchkit.infra.updates import update_policy

#: The instance metadata service's addresses, IPv4 and IPv6 (EC2 User Guide, "Configure the
#: Instance Metadata Service options": the IPv4 endpoint and the IPv6 one of Nitro instances).
IMDS_ADDRESSES = {"iptables": "169.254.169.254/32", "ip6tables": "fd00:ec2::254/128"}


def imds_owner_rules() -> list[list[str]]:
    """The firewall rules that keep every user but root away from the instance metadata.

    AWS Batch runs single-node jobs on EC2 in the `host` network mode ("Networking modes for AWS
    Batch jobs"): a container shares the instance's network, so neither the hop limit nor the
    ECS agent's setting below reaches it. The packets a job sends are the instance's own, from
    the job's user: rejected here unless that user is root. The ECS agent and the instance's own
    services run as root and keep IMDS; jobs in the preset images run as an unprivileged user,
    and their credentials come from the job role through the ECS endpoint (169.254.170.2),
    which these rules leave alone. A job image that runs as root is not covered."""
    not_root = ("-m", "owner", "!", "--uid-owner", "0", "-j", "REJECT")
    return [
        [tool, "-I", "OUTPUT", "1", "-d", address, *not_root]
        for tool, address in IMDS_ADDRESSES.items()
    ]


def block_imds_script() -> str:
    """Keep job containers away from the instance role.

    Amazon ECS, "Amazon EC2 container instance security considerations": to stop containers of
    tasks in the `awsvpc` network mode (which AWS Batch uses for multi-node parallel jobs, see
    "Networking modes for AWS Batch jobs") from reaching the credentials of the instance profile
    while keeping their task role, set `ECS_AWSVPC_BLOCK_IMDS=true` in the agent's configuration.
    Jobs in the `host` network mode (single-node jobs) are kept away by `imds_owner_rules`; a
    rule that cannot be added says so in the instance's boot log and the instance still starts.
    """
    lines = ["#!/bin/bash", "echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config"]
    for rule in imds_owner_rules():
        warning = f"batchkit: could not keep non-root users from IMDS ({rule[0]})"
        lines.append(f"{' '.join(rule)} || echo '{warning}' >&2")
    return "\n".join(lines) + "\n"


EFA_DRIVER_SCRIPT = (
    # AWS Batch User Guide, "Elastic Fabric Adapter": the AMI must have the EFA driver loaded.
    # EC2 User Guide, "Get started with EFA and MPI", step 3: AWS's EFA installer; --minimal
    # installs the kernel module and rdma-core only (the job image brings libfabric and MPI).
    "#!/bin/bash\nset -euo pipefail\ncd /tmp\n"
    "curl -fsSL --retry 5 -o efa.tar.gz "
    "https://efa-installer.amazonaws.com/aws-efa-installer-latest.tar.gz\n"
    "tar -xf efa.tar.gz\ncd aws-efa-installer\n./efa_installer.sh -y --minimal\n"
)


def efa_launch_template_id(queue: QueueConfig) -> str:
    return f"LaunchTemplateEfa{pascal(queue.name)}"


def placement_group_id(queue: QueueConfig) -> str:
    return f"PlacementGroup{pascal(queue.name)}"


def placement_group(config: ClusterConfig) -> Json:
    """A cluster placement group: the queue's instances close together in one Availability Zone
    (EC2 User Guide, "Placement strategies": cluster)."""
    return {
        "Type": "AWS::EC2::PlacementGroup",
        "Properties": {
            "Strategy": "cluster",
            "Tags": [{"Key": key, "Value": value} for key, value in tags(config).items()],
        },
    }


def efa_launch_template(config: ClusterConfig, queue: QueueConfig) -> Json:
    """The cluster's launch template plus an EFA interface as the primary network interface (EC2
    User Guide, "Add an EFA to a launch template"; security groups then go on the interface, as
    a launch template with network interfaces takes no SecurityGroupIds) and the EFA driver."""
    template = launch_template(config, extra_script=EFA_DRIVER_SCRIPT)
    data = template["Properties"]["LaunchTemplateData"]
    data["NetworkInterfaces"] = [
        {
            "DeviceIndex": 0,
            "InterfaceType": "efa",
            "Groups": list(config.security_groups),
            "DeleteOnTermination": True,
        }
    ]
    template["Properties"]["LaunchTemplateName"] = Names.of(config).efa_launch_template(queue.name)
    return template


def launch_template(config: ClusterConfig, *, extra_script: str | None = None) -> Json:
    options = config.launch_template
    data: dict[str, Any] = {
        "MetadataOptions": {
            "HttpEndpoint": "enabled",
            "HttpTokens": "required" if options.require_imdsv2 else "optional",
            # One hop: the instance itself. A container in the bridge or awsvpc network mode is
            # a hop further, so an IMDSv2 token never reaches it and it cannot take the
            # instance role's credentials (EC2 User Guide, "Configure the Instance Metadata
            # Service options": the PUT response hop limit); one in the host network mode (a
            # single-node Batch job) is kept away by the user data's rules
            # (`imds_owner_rules`) unless it runs as root. Nothing batchkit runs in a job needs
            # IMDS: credentials come from the job role through the ECS credentials endpoint
            # (169.254.170.2), the region travels in the job's environment (AWS_DEFAULT_REGION).
            "HttpPutResponseHopLimit": 1,
        },
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {
                    "VolumeSize": options.root_volume_gib,
                    "VolumeType": options.root_volume_type,
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            },
            *volumes.block_device_mappings(config.volumes),
        ],
    }
    if options.key_name:
        data["KeyName"] = options.key_name
    scripts = [block_imds_script()]
    mounts = bool(volumes.host_volumes(config.volumes))
    if mounts:
        scripts.append(volumes.mount_script(config.volumes))
    if extra_script is not None:
        scripts.append(extra_script)
    text = volumes.user_data(scripts)
    # Fn::Sub fills the FSx DNS names' region; the IMDS script alone needs no substitution.
    data["UserData"] = {"Fn::Base64": sub(text) if mounts else text}
    return {
        "Type": "AWS::EC2::LaunchTemplate",
        "Properties": {
            "LaunchTemplateName": Names.of(config).launch_template,
            "LaunchTemplateData": data,
        },
    }


def tags(config: ClusterConfig) -> dict[str, str]:
    return {"batchkit:cluster": config.name, **config.tags}


def compute_environment(
    config: ClusterConfig, queue: QueueConfig, ce: ComputeEnvironmentConfig
) -> Json:
    resources: dict[str, Any] = {
        "Type": ce.type.value,
        "MaxvCpus": ce.max_vcpus,
        "Subnets": list(config.subnets),
        "SecurityGroupIds": list(config.security_groups),
    }
    if not ce.type.is_fargate:
        template = efa_launch_template_id(queue) if queue.efa else "LaunchTemplate"
        resources.update(
            {
                "AllocationStrategy": ce.resolved_allocation_strategy,
                "MinvCpus": ce.min_vcpus,
                "InstanceTypes": ce.resolved_instance_types,
                "InstanceRole": instance_profile_arn(),
                "LaunchTemplate": {
                    "LaunchTemplateId": ref(template),
                    "Version": get_att(template, "LatestVersionNumber"),
                },
                "Ec2Configuration": [
                    {
                        "ImageType": "ECS_AL2023_NVIDIA" if queue.gpu else "ECS_AL2023",
                        **(
                            {"ImageIdOverride": config.launch_template.ami_id}
                            if config.launch_template.ami_id
                            else {}
                        ),
                    }
                ],
                "Tags": {
                    "Name": f"{Names.of(config).compute_environment(queue, ce)}",
                    **tags(config),
                },
            }
        )
        if ce.desired_vcpus is not None:
            resources["DesiredvCpus"] = ce.desired_vcpus
        if ce.bid_percentage is not None:
            resources["BidPercentage"] = ce.bid_percentage
        if ce.needs_spot_fleet_role:
            resources["SpotIamFleetRole"] = get_att("SpotFleetRole", "Arn")
        if queue.needs_placement_group:
            # AWS::Batch::ComputeEnvironment ComputeResources.PlacementGroup: the group's name,
            # which Ref of an AWS::EC2::PlacementGroup returns.
            resources["PlacementGroup"] = ref(placement_group_id(queue))
    return {
        "Type": "AWS::Batch::ComputeEnvironment",
        "Properties": {
            "ComputeEnvironmentName": Names.of(config).compute_environment(queue, ce),
            "Type": "MANAGED",
            "State": "ENABLED",
            "ServiceRole": if_("HasBatchServiceRole", ref("BatchServiceRole"), NO_VALUE),
            "ComputeResources": resources,
            "Tags": tags(config),
            **update_policy(ce.type.is_fargate),
        },
    }


def job_queue(config: ClusterConfig, queue: QueueConfig) -> Json:
    properties: dict[str, Any] = {
        "JobQueueName": Names.of(config).queue(queue),
        "Priority": queue.priority,
        "State": "ENABLED",
        "ComputeEnvironmentOrder": [
            {"Order": order, "ComputeEnvironment": ref(compute_environment_id(queue, ce))}
            for order, ce in enumerate(queue.compute_environments, start=1)
        ],
        "Tags": tags(config),
    }
    actions = queue.blocked_job_timeouts.actions()
    if actions:
        properties["JobStateTimeLimitActions"] = actions
    if queue.fair_share is not None:
        properties["SchedulingPolicyArn"] = ref(fairshare.policy_id(queue))
    return {"Type": "AWS::Batch::JobQueue", "Properties": properties}


def container_properties(config: ClusterConfig, *, fargate: bool = False) -> Json:
    """What every default job runs with; submissions override command, resources, environment.

    `fargate`: what Batch requires of a Fargate job's container besides (AWS Batch User Guide,
    "Job definitions for Fargate"): the execution role (here on every definition), a network
    configuration (a public IP only when the config asks: tasks in public subnets without NAT)
    and a platform version; only EFS volumes (Fargate has no host volumes)."""
    properties: dict[str, Any] = {
        "Image": defaultimage.job_image(config),
        "ResourceRequirements": [
            {"Type": "VCPU", "Value": "1"},
            {"Type": "MEMORY", "Value": "2048"},
        ],
        "JobRoleArn": get_att("JobRole", "Arn"),
        "ExecutionRoleArn": get_att("ExecutionRole", "Arn"),
        "Environment": [
            {"Name": "BATCHKIT_CLUSTER", "Value": config.name},
            {"Name": "PCLUSTER_AWS_REGION", "Value": ref("AWS::Region")},
            {"Name": "PCLUSTER_STACK_NAME", "Value": ref("AWS::StackName")},
        ],
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {"awslogs-group": ref("JobLogGroup"), "awslogs-region": ref("AWS::Region")},
        },
    }
    if fargate:
        public = "ENABLED" if config.assign_public_ip else "DISABLED"
        properties["NetworkConfiguration"] = {"AssignPublicIp": public}
        properties["FargatePlatformConfiguration"] = {"PlatformVersion": "LATEST"}
    rendered, mounts = volumes.job_volumes(config.volumes, fargate=fargate)
    if rendered:
        properties["Volumes"] = rendered
        properties["MountPoints"] = mounts
    return properties


EFA_DEVICE = {
    # AWS Batch User Guide, "Elastic Fabric Adapter": the job definition passes the EFA device
    # through (hostPath and containerPath /dev/infiniband/uverbs0; READ, WRITE, MKNOD).
    "HostPath": "/dev/infiniband/uverbs0",
    "ContainerPath": "/dev/infiniband/uverbs0",
    "Permissions": ["READ", "WRITE", "MKNOD"],
}


def efa_queues(config: ClusterConfig) -> list[QueueConfig]:
    return [queue for queue in config.queues if queue.efa and not queue.is_fargate]


def multinode_definition(config: ClusterConfig, name: str, *, efa: bool = False) -> Json:
    container = container_properties(config)
    if efa:
        container["LinuxParameters"] = {"Devices": [EFA_DEVICE]}
    return {
        "Type": "AWS::Batch::JobDefinition",
        "Condition": "MultiNodeEnabled",
        "Properties": {
            "JobDefinitionName": name,
            "Type": "multinode",
            "NodeProperties": {
                "MainNode": 0,
                "NumNodes": 1,
                "NodeRangeProperties": [{"TargetNodes": "0:", "Container": container}],
            },
            **job_definition_common(config),
        },
    }


def job_definition_common(config: ClusterConfig) -> Json:
    # moto's CloudFormation needs RetryStrategy; one attempt is also Batch's default.
    return {
        "PlatformCapabilities": ["EC2"],
        "RetryStrategy": {"Attempts": 1},
        "PropagateTags": True,
        "Tags": tags(config),
    }


def job_definitions(config: ClusterConfig) -> Json:
    names = Names.of(config)
    definitions: Json = {
        "JobDefinition": {
            "Type": "AWS::Batch::JobDefinition",
            "Properties": {
                "JobDefinitionName": names.job_definition("container"),
                "Type": "container",
                "ContainerProperties": container_properties(config),
                **job_definition_common(config),
            },
        },
        "JobDefinitionMnp": multinode_definition(config, names.job_definition("multinode")),
    }
    if efa_queues(config):
        # multi-node jobs to an `efa: true` queue get the EFA device (the AWS provider picks
        # this definition by the stack's EfaJobDefinitions output)
        definitions["JobDefinitionMnpEfa"] = multinode_definition(
            config, names.job_definition("multinode-efa"), efa=True
        )
    if any(queue.is_fargate for queue in config.queues):
        # Jobs to Fargate queues get this one (Batch refuses an EC2 definition there; the AWS
        # provider picks it by the stack's FargateJobDefinitions output).
        definitions["JobDefinitionFargate"] = {
            "Type": "AWS::Batch::JobDefinition",
            "Properties": {
                "JobDefinitionName": names.job_definition("fargate"),
                "Type": "container",
                "ContainerProperties": container_properties(config, fargate=True),
                **job_definition_common(config),
                "PlatformCapabilities": ["FARGATE"],
            },
        }
    return definitions


def resources(config: ClusterConfig) -> Json:
    result: Json = {}
    if any(not queue.is_fargate for queue in config.queues):
        result["LaunchTemplate"] = launch_template(config)
    for queue in config.queues:
        if queue.efa and not queue.is_fargate:
            result[efa_launch_template_id(queue)] = efa_launch_template(config, queue)
        if queue.needs_placement_group:
            result[placement_group_id(queue)] = placement_group(config)
        for ce in queue.compute_environments:
            result[compute_environment_id(queue, ce)] = compute_environment(config, queue, ce)
    result.update(fairshare.resources(config))
    for queue in config.queues:
        result[queue_id(queue)] = job_queue(config, queue)
    result.update(job_definitions(config))
    return result

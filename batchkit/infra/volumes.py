"""Volumes rendered: the boot script that mounts host volumes on EC2 instances, the EBS block
device mappings of the launch template, and the volumes and mount points of job definitions.

EFS is mounted by ECS itself (an `efsVolumeConfiguration`), on EC2 and Fargate alike. FSx for
Lustre, ONTAP, OpenZFS and EBS data volumes are mounted on the instance at boot, under
`/mnt/batchkit/<name>`, and bound into containers as host volumes; Fargate cannot have them.
"""

from __future__ import annotations

import shlex
from typing import Any

from batchkit.infra.cfn import Json
from batchkit.infra.volumeconfig import (
    EBS_DEVICES,
    EbsVolumeConfig,
    EfsVolumeConfig,
    FsxLustreVolumeConfig,
    FsxOntapVolumeConfig,
    FsxOpenZfsVolumeConfig,
    HostVolumeConfig,
    VolumeConfig,
)

HOST_ROOT = "/mnt/batchkit"
USER_DATA_BOUNDARY = "==BATCHKIT=="
# A region's FSx DNS names: `${AWS::Region}` and `${AWS::URLSuffix}` are left for Fn::Sub.
FSX_DOMAIN = "fsx.${AWS::Region}.${AWS::URLSuffix}"
# NFS options AWS recommends for FSx for ONTAP and OpenZFS clients (FSx User Guides, "Mounting
# volumes on Linux clients"): 1 MiB transfers, hard mounts, a 60 s timeout.
NFS_OPTIONS = "rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
DEVICE_WAIT_SECONDS = 120


def host_path(volume: HostVolumeConfig) -> str:
    return f"{HOST_ROOT}/{volume.name}"


def host_volumes(volumes: list[VolumeConfig]) -> list[HostVolumeConfig]:
    return [v for v in volumes if isinstance(v, HostVolumeConfig)]


def ebs_volumes(volumes: list[VolumeConfig]) -> list[tuple[str, EbsVolumeConfig]]:
    """Each EBS volume with its device name, in config order (`/dev/xvdb`, `/dev/xvdc`, …)."""
    ebs = [v for v in volumes if isinstance(v, EbsVolumeConfig)]
    return list(zip(EBS_DEVICES, ebs, strict=False))


def _nfs_mount(source: str, volume: FsxOntapVolumeConfig | FsxOpenZfsVolumeConfig) -> str:
    options = f"nfsvers={volume.nfs_version},{NFS_OPTIONS}"
    if volume.read_only:
        options += ",ro"
    return f"mount -t nfs -o {options} {shlex.quote(source)} {shlex.quote(host_path(volume))}"


def _ebs_lines(device: str, volume: EbsVolumeConfig) -> list[str]:
    """Wait for the device, format it when it has no file system (it is new: it is created with
    the instance and deleted with it), mount it and let every container user write to it.

    On Nitro instances an EBS volume is an NVMe device; Amazon Linux's udev rules link the
    device name of the block device mapping (`/dev/xvdb`) to it (EBS User Guide, "Amazon EBS
    and NVMe"), so the mapping's name is the one to wait for."""
    dev, path = shlex.quote(device), shlex.quote(host_path(volume))
    return [
        f"for _ in $(seq {DEVICE_WAIT_SECONDS}); do [ -b {dev} ] && break; sleep 1; done",
        f"blkid {dev} >/dev/null || mkfs -t xfs {dev}",
        f"mount -o noatime {dev} {path}",
        f"chmod 1777 {path}",
    ]


def mount_script(volumes: list[VolumeConfig]) -> str:
    """The boot script that mounts every host volume, each value shell-quoted."""
    hosts = host_volumes(volumes)
    lines = ["#!/bin/bash", "set -euo pipefail"]
    if any(isinstance(v, FsxLustreVolumeConfig) for v in hosts):
        lines.append("dnf install -y lustre-client")
    if any(isinstance(v, FsxOntapVolumeConfig | FsxOpenZfsVolumeConfig) for v in hosts):
        lines.append("dnf install -y nfs-utils")
    devices = {id(volume): device for device, volume in ebs_volumes(volumes)}
    for volume in hosts:
        lines.append(f"mkdir -p {shlex.quote(host_path(volume))}")
        if isinstance(volume, FsxLustreVolumeConfig):
            source = f"{volume.file_system_id}.{FSX_DOMAIN}@tcp:/{volume.mount_name}"
            options = "relatime,flock,ro" if volume.read_only else "relatime,flock"
            lines.append(
                f"mount -t lustre -o {options} {shlex.quote(source)} "
                f"{shlex.quote(host_path(volume))}"
            )
        elif isinstance(volume, FsxOntapVolumeConfig):
            dns = f"{volume.svm_id}.{volume.file_system_id}.{FSX_DOMAIN}"
            lines.append(_nfs_mount(f"{dns}:{volume.junction_path}", volume))
        elif isinstance(volume, FsxOpenZfsVolumeConfig):
            dns = f"{volume.file_system_id}.{FSX_DOMAIN}"
            lines.append(_nfs_mount(f"{dns}:{volume.volume_path}", volume))
        else:
            lines += _ebs_lines(devices[id(volume)], volume)
    return "\n".join(lines) + "\n"


def user_data(scripts: list[str]) -> str:
    """The launch template's user data: `scripts` as the parts of a MIME multipart archive.
    Batch merges its own user data with a launch template's only in that form (Batch User Guide,
    "Use Amazon EC2 launch templates with AWS Batch"). On the ECS-optimized AMIs the container
    agent starts after the user data scripts have run (which is how user data configures it
    through /etc/ecs/ecs.config: Amazon ECS Developer Guide, "Bootstrapping Amazon ECS Linux
    container instances to pass data"), so the volumes are mounted before the first job."""
    parts: list[str] = []
    for script in scripts:
        parts += [
            f"--{USER_DATA_BOUNDARY}",
            'Content-Type: text/x-shellscript; charset="us-ascii"',
            "",
            script,
        ]
    return "\n".join(
        [
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{USER_DATA_BOUNDARY}"',
            "",
            *parts,
            f"--{USER_DATA_BOUNDARY}--",
            "",
        ]
    )


def block_device_mappings(volumes: list[VolumeConfig]) -> list[Json]:
    """One mapping per EBS data volume: encrypted unless asked otherwise, deleted with the
    instance (EC2 API Reference, `LaunchTemplateEbsBlockDeviceRequest`)."""
    mappings: list[Json] = []
    for device, volume in ebs_volumes(volumes):
        ebs: dict[str, Any] = {
            "VolumeSize": volume.size_gib,
            "VolumeType": volume.volume_type,
            "Encrypted": volume.encrypted,
            "DeleteOnTermination": True,
        }
        if volume.iops is not None:
            ebs["Iops"] = volume.iops
        if volume.throughput is not None:
            ebs["Throughput"] = volume.throughput
        mappings.append({"DeviceName": device, "Ebs": ebs})
    return mappings


def _efs_volume(volume: EfsVolumeConfig) -> Json:
    efs: dict[str, Any] = {"FileSystemId": volume.file_system_id, "TransitEncryption": "ENABLED"}
    if volume.access_point_id:
        efs["AuthorizationConfig"] = {"AccessPointId": volume.access_point_id, "Iam": "ENABLED"}
    else:
        efs["RootDirectory"] = volume.root_directory
        efs["AuthorizationConfig"] = {"Iam": "ENABLED"}
    return {"Name": volume.name, "EfsVolumeConfiguration": efs}


def job_volumes(
    volumes: list[VolumeConfig], *, fargate: bool = False
) -> tuple[list[Json], list[Json]]:
    """`Volumes` and `MountPoints` of a job definition; `fargate`: only what Fargate can mount
    (EFS), since host volumes exist only on EC2 instances."""
    rendered: list[Json] = []
    mounts: list[Json] = []
    for volume in volumes:
        if isinstance(volume, EfsVolumeConfig):
            rendered.append(_efs_volume(volume))
        elif fargate:
            continue
        else:
            rendered.append({"Name": volume.name, "Host": {"SourcePath": host_path(volume)}})
        read_only = getattr(volume, "read_only", False)
        mounts.append(
            {"SourceVolume": volume.name, "ContainerPath": volume.mount_path, "ReadOnly": read_only}
        )
    return rendered, mounts

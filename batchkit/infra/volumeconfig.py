"""`volumes:` of `batchkit.yaml`: the file systems and disks mounted into jobs, and their rules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Literal

from pydantic import Field

from batchkit.infra.configbase import RESOURCE_NAME_PATTERN, Model, Problem


class EfsVolumeConfig(Model):
    type: Literal["efs"]
    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    file_system_id: Annotated[str, Field(pattern=r"^fs-[0-9a-f]{8,17}$")]
    mount_path: Annotated[str, Field(pattern=r"^/[^\s]*$")]
    root_directory: Annotated[str, Field(pattern=r"^/[^\s]*$")] = "/"
    access_point_id: Annotated[str | None, Field(pattern=r"^fsap-[0-9a-f]{8,17}$")] = None
    read_only: bool = False


class FsxLustreVolumeConfig(Model):
    """An FSx for Lustre file system, mounted on the instances and bound into containers."""

    type: Literal["fsx_lustre"]
    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    file_system_id: Annotated[str, Field(pattern=r"^fs-[0-9a-f]{8,17}$")]
    mount_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,16}$")]
    mount_path: Annotated[str, Field(pattern=r"^/[^\s]*$")]
    read_only: bool = False


NfsVersion = Literal["3", "4.0", "4.1", "4.2"]


class FsxOntapVolumeConfig(Model):
    """A volume of an existing FSx for NetApp ONTAP SVM, mounted over NFS on the instances.

    The SVM's NFS DNS name is `<svm_id>.<file_system_id>.fsx.<region>.amazonaws.com`; the volume
    is reached at its junction path (FSx for ONTAP User Guide, "Mounting volumes on Linux
    clients")."""

    type: Literal["fsx_ontap"]
    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    file_system_id: Annotated[str, Field(pattern=r"^fs-[0-9a-f]{8,17}$")]
    svm_id: Annotated[str, Field(pattern=r"^svm-[0-9a-f]{17}$")]
    junction_path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_./-]*$")]
    mount_path: Annotated[str, Field(pattern=r"^/[^\s]*$")]
    nfs_version: NfsVersion = "4.1"
    read_only: bool = False


class FsxOpenZfsVolumeConfig(Model):
    """A volume of an FSx for OpenZFS file system, mounted over NFS on the instances from
    `<file_system_id>.fsx.<region>.amazonaws.com:<volume_path>` (the root volume is `/fsx`)."""

    type: Literal["fsx_openzfs"]
    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    file_system_id: Annotated[str, Field(pattern=r"^fs-[0-9a-f]{8,17}$")]
    volume_path: Annotated[str, Field(pattern=r"^/fsx(/[A-Za-z0-9_.-]+)*$")] = "/fsx"
    mount_path: Annotated[str, Field(pattern=r"^/[^\s]*$")]
    nfs_version: NfsVersion = "4.1"
    read_only: bool = False


EbsVolumeType = Literal["gp3", "gp2", "io1", "io2", "st1", "sc1"]


class EbsVolumeConfig(Model):
    """An EBS data volume per instance (scratch): created with the instance, formatted and
    mounted at boot, deleted when the instance terminates."""

    type: Literal["ebs"]
    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)]
    mount_path: Annotated[str, Field(pattern=r"^/[^\s]*$")]
    size_gib: Annotated[int, Field(ge=1, le=65536)]
    volume_type: EbsVolumeType = "gp3"
    iops: Annotated[int, Field(ge=100, le=256000)] | None = None
    throughput: Annotated[int, Field(ge=125, le=2000)] | None = None
    encrypted: bool = True


VolumeConfig = Annotated[
    EfsVolumeConfig
    | FsxLustreVolumeConfig
    | FsxOntapVolumeConfig
    | FsxOpenZfsVolumeConfig
    | EbsVolumeConfig,
    Field(discriminator="type"),
]
VOLUME_TYPES = ("efs", "fsx_lustre", "fsx_ontap", "fsx_openzfs", "ebs")
HostVolumeConfig = (
    FsxLustreVolumeConfig | FsxOntapVolumeConfig | FsxOpenZfsVolumeConfig | EbsVolumeConfig
)
"""Volumes mounted on the EC2 instances and bound into containers (Fargate cannot have them)."""

# Limits of an EBS volume in a block device mapping, from the EC2 API Reference (`EbsBlockDevice`:
# VolumeSize, Iops, Throughput) and the EBS User Guide ("Amazon EBS volume types"):
# type: (min GiB, max GiB, IOPS range or None, max IOPS per GiB, IOPS required).
EBS_LIMITS: dict[str, tuple[int, int, tuple[int, int] | None, int, bool]] = {
    "gp3": (1, 16384, (3000, 16000), 500, False),
    "gp2": (1, 16384, None, 0, False),
    "io1": (4, 16384, (100, 64000), 50, True),
    "io2": (4, 65536, (100, 256000), 1000, True),
    "st1": (125, 16384, None, 0, False),
    "sc1": (125, 16384, None, 0, False),
}
GP3_THROUGHPUT = (125, 1000)
"""MiB/s, and at most 0.25 MiB/s per provisioned IOPS (gp3 only)."""

EBS_DEVICES = tuple(f"/dev/xvd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz")


def ebs_problems(volume: EbsVolumeConfig, at: tuple[str | int, ...]) -> Iterator[Problem]:
    low, high, iops_range, per_gib, iops_required = EBS_LIMITS[volume.volume_type]
    kind = volume.volume_type
    if not low <= volume.size_gib <= high:
        yield Problem((*at, "size_gib"), f"{kind} volumes are {low}-{high} GiB")
    if iops_range is None and volume.iops is not None:
        yield Problem((*at, "iops"), f"{kind} volumes take no iops (use gp3, io1 or io2)")
    elif iops_required and volume.iops is None:
        yield Problem((*at, "iops"), f"{kind} volumes need iops ({iops_range}) set")
    elif iops_range is not None and volume.iops is not None:
        if not iops_range[0] <= volume.iops <= iops_range[1]:
            yield Problem((*at, "iops"), f"{kind} volumes take {iops_range[0]}-{iops_range[1]}")
        elif volume.iops > per_gib * volume.size_gib:
            yield Problem(
                (*at, "iops"),
                f"{kind} allows at most {per_gib} IOPS per GiB "
                f"({per_gib * volume.size_gib} for {volume.size_gib} GiB)",
            )
    if volume.throughput is not None:
        if kind != "gp3":
            yield Problem((*at, "throughput"), "only gp3 volumes take throughput")
        elif not GP3_THROUGHPUT[0] <= volume.throughput <= GP3_THROUGHPUT[1]:
            yield Problem((*at, "throughput"), "gp3 volumes take 125-1000 MiB/s")
        elif volume.throughput * 4 > (volume.iops or 3000):
            yield Problem(
                (*at, "throughput"),
                f"gp3 allows 0.25 MiB/s per IOPS: {volume.throughput} MiB/s needs "
                f"iops: {volume.throughput * 4} or more",
            )


def volume_problems(volumes: Sequence[VolumeConfig], *, has_ec2_queue: bool) -> Iterator[Problem]:
    """Names and mount paths unique; host volumes need an EC2/SPOT queue to be mounted on; EBS
    sizes and performance within what EC2 accepts."""
    for field in ("name", "mount_path"):
        seen: dict[str, int] = {}
        for vi, volume in enumerate(volumes):
            value = getattr(volume, field)
            if field == "mount_path":
                value = value.rstrip("/") or "/"
            if value in seen:
                yield Problem(
                    ("volumes", vi, field),
                    f"{field} {value!r} is already used by volumes[{seen[value]}]",
                )
            seen.setdefault(value, vi)
    devices = 0
    for vi, volume in enumerate(volumes):
        at = ("volumes", vi)
        if volume.mount_path.rstrip("/") == "":
            yield Problem((*at, "mount_path"), "a volume cannot be mounted at /")
        if isinstance(volume, HostVolumeConfig) and not has_ec2_queue:
            yield Problem(
                (*at, "type"),
                f"{volume.type} volumes are mounted on EC2 instances and every queue of this "
                "cluster is FARGATE (Fargate tasks mount only EFS): add an EC2/SPOT queue or use "
                "type: efs",
            )
        if isinstance(volume, EbsVolumeConfig):
            devices += 1
            if devices > len(EBS_DEVICES):
                yield Problem(at, f"at most {len(EBS_DEVICES)} EBS volumes per instance")
            yield from ebs_problems(volume, at)


def fargate_volume_warning(volumes: Sequence[VolumeConfig], fargate_queues: Sequence[str]) -> str:
    """What the jobs of a cluster's Fargate queues will not get, beside EC2/SPOT queues that do:
    its host volumes (a cluster whose every queue is Fargate is refused by `volume_problems`);
    "" when nothing is missed."""
    missed = [f"{v.name} ({v.type})" for v in volumes if isinstance(v, HostVolumeConfig)]
    if not missed or not fargate_queues:
        return ""
    queues = ", ".join(fargate_queues)
    return (
        f"FARGATE queue{'s' if len(fargate_queues) > 1 else ''} {queues} will not mount "
        f"volume{'s' if len(missed) > 1 else ''} {', '.join(missed)}: Fargate tasks mount only "
        "EFS, these are mounted on EC2 instances; submit the jobs that need them to an EC2/SPOT "
        "queue"
    )

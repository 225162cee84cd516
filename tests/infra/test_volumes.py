"""Volumes: FSx for ONTAP and OpenZFS over NFS, EBS per instance; their rules and rendering."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from batchkit.errors import ConfigError
from batchkit.infra.config import load_cluster_config, parse_cluster_config
from batchkit.infra.template import render_template
from batchkit.infra.volumes import mount_script

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "examples" / "platform.yaml"

BASE = """\
name: lab
region: eu-west-1
subnets: [subnet-0123456789abcdef0]
security_groups: [sg-0123456789abcdef0]
queues:
  - name: cpu
    compute_environments:
      - name: od
"""
FARGATE_ONLY = BASE.replace("      - name: od\n", "      - name: od\n        type: FARGATE\n")


def errors(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_cluster_config(text, "lab.yaml")
    return caught.value.message


def resources(text: str) -> dict[str, Any]:
    return render_template(parse_cluster_config(text))["Resources"]


def test_every_volume_kind_is_mounted_into_the_default_job_definition() -> None:
    template = render_template(load_cluster_config(PLATFORM))["Resources"]
    container = template["JobDefinition"]["Properties"]["ContainerProperties"]
    mounts = {m["ContainerPath"]: m for m in container["MountPoints"]}
    assert set(mounts) == {"/home/shared", "/reference", "/scratch"}
    assert mounts["/reference"]["ReadOnly"] is True
    sources = {v["Name"]: v["Host"]["SourcePath"] for v in container["Volumes"]}
    assert sources == {
        "home": "/mnt/batchkit/home",
        "reference": "/mnt/batchkit/reference",
        "scratch": "/mnt/batchkit/scratch",
    }


def test_ontap_and_openzfs_are_nfs_mounts_of_their_dns_names() -> None:
    script = mount_script(list(load_cluster_config(PLATFORM).volumes))
    lines = script.splitlines()
    ontap = next(line for line in lines if "svm-" in line)
    argv = shlex.split(ontap)
    assert argv[:3] == ["mount", "-t", "nfs"]
    assert argv[4].startswith("nfsvers=4.1,")
    assert argv[5] == (
        "svm-0123456789abcdef0.fs-0123456789abcdef0.fsx.${AWS::Region}.${AWS::URLSuffix}:/home"
    )
    assert argv[6] == "/mnt/batchkit/home"
    zfs = shlex.split(next(line for line in lines if "/fsx/reference" in line))
    assert zfs[5] == "fs-0fedcba9876543210.fsx.${AWS::Region}.${AWS::URLSuffix}:/fsx/reference"
    assert zfs[4].endswith(",ro")
    assert "dnf install -y nfs-utils" in lines
    assert "dnf install -y lustre-client" not in lines


def test_ebs_volume_is_a_block_device_formatted_and_mounted_at_boot() -> None:
    template = render_template(load_cluster_config(PLATFORM))["Resources"]
    data = template["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    mappings = {m["DeviceName"]: m["Ebs"] for m in data["BlockDeviceMappings"]}
    assert mappings["/dev/xvdb"] == {
        "VolumeSize": 500,
        "VolumeType": "gp3",
        "Encrypted": True,
        "DeleteOnTermination": True,
        "Iops": 6000,
        "Throughput": 500,
    }
    user_data = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert user_data.startswith('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="')
    assert "blkid /dev/xvdb >/dev/null || mkfs -t xfs /dev/xvdb" in user_data
    assert "mount -o noatime /dev/xvdb /mnt/batchkit/scratch" in user_data
    # The script waits for the device, then mounts, in that order.
    assert user_data.index("[ -b /dev/xvdb ]") < user_data.index("mount -o noatime /dev/xvdb")


def test_two_ebs_volumes_get_two_devices_and_io2_needs_no_throughput() -> None:
    text = BASE + (
        "volumes:\n"
        "  - {name: a, type: ebs, mount_path: /a, size_gib: 100}\n"
        "  - {name: b, type: ebs, mount_path: /b, size_gib: 100, volume_type: io2, iops: 20000,"
        " encrypted: false}\n"
    )
    data = resources(text)["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    devices = [(m["DeviceName"], m["Ebs"].get("Iops")) for m in data["BlockDeviceMappings"]]
    assert devices == [("/dev/xvda", None), ("/dev/xvdb", None), ("/dev/xvdc", 20000)]
    assert data["BlockDeviceMappings"][2]["Ebs"]["Encrypted"] is False


def test_a_hostile_junction_path_cannot_reach_the_shell() -> None:
    text = BASE + (
        "volumes:\n"
        "  - {name: h, type: fsx_ontap, file_system_id: fs-0123456789abcdef0,"
        " svm_id: svm-0123456789abcdef0, junction_path: '/x; rm -rf /', mount_path: /h}\n"
    )
    assert "lab.yaml:10: volumes[0].junction_path: expected the volume's junction path" in (
        errors(text)
    )


def test_fargate_only_cluster_refuses_host_volumes_but_takes_efs() -> None:
    text = FARGATE_ONLY + (
        "volumes:\n"
        "  - {name: s, type: ebs, mount_path: /s, size_gib: 10}\n"
        "  - {name: e, type: efs, file_system_id: fs-0123456789abcdef0, mount_path: /e}\n"
    )
    message = errors(text)
    assert "lab.yaml:11: volumes[0].type: ebs volumes are mounted on EC2 instances" in message
    assert "volumes[1]" not in message


def test_fargate_queue_beside_an_ec2_queue_gets_only_efs() -> None:
    from batchkit.infra.volumes import job_volumes

    config = load_cluster_config(PLATFORM)
    assert job_volumes(list(config.volumes), fargate=True) == ([], [])


MIXED = BASE + (
    "  - name: quick\n"
    "    compute_environments:\n"
    "      - {name: fg, type: FARGATE}\n"
    "  - name: spotfg\n"
    "    compute_environments:\n"
    "      - {name: fgs, type: FARGATE_SPOT}\n"
)
LUSTRE = (
    "  - {name: lus, type: fsx_lustre, file_system_id: fs-0123456789abcdef0, mount_name: abc,"
    " mount_path: /lus}\n"
)
EFS = "  - {name: e, type: efs, file_system_id: fs-0123456789abcdef0, mount_path: /e}\n"


def test_fargate_queues_beside_ec2_ones_are_warned_of_the_host_volumes_they_miss() -> None:
    text = (
        MIXED
        + "volumes:\n"
        + LUSTRE
        + EFS
        + "  - {name: s, type: ebs, mount_path: /s, size_gib: 10}\n"
    )
    [warning] = parse_cluster_config(text).warnings
    assert warning.startswith(
        "FARGATE queues quick, spotfg will not mount volumes lus (fsx_lustre), s (ebs): "
    )
    assert "e (efs)" not in warning and "cpu" not in warning
    assert "EC2/SPOT queue" in warning


@pytest.mark.parametrize(
    "text",
    [MIXED + "volumes:\n" + EFS, BASE + "volumes:\n" + LUSTRE, MIXED],
    ids=["only-efs", "only-ec2-queues", "no-volumes"],
)
def test_nothing_to_warn_of_when_every_queue_gets_every_volume(text: str) -> None:
    assert parse_cluster_config(text).warnings == []


def test_template_and_create_print_the_warning_and_go_on(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from batchkit.cli.app import app

    path = tmp_path / "batchkit.yaml"
    path.write_text(MIXED + "volumes:\n" + LUSTRE)
    result = CliRunner().invoke(app, ["cluster", "template", "-f", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: {path}: FARGATE queues quick, spotfg will not mount volume lus (fsx_lustre): "
        "Fargate tasks mount only EFS, these are mounted on EC2 instances; submit the jobs that "
        "need them to an EC2/SPOT queue\n"
    )
    assert "AWSTemplateFormatVersion" in result.stdout
    platform = CliRunner().invoke(app, ["cluster", "template", "-f", str(PLATFORM)])
    assert "warning: " in platform.stderr and "queue quick will not mount volumes home" in (
        platform.stderr
    )


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ("{name: a, type: ebs, mount_path: /a, size_gib: 10, volume_type: io1}",
         "volumes[0].iops: io1 volumes need iops"),
        ("{name: a, type: ebs, mount_path: /a, size_gib: 10, volume_type: gp2, iops: 3000}",
         "volumes[0].iops: gp2 volumes take no iops"),
        ("{name: a, type: ebs, mount_path: /a, size_gib: 10, iops: 16000}",
         "volumes[0].iops: gp3 allows at most 500 IOPS per GiB (5000 for 10 GiB)"),
        ("{name: a, type: ebs, mount_path: /a, size_gib: 100, throughput: 1000}",
         "volumes[0].throughput: gp3 allows 0.25 MiB/s per IOPS: 1000 MiB/s needs iops: 4000"),
        ("{name: a, type: ebs, mount_path: /a, size_gib: 100, volume_type: st1}",
         "volumes[0].size_gib: st1 volumes are 125-16384 GiB"),
        ("{name: a, type: ebs, mount_path: /a, size_gib: 500, volume_type: sc1, throughput: 200}",
         "volumes[0].throughput: only gp3 volumes take throughput"),
        ("{name: a, type: fsx_ontap, file_system_id: fs-0123456789abcdef0, mount_path: /a,"
         " junction_path: /v}", "volumes[0].svm_id: required key is missing"),
        ("{name: a, type: fsx_openzfs, mount_path: /a}",
         "volumes[0].file_system_id: required key is missing"),
        ("{name: a, type: fsx_openzfs, file_system_id: fs-0123456789abcdef0, mount_path: /a,"
         " volume_path: /data}", "volumes[0].volume_path: expected /fsx"),
        ("{name: a, type: ebs, mount_path: /, size_gib: 10}",
         "volumes[0].mount_path: a volume cannot be mounted at /"),
        ("{name: a, type: nfs, mount_path: /a}", "volumes[0]"),
    ],
)  # fmt: skip
def test_bad_volumes_name_the_key(volume: str, expected: str) -> None:
    assert expected in errors(BASE + f"volumes:\n  - {volume}\n")


def test_a_mount_path_used_twice_names_both_volumes() -> None:
    text = BASE + (
        "volumes:\n"
        "  - {name: a, type: ebs, mount_path: /data, size_gib: 10}\n"
        "  - {name: b, type: fsx_openzfs, file_system_id: fs-0123456789abcdef0,"
        " mount_path: /data/}\n"
    )
    assert (
        "lab.yaml:11: volumes[1].mount_path: mount_path '/data' is already used by volumes[0]"
        in errors(text)
    )


def test_platform_example_parses_with_its_documented_values() -> None:
    config = load_cluster_config(PLATFORM)
    kinds = [volume.type for volume in config.volumes]
    assert kinds == ["fsx_ontap", "fsx_openzfs", "ebs"]
    assert json.dumps(render_template(config))  # serialisable

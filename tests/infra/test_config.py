"""batchkit.yaml validation: defaults, cross-field rules, and errors that point at file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.errors import ConfigError, ExitCode
from batchkit.infra.config import load_cluster_config, parse_cluster_config
from batchkit.infra.queueconfig import ComputeType, is_gpu_instance_type
from batchkit.infra.yamlmarks import format_path, load_marked

BASE = """\
name: lab
region: eu-west-1
subnets: [subnet-0123456789abcdef0, subnet-0fedcba9876543210]
security_groups: [sg-0123456789abcdef0]
queues:
  - name: cpu
    compute_environments:
      - name: od
"""


def errors(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_cluster_config(text, "lab.yaml")
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.hint
    return caught.value.message


def test_defaults_of_a_minimal_config() -> None:
    config = parse_cluster_config(BASE)
    ce = config.queues[0].compute_environments[0]
    assert ce.type is ComputeType.EC2
    assert ce.resolved_instance_types == ["optimal"]
    assert ce.resolved_allocation_strategy == "BEST_FIT_PROGRESSIVE"
    assert (ce.min_vcpus, ce.desired_vcpus, ce.max_vcpus) == (0, None, 256)
    assert config.resolved_default_queue.name == "cpu"
    assert config.log_retention_days == 30
    assert config.features.cleanup_on_delete
    assert not config.keep_data_on_delete


def test_spot_defaults_to_price_capacity_optimized() -> None:
    config = parse_cluster_config(BASE + "        type: SPOT\n        bid_percentage: 60\n")
    ce = config.queues[0].compute_environments[0]
    assert ce.resolved_allocation_strategy == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert not ce.needs_spot_fleet_role


@pytest.mark.parametrize(
    ("instance_type", "gpu"),
    [("g5.xlarge", True), ("g5", True), ("p4d.24xlarge", True), ("G6.2XLARGE", True),
     ("c6i.large", False), ("optimal", False), ("m7g", False), ("inf2.xlarge", False)],
)  # fmt: skip
def test_gpu_instance_types(instance_type: str, gpu: bool) -> None:
    assert is_gpu_instance_type(instance_type) is gpu


CE = "queues[0].compute_environments[0]"
VOLUME = "{type: efs, name: %s, file_system_id: fs-0123456789abcdef0, mount_path: /d}"


@pytest.mark.parametrize(
    ("extra", "line", "key", "message"),
    [
        ("        type: EC2\n        bid_percentage: 50\n", 10, f"{CE}.bid_percentage",
         "only SPOT"),
        ("        allocation_strategy: SPOT_CAPACITY_OPTIMIZED\n", 9, f"{CE}.allocation_strategy",
         "EC2 allows BEST_FIT, BEST_FIT_PROGRESSIVE"),
        ("        type: FARGATE\n        min_vcpus: 2\n", 10, f"{CE}.min_vcpus",
         "FARGATE environments scale from 0"),
        ("        desired_vcpus: 300\n", 9, f"{CE}.desired_vcpus",
         "must be between min_vcpus (0) and max_vcpus (256)"),
        ("        instance_types: []\n", 9, f"{CE}.instance_types", "give at least one type"),
        ("      - name: b\n      - name: c\n      - name: d\n", 7,
         "queues[0].compute_environments", "a queue can use at most 3"),
        ("      - name: od\n", 9, "queues[0].compute_environments[1].name",
         "environment name 'od' is used twice"),
        ("  - name: C-P-U\n    compute_environments: [{name: x}]\n", 9, "queues[1].name",
         "queue name 'C-P-U' is already used by queues[0] (names must differ in more than"),
        ("default_queue: gpu\n", 9, "default_queue", "no queue is named 'gpu' (queues: cpu)"),
        ("log_retention_days: 31\n", 9, "log_retention_days",
         "CloudWatch Logs only accepts 1, 3, 5"),
        ("tags: {batchkit:owner: me}\n", 9, "tags.batchkit:owner", "tag keys starting with aws:"),
        (f"volumes:\n  - {VOLUME % 'a'}\n  - {VOLUME % 'b'}\n", 11, "volumes[1].mount_path",
         "mount_path '/d' is already used by volumes[0]"),
        ("volumes:\n  - {type: nfs, name: a}\n", 10, "volumes[0]", "Input tag 'nfs'"),
        ("permissions_boundary: MyBoundary\n", 9, "permissions_boundary",
         "expected a policy ARN"),
    ],
)  # fmt: skip
def test_each_rule_names_its_line_and_key(extra: str, line: int, key: str, message: str) -> None:
    assert f"lab.yaml:{line}: {key}: {message}" in errors(BASE + extra)


def test_gpu_queue_rules() -> None:
    text = BASE.replace("  - name: cpu\n", "  - name: cpu\n    gpu: true\n")
    message = errors(text + "        type: EC2\n")
    assert "lab.yaml:9: queues[0].compute_environments[0].instance_types: a GPU queue needs" in (
        message
    )
    message = errors(text + "        type: FARGATE\n")
    assert "queues[0].compute_environments[0].type: Fargate has no GPUs" in message
    message = errors(text + "        instance_types: [g5.xlarge, c6i.large]\n")
    assert "instance_types[1]: 'c6i.large' has no GPU but the queue is marked `gpu: true`" in (
        message
    )


def test_all_problems_are_reported_at_once() -> None:
    message = errors(BASE + "        max_vcpus: 0\nlog_retention_days: 2\nregion2: x\n")
    assert "max_vcpus" in message
    assert "region2: unknown key" in message


def test_a_missing_file_and_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file") as missing:
        load_cluster_config(tmp_path / "batchkit.yaml")
    assert missing.value.hint and "batchkit cluster init" in missing.value.hint
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_cluster_config(binary)


def test_key_lines_are_recorded_through_flow_and_block_styles() -> None:
    document = load_marked("a:\n  b: [1, {c: 2}]\n  d:\n    - e: 3\n\n      f: 4\n")
    assert document.lines[("a",)] == 1
    assert document.lines[("a", "b")] == 2
    assert document.lines[("a", "b", 1, "c")] == 2
    assert document.lines[("a", "d", 0, "f")] == 6
    assert document.line_of(("a", "d", 0, "missing")) == 4
    assert document.line_of(("nothing",)) == 1
    assert format_path(("a", "d", 0, "f")) == "a.d[0].f"
    assert format_path(()) == "(top level)"


def test_an_empty_file_is_refused() -> None:
    assert "lab.yaml:1: expected a mapping" in errors("")


def test_blocked_jobs_are_cancelled_soon_for_a_misconfiguration_and_later_for_capacity() -> None:
    queue = parse_cluster_config(BASE).queues[0]
    assert queue.blocked_job_timeouts.actions() == [
        {
            "Action": "CANCEL",
            "MaxTimeSeconds": 14400,
            "Reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            "State": "RUNNABLE",
        },
        {
            "Action": "CANCEL",
            "MaxTimeSeconds": 600,
            "Reason": "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
            "State": "RUNNABLE",
        },
        {
            "Action": "CANCEL",
            "MaxTimeSeconds": 600,
            "Reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
            "State": "RUNNABLE",
        },
    ]


def test_blocked_job_timeouts_can_be_changed_or_turned_off() -> None:
    text = BASE.replace(
        "  - name: cpu\n",
        "  - name: cpu\n    blocked_job_timeouts:\n      insufficient_capacity: null\n"
        "      max_resource: 30\n",
    )
    actions = parse_cluster_config(text).queues[0].blocked_job_timeouts.actions()
    assert [(a["Reason"], a["MaxTimeSeconds"]) for a in actions] == [
        ("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", 1800),
        ("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT", 600),
    ]


def test_a_blocked_job_timeout_below_what_batch_allows_names_its_key() -> None:
    text = BASE.replace(
        "  - name: cpu\n", "  - name: cpu\n    blocked_job_timeouts:\n      max_resource: 5\n"
    )
    message = errors(text)
    assert "lab.yaml:8: queues[0].blocked_job_timeouts.max_resource" in message

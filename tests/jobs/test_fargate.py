"""Jobs for Fargate queues are checked against what AWS Batch accepts before anything is sent."""

from __future__ import annotations

import msgspec.structs
import pytest

from batchkit.errors import UsageError
from batchkit.jobs.fargate import check_fargate, fit_memory, valid_memory
from batchkit.models import JobSpec, Resources


def spec(vcpus: float = 1, memory: int = 2048, gpus: int = 0) -> JobSpec:
    return JobSpec(
        name="j", command=("true",), queue="small", resources=Resources(vcpus, memory, gpus)
    )


def test_the_valid_combinations_are_awss() -> None:
    assert valid_memory(0.25) == [512, 1024, 2048]
    assert valid_memory(1) == [2048, 3072, 4096, 5120, 6144, 7168, 8192]
    assert valid_memory(8)[:2] == [16384, 20480] and valid_memory(8)[-1] == 61440
    assert valid_memory(16)[-1] == 122880 and valid_memory(3) == []


@pytest.mark.parametrize(("vcpus", "memory"), [(0.25, 512), (1, 2048), (4, 30720), (16, 32768)])
def test_valid_sizes_pass(vcpus: float, memory: int) -> None:
    check_fargate(spec(vcpus, memory), "FARGATE")


def test_memory_that_fargate_lacks_lists_the_values_for_those_vcpus() -> None:
    with pytest.raises(UsageError) as refused:
        check_fargate(spec(1, 128), "FARGATE")
    assert "128 MiB with 1 vCPU" in refused.value.message
    assert (
        refused.value.hint == "use -m with one of: 2048, 3072, 4096, 5120, 6144, 7168, 8192 (MiB)"
    )


def test_a_vcpu_count_fargate_lacks_names_the_ones_it_has() -> None:
    with pytest.raises(UsageError) as refused:
        check_fargate(spec(3, 8192), "FARGATE")
    assert refused.value.hint and "0.25, 0.5, 1, 2, 4, 8, 16" in refused.value.hint


def test_gpus_are_refused_and_other_queues_are_not_checked() -> None:
    with pytest.raises(UsageError, match="no GPUs"):
        check_fargate(spec(gpus=1), "FARGATE")
    check_fargate(spec(1, 128, 1), "EC2")
    check_fargate(spec(1, 128), None)


@pytest.mark.parametrize(
    ("vcpus", "default", "picked"),
    [
        (1, 128, 2048),
        (0.25, 128, 512),
        (0.5, 128, 1024),
        (16, 128, 32768),
        (1, 1024, 2048),
        (0.25, 1024, 1024),
        (0.5, 1024, 1024),
    ],
)
def test_default_memory_becomes_the_least_fargate_offers_with_the_vcpus(
    vcpus: float, default: int, picked: int
) -> None:
    """128 MiB is sub's default, 1024 a function job's: neither is asked for."""
    job = msgspec.structs.replace(spec(vcpus, default), memory_default=True)
    fitted = fit_memory(job, "FARGATE")
    assert fitted.resources == Resources(vcpus, picked, 0)
    check_fargate(fitted, "FARGATE")


def test_memory_asked_for_and_other_queues_are_left_alone() -> None:
    asked = spec(1, 128)  # memory_default False: -m 128 was typed
    assert fit_memory(asked, "FARGATE") is asked
    default = msgspec.structs.replace(asked, memory_default=True)
    assert fit_memory(default, "EC2") is default and fit_memory(default, None) is default
    odd = msgspec.structs.replace(
        spec(3, 128), memory_default=True
    )  # no 3-vCPU size: check_fargate says
    assert fit_memory(odd, "FARGATE") is odd

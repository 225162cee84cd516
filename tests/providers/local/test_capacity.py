"""The local compute environment's capacity."""

from __future__ import annotations

import os

import pytest

from batchkit.errors import ConfigError
from batchkit.models import Resources
from batchkit.providers.local.capacity import Capacity


def test_defaults_to_this_machine_with_no_gpu() -> None:
    capacity = Capacity.of_this_machine({})
    assert capacity.vcpus == float(os.cpu_count() or 1)
    assert capacity.memory > 0
    assert capacity.gpus == 0


def test_environment_then_explicit_values_override() -> None:
    env = {"BATCHKIT_LOCAL_VCPUS": "3", "BATCHKIT_LOCAL_MEMORY": "1024", "BATCHKIT_LOCAL_GPUS": "2"}
    assert Capacity.of_this_machine(env) == Capacity(3, 1024, 2)
    assert Capacity.of_this_machine(env, vcpus=8, gpus=0) == Capacity(8, 1024, 0)


@pytest.mark.parametrize("value", ["lots", "-1"])
def test_bad_values_name_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Capacity.of_this_machine({"BATCHKIT_LOCAL_VCPUS": value})
    assert "BATCHKIT_LOCAL_VCPUS" in str(caught.value)


def test_fits() -> None:
    capacity = Capacity(2, 1024, 1)
    assert capacity.fits(Resources(1, 512), 2)
    assert not capacity.fits(Resources(1, 512), 3)
    assert not capacity.fits(Resources(0.5, 2048))
    assert not capacity.fits(Resources(0.5, 64, gpus=2))

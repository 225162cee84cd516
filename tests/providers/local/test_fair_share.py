"""Fair share on the real local engine: shares by usage and weight, priorities within a share,
and the queue's policy refusing what SubmitJob refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.errors import ConfigError, UsageError
from batchkit.models import JobStatus, Resources
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.shares import SharePolicy, policy_from_env
from tests.fixtures.local_engine import Engine, sh

S = JobStatus
ONE = Resources(vcpus=1, memory=128)


def with_policy(engine: Engine, weights: dict[str, float]) -> Engine:
    engine.provider = LocalProvider(
        engine.home, clock=engine.clock, start_worker=False, shares=SharePolicy(weights)
    )
    return engine


def hold(gate: Path) -> str:
    return f"while [ ! -e {gate} ]; do sleep 0.01; done"


def test_the_share_using_less_goes_first_then_priority_within_a_share(
    engine: Engine, tmp_path: Path
) -> None:
    with_policy(engine, {"genomics": 1, "imaging": 1})
    first, rest = tmp_path / "first", tmp_path / "rest"
    running = engine.submit(sh(hold(first), resources=ONE, share="genomics"))
    engine.scheduler.tick()
    assert engine.status(running.job_id) is S.RUNNING
    low = engine.submit(sh(hold(rest), name="low", resources=ONE, share="genomics", priority=1))
    high = engine.submit(sh(hold(rest), name="high", resources=ONE, share="genomics", priority=50))
    other = engine.submit(sh(hold(rest), name="other", resources=ONE, share="imaging"))
    engine.scheduler.tick()
    engine.scheduler.tick()
    # One vCPU is free: imaging uses nothing, genomics one vCPU, so imaging's job goes first
    # although both genomics jobs were submitted before it.
    assert [engine.status(j.job_id) for j in (low, high, other)] == [
        S.RUNNABLE,
        S.RUNNABLE,
        S.RUNNING,
    ]
    first.touch()
    engine.settle(running.job_id)
    engine.run_until(lambda: engine.status(high.job_id) is S.RUNNING, 10, "high running")
    assert engine.status(low.job_id) is S.RUNNABLE  # priority 50 before priority 1
    rest.touch()
    done = engine.settle(low.job_id, high.job_id, other.job_id)
    assert all(job.status is S.SUCCEEDED for job in done)


def test_a_lower_weight_gets_more_of_the_machine(engine: Engine, tmp_path: Path) -> None:
    # 2 vCPUs, half-vCPU jobs. heavy weighs 3, light 1: with heavy using 0.5 vCPU (1.5 weighted),
    # light gets the three free slots (0, 0.5, 1.0 weighted are all below 1.5). Equal weights
    # would give heavy the third slot (a tie at 0.5, and heavy's job is older).
    with_policy(engine, {"heavy": 3, "light": 1})
    gate = tmp_path / "gate"
    half = Resources(vcpus=0.5, memory=128)
    first = engine.submit(sh(hold(gate), resources=half, share="heavy"))
    engine.scheduler.tick()
    assert engine.status(first.job_id) is S.RUNNING
    heavy = [engine.submit(sh(hold(gate), resources=half, share="heavy")) for _ in range(2)]
    light = [engine.submit(sh(hold(gate), resources=half, share="light")) for _ in range(3)]
    engine.scheduler.tick()
    engine.scheduler.tick()
    assert [engine.status(j.job_id) for j in heavy] == [S.RUNNABLE, S.RUNNABLE]
    assert [engine.status(j.job_id) for j in light] == [S.RUNNING] * 3
    gate.touch()
    engine.settle(first.job_id, *(j.job_id for j in heavy + light))


def test_the_local_queue_refuses_what_submitjob_refuses(engine: Engine) -> None:
    with pytest.raises(UsageError, match="--share x: the local queue has no fair-share policy"):
        engine.submit(sh("true", share="x"))
    with_policy(engine, {"genomics": 1, "adhoc*": 4})
    with pytest.raises(UsageError, match="a job must name its share"):
        engine.submit(sh("true"))
    with pytest.raises(UsageError, match="no such share"):
        engine.submit(sh("true", share="imaging"))
    job = engine.submit(sh("true", share="adhoc42"))
    assert engine.provider.fair_share(None) is True
    (done,) = engine.settle(job.job_id)
    assert done.status is S.SUCCEEDED


def test_the_policy_comes_from_the_environment() -> None:
    policy = policy_from_env({"BATCHKIT_LOCAL_SHARES": "genomics=1, adhoc*=4.5"})
    assert policy is not None
    assert policy.weight_of("genomics") == 1.0
    assert policy.weight_of("adhocX") == 4.5
    assert policy_from_env({}) is None
    with pytest.raises(ConfigError, match="BATCHKIT_LOCAL_SHARES: 'genomics' is not SHARE=WEIGHT"):
        policy_from_env({"BATCHKIT_LOCAL_SHARES": "genomics"})

"""`batchkit.api`: cluster resolution, the user config, and the Cluster facade over a provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit.api import Cluster, connect
from batchkit.config import ClusterSettings, UserConfig, load_user_config
from batchkit.errors import ConfigError, JobNotFoundError
from batchkit.jobs.kill import KillOutcome
from batchkit.models import Job, JobSpec, JobStatus
from tests.jobs.fakes import FakeProvider


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yaml"
    path.write_text(text)
    return path


def test_no_config_means_the_local_engine(isolated_environment: Path) -> None:
    cluster = connect()

    assert cluster.name == "local"
    assert cluster.provider.kind == "local"


def test_config_is_read_from_batchkit_home(isolated_environment: Path) -> None:
    write_config(
        isolated_environment,
        "default_cluster: research\n"
        "env_blacklist: HOME,PATH\n"
        "clusters:\n  research: {region: eu-west-1, profile: lab}\n  other:\n",
    )

    config = load_user_config()

    assert config.resolve(None) == "research"
    assert config.resolve("x") == "x"
    assert config.cluster("research") == ClusterSettings(region="eu-west-1", profile="lab")
    assert config.cluster("other") == ClusterSettings()
    assert config.env_blacklist == ("HOME", "PATH")


def test_explicit_local_wins_over_the_default(isolated_environment: Path) -> None:
    assert connect("local", config=UserConfig(default_cluster="research")).name == "local"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("clusters: [a, b]\n", "clusters must be"),
        ("clusters:\n  a: {zone: x}\n", "clusters.a.zone"),
        ("default_cluster: 3\n", "default_cluster must be"),
        ("colour: red\n", "unknown key 'colour'"),
        ("clusters: {a: {region: [1]}}\n", "clusters.a.region"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_key(isolated_environment: Path, text: str, where: str) -> None:
    path = write_config(isolated_environment, text)

    with pytest.raises(ConfigError) as err:
        load_user_config()

    assert str(path) in err.value.message
    assert where in err.value.message


def test_submit_wait_and_logs_through_the_facade() -> None:
    fake = FakeProvider()
    cluster = Cluster(fake, sleep=lambda s: None, monotonic=lambda: 0.0)

    def run(provider: FakeProvider) -> None:
        for job_id, job in list(provider.jobs.items()):
            if not job.status.is_final:
                provider.start(job_id)
                provider.log(job_id, "out")
                provider.finish(job_id)

    job = cluster.submit(JobSpec(name="j", command=("true",)))
    fake.on_describe = run

    assert cluster.wait(job.job_id).status is JobStatus.SUCCEEDED
    assert [item.event.message for item in cluster.logs(job.job_id)] == ["out"]  # type: ignore[union-attr]


def test_kill_outcomes_in_input_order() -> None:
    fake = FakeProvider()
    fake.add(Job("a", "a", JobStatus.PENDING))
    fake.add(Job("b", "b", JobStatus.STARTING))
    fake.add(Job("c", "c", JobStatus.FAILED))

    results = Cluster(fake).kill(["c", "x", "b", "a"], "why")

    assert [(r.job_id, r.outcome) for r in results] == [
        ("c", KillOutcome.ALREADY_FINAL),
        ("x", KillOutcome.NOT_FOUND),
        ("b", KillOutcome.TERMINATION),
        ("a", KillOutcome.CANCELLATION),
    ]
    assert fake.terminated == [("b", "why"), ("a", "why")]


def test_children_and_unknown_job() -> None:
    fake = FakeProvider()
    fake.add(Job("p", "p", JobStatus.RUNNING, array_size=3))
    cluster = Cluster(fake)

    assert [c.job_id for c in cluster.children("p")] == ["p:0", "p:1", "p:2"]
    assert cluster.children("p:1") == []
    with pytest.raises(JobNotFoundError):
        cluster.describe("nope")


def test_spot_retry_tags_scripts_functions_and_maps() -> None:
    fake = FakeProvider()
    cluster = Cluster(fake)

    cluster.submit("date", spot_retry=True)
    cluster.submit(["date"])
    cluster.map(str, [1, 2], spot_retry=True, executor="process")

    assert [r.tags.get("batchkit:spot-retry") for r in fake.requests] == ["true", None, "true"]


def test_a_handle_reads_any_attempt_of_a_retried_job() -> None:
    fake = FakeProvider()
    fake.add(Job("j", "n", JobStatus.RUNNING, retry_attempts=2))
    fake.start("j")
    fake.log("j", "first try")
    fake.retry("j", 3, "Essential container in task exited")
    fake.log("j", "second try")
    job = Cluster(fake).job("j")

    assert job.logs().text == "second try\n"
    assert job.logs(attempt=1).text == "first try\n"
    assert job.logs(attempt="all").text == "first try\nsecond try\n"


@pytest.mark.parametrize(("kind", "longest"), [("local", 2.0), ("aws", 10.0)])
def test_waiting_polls_at_most_every_2_s_locally_and_10_s_on_aws(kind: str, longest: float) -> None:
    fake = FakeProvider(kind=kind)
    fake.add(Job("j", "n", JobStatus.RUNNING))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 12:
            fake.finish("j")

    Cluster(fake, sleep=sleep).wait("j")

    assert max(sleeps) == longest

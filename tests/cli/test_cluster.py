"""`batchkit cluster …` through the real Typer app: config errors, template, moto lifecycle."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from typer.testing import CliRunner, Result

from batchkit import __version__
from batchkit.cli.app import app
from batchkit.cli.cluster import ClusterEnv
from batchkit.providers.aws.session import AwsSession
from tests.fixtures.moto_batch import MOTO_AS_AWS
from tests.infra.moto_cluster import (
    EXAMPLE,
    MOCK_CONFIG,
    REGION,
    example_config_text,
    fill,
    moto_network,
    offline_parameters,
    remaining,
)

BUCKET = "batchkit-research-123456789012-us-east-1"


class Cli:
    def __init__(self, confirm: bool = True) -> None:
        self.environ = dict(os.environ)
        self.sleeps: list[float] = []
        self.prompts: list[str] = []
        self.answer = confirm

    def env(self) -> ClusterEnv:
        def confirm(text: str) -> bool:
            self.prompts.append(text)
            return self.answer

        return ClusterEnv(
            session=lambda profile, region, cluster: AwsSession(
                profile=profile,
                region=region or REGION,
                cluster=cluster,
                hooks=MOTO_AS_AWS,
            ),
            sleep=self.sleeps.append,
            confirm=confirm,
            environ=self.environ,
        )

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["cluster", *args], obj=self.env())


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


# -- init and template ------------------------------------------------------------------------


def test_init_writes_the_commented_example_and_refuses_to_overwrite(
    cli: Cli, workdir: Path
) -> None:
    result = cli.run("init")
    assert result.exit_code == 0, result.output
    written = (workdir / "batchkit.yaml").read_text()
    assert written == EXAMPLE.read_text()
    assert "# " in written
    assert "wrote batchkit.yaml" in result.stderr

    (workdir / "batchkit.yaml").write_text("name: mine\n")
    again = cli.run("init")
    assert again.exit_code == 5
    assert "batchkit.yaml already exists" in again.stderr
    assert "--force" in again.stderr
    assert (workdir / "batchkit.yaml").read_text() == "name: mine\n"
    assert cli.run("init", "--force").exit_code == 0
    assert (workdir / "batchkit.yaml").read_text() == written


def test_template_prints_yaml_and_json(cli: Cli, workdir: Path) -> None:
    cli.run("init")
    result = cli.run("template", "-f", "batchkit.yaml")
    assert result.exit_code == 0, result.stderr
    template = yaml.safe_load(result.stdout)
    assert template["Outputs"]["BatchkitVersion"]["Value"] == __version__
    as_json = json.loads(cli.run("template", "--json").stdout)
    assert as_json == template


def test_init_names_a_path_it_cannot_write(cli: Cli, workdir: Path) -> None:
    for target, needle in (
        (str(workdir), f"-f/--file {workdir} is a directory"),
        (str(workdir / "no" / "such" / "batchkit.yaml"), "cannot write it: No such file"),
    ):
        result = cli.run("init", "-f", target)
        assert result.exit_code == 2, result.output
        assert needle in result.stderr and "hint:" in result.stderr
    assert not (workdir / "no").exists()


def test_an_unknown_name_without_a_region_is_not_found(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    env = ClusterEnv(session=lambda p, r, c: AwsSession(profile=p, region=r, cluster=c))
    for command in (["status"], ["delete", "--yes"]):
        result = CliRunner().invoke(app, ["cluster", *command, "nosuch"], obj=env)
        assert result.exit_code == 3, result.output
        assert "error: no cluster named 'nosuch'" in result.stderr
        assert "no AWS region is set" in result.stderr
    bad = CliRunner().invoke(app, ["cluster", "status", "no_such"], obj=env)
    assert bad.exit_code == 2 and "NAME 'no_such' is not a valid cluster name" in bad.stderr


def test_template_reads_a_bounded_amount(cli: Cli, workdir: Path) -> None:
    result = cli.run("template", "-f", "/dev/zero")
    assert result.exit_code == 2
    assert "/dev/zero: larger than 1024 KiB" in result.stderr


def test_a_missing_config_file_says_how_to_make_one(cli: Cli, workdir: Path) -> None:
    result = cli.run("template", "-f", "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml: no such file" in result.stderr
    assert "batchkit cluster init" in result.stderr


BROKEN = """\
name: research
region: us-east-1
subnets: [subnet-0123456789abcdef0]
security_groups: [sg-0123456789abcdef0]
queues:
  - name: cpu
    compute_environments:
      - name: od
        type: EC2
        min_vcpus: 8
        max_vcpus: 4
      - name: farg
        type: FARGATE
        instance_types: [c5]
  - name: cpu
    compute_environments:
      - name: g
        instance_types: [g5.xlarge]
"""


def test_cross_field_errors_name_file_line_and_key(cli: Cli, workdir: Path) -> None:
    Path("bad.yaml").write_text(BROKEN)
    result = cli.run("template", "-f", "bad.yaml")
    assert result.exit_code == 2
    err = result.stderr
    assert "error: bad.yaml is invalid:" in err
    assert "bad.yaml:11: queues[0].compute_environments[0].max_vcpus: must be at least" in err
    assert "bad.yaml:14: queues[0].compute_environments[1].instance_types: FARGATE" in err
    assert "bad.yaml:7: queues[0].compute_environments: a queue cannot mix" in err
    assert "bad.yaml:15: queues[1].name: queue name 'cpu' is already used" in err
    assert "bad.yaml:18: queues[1].compute_environments[0].instance_types[0]: 'g5.xlarge'" in err
    assert "gpu: true" in err
    assert "hint:" in err
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: ok\nqueues: [\n", "bad.yaml:3: not valid YAML"),
        ("- a\n- b\n", "bad.yaml:1: expected a mapping"),
        ("name: ab\nname: cd\n", "bad.yaml:2: name: duplicate key (first given on line 1)"),
        (
            BROKEN.replace("region: us-east-1", "region: us-east-1\nregoin: x"),
            "bad.yaml:3: regoin: unknown key",
        ),
        (BROKEN.replace("name: research", "name: Research_1"), "bad.yaml:1: name: use 2-26"),
        (BROKEN.replace("max_vcpus: 4", "max_vcpus: lots"), "bad.yaml:11: queues[0]"),
        (
            BROKEN.replace("subnets: [subnet-0123456789abcdef0]", "subnets: [sub-1]"),
            "bad.yaml:3: subnets[0]: expected a subnet id",
        ),
        (
            BROKEN.replace("queues:", "volumes:\n  - {type: efs, name: v}\nqueues:"),
            "bad.yaml:6: volumes[0].file_system_id: required key is missing",
        ),
    ],
)
def test_structural_errors_name_file_line_and_key(
    cli: Cli, workdir: Path, text: str, expected: str
) -> None:
    Path("bad.yaml").write_text(text)
    result = cli.run("template", "-f", "bad.yaml")
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output


def _valid() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.text(max_size=12)
    | st.sampled_from(["EC2", "SPOT", "FARGATE", "g5.xlarge", "efs", "subnet-1", "0"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_invalid_configs_fail_cleanly(data: st.DataObject) -> None:
    """Any mutation of a valid config either renders, or fails with file:line: key and exit 2."""
    config = _valid()
    path = data.draw(st.sampled_from(_paths(config)))
    parent: Any = config
    for part in path[:-1]:
        parent = parent[part]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JUNK)
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "gen.yaml"
        file.write_text(yaml.safe_dump(config))
        result = Cli().run("template", "-f", str(file))
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    assert "error: unexpected" not in result.stderr
    if result.exit_code == 2:
        assert f"{file}:" in result.stderr
        assert "hint:" in result.stderr


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_fails_cleanly(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "junk.yaml"
        file.write_text(text, encoding="utf-8")
        result = Cli().run("template", "-f", str(file))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "error: unexpected" not in result.stderr
    assert f"{file}" in result.stderr


# -- the lifecycle on moto --------------------------------------------------------------------


@pytest.fixture
def deployed(cli: Cli, workdir: Path) -> Iterator[list[str]]:
    """The example cluster created through the CLI on moto; yields the --param flags used."""
    with mock_aws(config=MOCK_CONFIG):
        Path("batchkit.yaml").write_text(example_config_text(moto_network()))
        flags = [f"--param={k}={v}" for k, v in offline_parameters().items()]
        result = cli.run("create", "-f", "batchkit.yaml", *flags, "--json")
        assert result.exit_code == 0, result.output
        outcome = json.loads(result.stdout)
        assert outcome["status"] == "CREATE_COMPLETE"
        assert outcome["outputs"]["BatchkitVersion"] == __version__
        assert "CREATE_COMPLETE" in result.stderr  # live stack events
        yield flags


def test_create_then_status_and_list(cli: Cli, deployed: list[str]) -> None:
    status = cli.run("status", "research", "--json", "--events")
    assert status.exit_code == 0, status.output
    payload = json.loads(status.stdout)
    assert payload["status"] == "CREATE_COMPLETE"
    assert payload["parameters"]["Scheduler"] == "awsbatch"
    assert payload["events"]
    assert payload["subscriptions"] == []  # the example subscribes nobody
    human = cli.run("status", "research")
    assert "queue:    cpu" in human.stdout
    assert "notify:   nobody is subscribed to the job events topic" in human.stdout
    # What the stack's AWS::SNS::Subscription makes (moto's CloudFormation skips that type).
    sns = boto3.client("sns", region_name=REGION)
    sns.subscribe(TopicArn=payload["outputs"]["JobEventsTopicArn"], Protocol="email",
                  Endpoint="oncall@example.com")  # fmt: skip
    human = cli.run("status", "research")
    assert "notify:   oncall@example.com (email) confirmed" in human.stdout
    subscribed = json.loads(cli.run("status", "research", "--json").stdout)["subscriptions"]
    assert subscribed == [
        {"protocol": "email", "endpoint": "oncall@example.com", "confirmed": True}
    ]
    listed = cli.run("list", "--json")
    assert [c["name"] for c in json.loads(listed.stdout)] == ["research"]
    assert "research" in cli.run("list").stdout


def test_create_twice_is_a_conflict(cli: Cli, deployed: list[str]) -> None:
    again = cli.run("create", "-f", "batchkit.yaml", *deployed)
    assert again.exit_code == 5
    assert "already exists" in again.stderr
    assert "batchkit cluster update" in again.stderr


def test_update_shows_the_change_set_and_asks(cli: Cli, deployed: list[str]) -> None:
    text = Path("batchkit.yaml").read_text()
    Path("batchkit.yaml").write_text(
        text.replace(
            "queues:\n",
            "queues:\n  - name: extra\n    compute_environments:\n"
            "      - {name: od, type: EC2, max_vcpus: 8}\n",
            1,
        )
    )
    cli.answer = False
    declined = cli.run("update", "-f", "batchkit.yaml")
    assert declined.exit_code == 1
    assert "+ JobQueueExtra (AWS::Batch::JobQueue)" in declined.stderr
    assert cli.prompts and "apply these" in cli.prompts[0]
    applied = cli.run("update", "-f", "batchkit.yaml", "--yes", "--json")
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["status"] == "UPDATE_COMPLETE"


def _change_sets() -> list[dict[str, Any]]:
    cfn = boto3.client("cloudformation", region_name=REGION)
    return list(cfn.list_change_sets(StackName="research")["Summaries"])


def test_update_refuses_what_would_replace_a_named_compute_environment(
    cli: Cli, deployed: list[str]
) -> None:
    """Tags of a compute environment can be set only at creation (CloudFormation registry
    schema), and a named one cannot be replaced: refused before any change set exists."""
    text = Path("batchkit.yaml").read_text()
    Path("batchkit.yaml").write_text(text.replace("tags:\n", "tags:\n  owner: genomics\n", 1))
    before = boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName="research"
    )["Stacks"][0]["StackStatus"]
    result = cli.run("update", "-f", "batchkit.yaml", "--yes")
    assert result.exit_code == 2, result.output
    assert "refused before changing anything" in result.stderr
    assert "ComputeEnvironmentCpuSpot" in result.stderr and "fixed name" in result.stderr
    assert "another `name:` in batchkit.yaml" in result.stderr
    assert "hint: nothing was changed" in result.stderr
    assert _change_sets() == []
    after = boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName="research"
    )["Stacks"][0]["StackStatus"]
    assert after == before


def test_update_says_what_new_instance_types_do_to_running_jobs(
    cli: Cli, deployed: list[str]
) -> None:
    text = Path("batchkit.yaml").read_text()
    Path("batchkit.yaml").write_text(text.replace("[c6i, m6i, r6i]", "[c6i, m6i]", 1))
    planned = cli.run("update", "-f", "batchkit.yaml", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["status"] == "PLANNED" and not plan["adopts_update_policy"]
    assert [(e["logical_id"], e["kind"], e["properties"]) for e in plan["effects"]] == [
        (
            "ComputeEnvironmentCpuSpot",
            "infrastructure-update",
            ["ComputeResources/InstanceTypes"],
        )
    ]
    assert "running jobs get up to 30 minutes to finish" in planned.stderr
    assert _change_sets() == []  # --dry-run leaves no change set behind
    applied = cli.run("update", "-f", "batchkit.yaml", "--yes", "--json")
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["status"] == "UPDATE_COMPLETE"


def test_a_stack_made_before_the_update_policy_adopts_it_in_an_update_of_its_own(
    cli: Cli, deployed: list[str]
) -> None:
    """CloudFormation: switch ReplaceComputeEnvironment to false without other changes."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    old = cfn.get_template(StackName="research")["TemplateBody"]
    old = json.loads(old) if isinstance(old, str) else old
    for resource in old["Resources"].values():
        if resource["Type"] == "AWS::Batch::ComputeEnvironment":
            resource["Properties"].pop("ReplaceComputeEnvironment")
            resource["Properties"].pop("UpdatePolicy", None)
    parameters = cfn.describe_stacks(StackName="research")["Stacks"][0]["Parameters"]
    cfn.update_stack(
        StackName="research",
        TemplateBody=json.dumps(old),
        Parameters=parameters,
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    text = Path("batchkit.yaml").read_text()
    Path("batchkit.yaml").write_text(text.replace("[c6i, m6i, r6i]", "[c6i, m6i]", 1))
    result = cli.run("update", "-f", "batchkit.yaml", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "UPDATE_COMPLETE"
    assert "first, in an update of its own" in result.stderr
    assert result.stderr.index("step 1 of 2") < result.stderr.index("step 2 of 2")
    now = cfn.get_template(StackName="research")["TemplateBody"]
    now = json.loads(now) if isinstance(now, str) else now
    spot = now["Resources"]["ComputeEnvironmentCpuSpot"]["Properties"]
    assert spot["ReplaceComputeEnvironment"] is False
    assert spot["ComputeResources"]["InstanceTypes"] == ["c6i", "m6i"]


def test_delete_empties_everything_and_reports_nothing_left(cli: Cli, deployed: list[str]) -> None:
    fill(BUCKET, "batchkit/research/", "batchkit/research", objects=12, images=4)
    result = cli.run("delete", "research", "--yes", "--json")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "DELETE_COMPLETE"
    assert outcome["leftovers"] == []
    assert "emptied ECR repository batchkit/research (4 images)" in result.stderr
    assert set(remaining("research", BUCKET).values()) == {0}
    gone = cli.run("status", "research")
    assert gone.exit_code == 3
    assert "no cluster named 'research'" in gone.stderr


def test_delete_asks_first(cli: Cli, deployed: list[str]) -> None:
    cli.answer = False
    result = cli.run("delete", "research")
    assert result.exit_code == 1
    assert "nothing deleted" in result.stderr
    assert cli.run("status", "research").exit_code == 0


def test_bad_param_flag_is_a_usage_error(cli: Cli, workdir: Path) -> None:
    cli.run("init")
    result = cli.run("create", "--param", "novalue")
    assert result.exit_code == 2
    assert "is not KEY=VALUE" in result.stderr


def test_jobs_run_on_a_new_cluster_with_no_further_setup(cli: Cli, deployed: list[str]) -> None:
    """`batchkit sub -c NAME` finds the cluster from the stack's outputs alone (C4)."""
    submitted = CliRunner().invoke(app, ["sub", "-c", "research", "echo", "hi"])
    assert submitted.exit_code == 0, submitted.output
    assert "has been submitted." in submitted.stdout
    queues = CliRunner().invoke(app, ["queues", "-c", "research"])
    assert "research_fargate" in queues.stdout


def test_create_records_the_cluster_region_so_jobs_find_it_from_another_region(
    cli: Cli, workdir: Path
) -> None:
    from batchkit.config import batchkit_home, load_user_config

    with mock_aws(config=MOCK_CONFIG):
        Path("batchkit.yaml").write_text(example_config_text(moto_network()))
        flags = [f"--param={k}={v}" for k, v in offline_parameters().items()]
        cli.environ["AWS_DEFAULT_REGION"] = "eu-west-1"
        result = cli.run("create", "-f", "batchkit.yaml", *flags)
        assert result.exit_code == 0, result.output
        assert "recorded cluster research (region us-east-1)" in result.stderr
        assert load_user_config().cluster("research").region == "us-east-1"
        os.environ["AWS_DEFAULT_REGION"] = "eu-west-1"
        queues = CliRunner().invoke(app, ["queues", "-c", "research"])
    assert queues.exit_code == 0, queues.output
    assert "research_fargate" in queues.stdout
    assert (batchkit_home() / "config.yaml").exists()


def _awsbatch_cli() -> Path | None:
    configured = os.environ.get("BATCHKIT_AWSBATCH_CLI_BIN")
    root = Path(__file__).resolve().parents[2]
    for folder in [Path(configured)] if configured else [root / ".venv-awsbatch-cli" / "bin"]:
        if (folder / "awsbqueues").exists():
            return folder
    return None


def test_awsbatch_cli_drives_a_batchkit_cluster(
    cli: Cli, workdir: Path, moto_endpoint_with_managed_policies: str
) -> None:
    """awsbatch-cli 1.6.0 reads the stack's parameters and outputs (C4) and submits to it."""
    folder = _awsbatch_cli()
    if folder is None:
        pytest.skip("aws-parallelcluster-awsbatch-cli 1.6.0 is not installed (run scripts/test)")
    Path("batchkit.yaml").write_text(example_config_text(moto_network()))
    flags = [f"--param={k}={v}" for k, v in offline_parameters().items()]
    created = Cli().run("create", "-f", "batchkit.yaml", *flags)
    assert created.exit_code == 0, created.output

    def awsb(command: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(folder / command), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    # (awsbqueues cannot run on moto: its job queues lack statusReason.)
    submitted = awsb("awsbsub", "-c", "research", "-jn", "hello", stdin="echo hello\n")
    assert submitted.returncode == 0, submitted.stderr
    assert "(hello) has been submitted." in submitted.stdout
    listed = awsb("awsbstat", "-c", "research", "-s", "ALL")
    assert listed.returncode == 0, listed.stderr
    assert "hello" in listed.stdout


@pytest.mark.parametrize("command", ["delete", "status"])
def test_help_says_a_named_cluster_takes_its_profile_and_region_from_the_user_config(
    command: str,
) -> None:
    result = CliRunner().invoke(app, ["cluster", command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--profile PROFILE AWS profile (default: the cluster's in config.yaml" in text
    assert "--region REGION AWS region (default: the cluster's in config.yaml" in text


def test_status_says_when_subscriptions_cannot_be_read(cli: Cli, deployed: list[str]) -> None:
    from botocore.awsrequest import AWSResponse

    def deny(**_: object) -> tuple[AWSResponse, dict[str, object]]:
        error = {"Code": "AuthorizationError", "Message": "not allowed to list subscriptions"}
        parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return AWSResponse("https://injected", 403, {}, None), parsed  # type: ignore[arg-type]

    env = ClusterEnv(
        session=lambda profile, region, cluster: AwsSession(
            profile=profile,
            region=region or REGION,
            cluster=cluster,
            hooks=[("before-call.sns.ListSubscriptionsByTopic", deny)],
        ),
        sleep=cli.sleeps.append,
        confirm=lambda _: True,
        environ=cli.environ,
    )
    result = CliRunner().invoke(app, ["cluster", "status", "research"], obj=env)
    assert result.exit_code == 0, result.output
    assert "status:   CREATE_COMPLETE" in result.stdout
    assert "notify:   not checked (" in result.stdout

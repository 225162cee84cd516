from __future__ import annotations

import pytest

from batchkit.errors import UsageError
from batchkit.models import Dependency, DependencyType, Resources, SubmitRequest
from batchkit.providers.aws.submitjob import (
    CLIENT_TOKEN_TAG,
    content_matches,
    image_job_definition,
    submit_job_params,
)

QUEUE = "arn:aws:batch:us-east-1:1:job-queue/q"
JD = "arn:aws:batch:us-east-1:1:job-definition/jd:1"
HOSTILE = ("it's", '"$(rm -rf /)"', "a\nb", "`id`", "ünï©ødé", "; ls")


def params(**kwargs: object) -> dict[str, object]:
    request = SubmitRequest(name="job", command=("/bin/sh", "-c", "x"), **kwargs)  # type: ignore[arg-type]
    return submit_job_params(request, queue=QUEUE, job_definition=JD)


def test_resources_use_resource_requirements_not_deprecated_fields() -> None:
    p = params(resources=Resources(vcpus=2, memory=2048, gpus=1))
    overrides = p["containerOverrides"]
    assert overrides["resourceRequirements"] == [
        {"type": "VCPU", "value": "2"},
        {"type": "MEMORY", "value": "2048"},
        {"type": "GPU", "value": "1"},
    ]
    assert "vcpus" not in overrides and "memory" not in overrides


def test_fractional_vcpus_are_kept() -> None:
    p = params(resources=Resources(vcpus=0.25, memory=512))
    assert p["containerOverrides"]["resourceRequirements"][0] == {"type": "VCPU", "value": "0.25"}


def test_the_command_travels_byte_exact() -> None:
    request = SubmitRequest(name="job", command=("/bin/sh", "-c", "w", "batchkit-job", *HOSTILE))
    p = submit_job_params(request, queue=QUEUE, job_definition=JD)
    assert p["containerOverrides"]["command"] == ["/bin/sh", "-c", "w", "batchkit-job", *HOSTILE]


def test_s3_folder_url_from_the_environment_wins() -> None:
    p = params(
        environment={"PCLUSTER_JOB_S3_URL": "s3://b/from-env/"}, s3_folder_url="s3://b/other/"
    )
    env = p["containerOverrides"]["environment"]
    assert env == [{"name": "PCLUSTER_JOB_S3_URL", "value": "s3://b/from-env/"}]
    p = params(s3_folder_url="s3://b/folder/")
    assert p["containerOverrides"]["environment"] == [
        {"name": "PCLUSTER_JOB_S3_URL", "value": "s3://b/folder/"}
    ]


def test_array_jobs() -> None:
    assert params(array_size=1000)["arrayProperties"] == {"size": 1000}
    assert "arrayProperties" not in params()


def test_multi_node_jobs_override_every_node() -> None:
    p = params(nodes=4, resources=Resources(vcpus=4, memory=4096))
    assert "containerOverrides" not in p
    node = p["nodeOverrides"]
    assert node["numNodes"] == 4
    [override] = node["nodePropertyOverrides"]
    assert override["targetNodes"] == "0:"
    assert override["containerOverrides"]["command"] == ["/bin/sh", "-c", "x"]


def test_up_to_twenty_dependencies() -> None:
    deps = tuple(Dependency(f"id-{i}") for i in range(20))
    p = params(depends_on=(*deps[:19], Dependency("a", DependencyType.N_TO_N)))
    assert len(p["dependsOn"]) == 20
    assert p["dependsOn"][-1] == {"jobId": "a", "type": "N_TO_N"}
    with pytest.raises(UsageError, match="at most 20"):
        params(depends_on=(*deps, Dependency("x")))


def test_retries_and_timeouts() -> None:
    p = params(retry_attempts=3, timeout=600)
    assert p["retryStrategy"] == {"attempts": 3}
    assert p["timeout"] == {"attemptDurationSeconds": 600}
    assert "timeout" not in params()


def test_spot_retry_policy_is_opt_in() -> None:
    p = params(tags={"batchkit:spot-retry": "true"})
    strategy = p["retryStrategy"]
    assert strategy["attempts"] == 3
    assert strategy["evaluateOnExit"] == [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ]
    assert (
        params(tags={"batchkit:spot-retry": "true"}, retry_attempts=5)["retryStrategy"]["attempts"]
        == 5
    )
    assert "evaluateOnExit" not in params(tags={"batchkit:spot-retry": "no"})["retryStrategy"]


def test_client_token_and_tags_go_on_the_job() -> None:
    p = params(tags={"batchkit:executor": "auto"}, client_token="tok-1")
    assert p["tags"] == {"batchkit:executor": "auto", CLIENT_TOKEN_TAG: "tok-1"}
    assert p["propagateTags"] is True
    assert "tags" not in params()


BASE = {
    "jobDefinitionName": "pc-jd",
    "jobDefinitionArn": "arn:aws:batch:us-east-1:1:job-definition/pc-jd:3",
    "revision": 3,
    "status": "ACTIVE",
    "type": "container",
    "containerProperties": {"image": "old:1", "vcpus": 1, "memory": 512, "command": ["true"]},
    "tags": {"a": "b"},
}


def test_image_definitions_are_named_by_their_content() -> None:
    one = image_job_definition(BASE, "repo:abc", cluster="c1")
    again = image_job_definition(BASE, "repo:abc", cluster="c1")
    other = image_job_definition(BASE, "repo:def", cluster="c1")
    elsewhere = image_job_definition(BASE, "repo:abc", cluster="c2")
    assert one == again
    assert one["jobDefinitionName"].startswith("batchkit-")
    assert len(one["jobDefinitionName"]) == len("batchkit-") + 12
    assert one["jobDefinitionName"] != other["jobDefinitionName"]
    # another cluster never shares (and so never deregisters) this cluster's definition
    assert elsewhere["jobDefinitionName"] != one["jobDefinitionName"]
    assert one["containerProperties"]["image"] == "repo:abc"
    # the base's own tags are not copied; the cluster tag is what `cluster delete` looks for
    assert one["tags"] == {"batchkit:cluster": "c1"}
    for key in ("jobDefinitionArn", "revision", "status"):
        assert key not in one
    assert BASE["containerProperties"]["image"] == "old:1"  # the base is not modified
    assert content_matches({"containerProperties": {"image": "repo:abc"}}, one)
    assert not content_matches({"containerProperties": {"image": "repo:zzz"}}, one)


def test_image_definitions_for_multinode() -> None:
    base = {
        "type": "multinode",
        "nodeProperties": {
            "numNodes": 1,
            "mainNode": 0,
            "nodeRangeProperties": [{"targetNodes": "0:", "container": {"image": "old"}}],
        },
    }
    payload = image_job_definition(base, "new:1", cluster="c")
    assert payload["nodeProperties"]["nodeRangeProperties"][0]["container"]["image"] == "new:1"


def test_share_and_priority_fill_share_identifier_and_priority_override() -> None:
    from batchkit.models import SubmitRequest
    from batchkit.providers.aws.submitjob import submit_job_params

    request = SubmitRequest(name="j", command=("true",), share="genomics", priority=0)
    params = submit_job_params(request, queue="q", job_definition="d")
    assert params["shareIdentifier"] == "genomics"
    assert params["schedulingPriorityOverride"] == 0
    plain = submit_job_params(
        SubmitRequest(name="j", command=("true",)), queue="q", job_definition="d"
    )
    assert "shareIdentifier" not in plain and "schedulingPriorityOverride" not in plain

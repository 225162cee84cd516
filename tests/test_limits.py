"""AWS Batch's limits live in one leaf, `batchkit.limits`, and every place that enforces them
draws the line at the same value: what the CLI's validation lets through the local engine
admits, and what one refuses the other refuses too, at each end of each range."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from batchkit import limits
from batchkit.errors import UsageError
from batchkit.jobs import validation
from batchkit.models import Dependency, JobSpec, Resources, SubmitRequest
from batchkit.providers.aws.submitjob import retry_strategy, submit_job_params
from batchkit.providers.local import admission
from batchkit.providers.local.provider import LocalProvider
from tests import aws_rules

ROOT = Path(__file__).resolve().parents[1]
GOOD = JobSpec(name="ok", command=("true",))


def _refused(check: Any) -> bool:
    try:
        check()
    except UsageError:
        return True
    return False


def _verdicts(provider: LocalProvider, fields: dict[str, Any]) -> tuple[str, str]:
    """(validation's verdict, the local engine's) on the same job: "ok" or "refused"."""
    spec = replace(GOOD, **fields)
    request = SubmitRequest(name="ok", command=("true",), **fields)
    by_validation = _refused(lambda: validation.validate_spec(spec))
    by_engine = _refused(lambda: admission.admit(request, provider.store, None))
    return ("refused" if by_validation else "ok", "refused" if by_engine else "ok")


def _dependencies(provider: LocalProvider, count: int) -> tuple[Dependency, ...]:
    """`count` dependencies on jobs the engine knows (it refuses a dependency on an unknown one)."""
    return tuple(
        Dependency(provider.submit(SubmitRequest(name=f"d{i}", command=("true",))).job_id)
        for i in range(count)
    )


@pytest.fixture
def provider(isolated_environment: Path) -> LocalProvider:
    return LocalProvider(start_worker=False)


# (field, value at the limit, value just past it), each end of each range.
BOUNDS = [
    ("array_size", limits.MIN_ARRAY_SIZE, limits.MIN_ARRAY_SIZE - 1),
    ("array_size", limits.MAX_ARRAY_SIZE, limits.MAX_ARRAY_SIZE + 1),
    ("nodes", 1, 0),
    ("nodes", limits.MAX_NODES, limits.MAX_NODES + 1),
    ("retry_attempts", limits.MIN_RETRY_ATTEMPTS, limits.MIN_RETRY_ATTEMPTS - 1),
    ("retry_attempts", limits.MAX_RETRY_ATTEMPTS, limits.MAX_RETRY_ATTEMPTS + 1),
    ("timeout", limits.MIN_TIMEOUT_SECONDS, limits.MIN_TIMEOUT_SECONDS - 1),
    ("timeout", limits.MAX_TIMEOUT_SECONDS, limits.MAX_TIMEOUT_SECONDS + 1),
    (
        "resources",
        Resources(memory=limits.MIN_MEMORY_MIB),
        Resources(memory=limits.MIN_MEMORY_MIB - 1),
    ),
]


@pytest.mark.parametrize(("field", "at_limit", "past_limit"), BOUNDS)
def test_validation_and_the_local_engine_draw_the_line_at_the_same_value(
    provider: LocalProvider, field: str, at_limit: object, past_limit: object
) -> None:
    assert _verdicts(provider, {field: at_limit}) == ("ok", "ok")
    assert _verdicts(provider, {field: past_limit}) == ("refused", "refused")


def test_both_and_the_aws_payload_take_the_most_dependencies_and_no_more(
    provider: LocalProvider,
) -> None:
    deps = _dependencies(provider, limits.MAX_DEPENDENCIES + 1)
    most, too_many = deps[:-1], deps

    assert _verdicts(provider, {"depends_on": most}) == ("ok", "ok")
    assert _verdicts(provider, {"depends_on": too_many}) == ("refused", "refused")
    request = SubmitRequest(name="ok", command=("true",))
    submit_job_params(replace(request, depends_on=most), queue="q", job_definition="jd")
    with pytest.raises(UsageError):
        submit_job_params(replace(request, depends_on=too_many), queue="q", job_definition="jd")
    with pytest.raises(UsageError, match=f"at most {limits.MAX_DEPENDENCIES}"):
        validation.parse_dependencies([";".join(d.job_id or "" for d in too_many)])


def test_the_aws_payload_keeps_retries_within_the_range() -> None:
    request = SubmitRequest(name="ok", command=("true",))
    for asked, sent in ((0, limits.MIN_RETRY_ATTEMPTS), (99, limits.MAX_RETRY_ATTEMPTS)):
        assert retry_strategy(replace(request, retry_attempts=asked)) == {"attempts": sent}


def test_the_limits_match_the_tests_own_reading_of_the_aws_documents() -> None:
    """`tests/aws_rules.py` checks recorded AWS calls against the same pages, written down
    separately: the two readings agree."""
    assert (limits.MIN_ARRAY_SIZE, limits.MAX_ARRAY_SIZE) == aws_rules.ARRAY_SIZE
    assert limits.MAX_DEPENDENCIES == aws_rules.MAX_DEPENDENCIES
    assert (limits.MIN_RETRY_ATTEMPTS, limits.MAX_RETRY_ATTEMPTS) == aws_rules.RETRY_ATTEMPTS
    assert limits.MIN_TIMEOUT_SECONDS == aws_rules.MIN_TIMEOUT_SECONDS


def test_the_old_names_still_import_and_are_the_shared_values() -> None:
    for module in (validation, admission):
        assert module.MAX_ARRAY_SIZE == limits.MAX_ARRAY_SIZE
        assert module.MAX_DEPENDENCIES == limits.MAX_DEPENDENCIES
    for name in ("MAX_RETRY_ATTEMPTS", "MIN_TIMEOUT_SECONDS", "MAX_TIMEOUT_SECONDS", "MAX_NODES"):
        assert getattr(validation, name) == getattr(limits, name)


def test_the_limits_module_is_plain_constants_importing_nothing() -> None:
    """`batchkit sub` loads it at start-up: no import, no call, only named integers."""
    tree = ast.parse((ROOT / "batchkit" / "limits.py").read_text())
    body = tree.body[1:] if isinstance(tree.body[0], ast.Expr) else tree.body  # the docstring
    assert body
    for node in body:
        assert isinstance(node, ast.Assign), ast.dump(node)
        assert not any(isinstance(n, ast.Call | ast.Name) for n in ast.walk(node.value))
        (target,) = node.targets
        assert isinstance(target, ast.Name)
        assert target.id.isupper()
        assert isinstance(getattr(limits, target.id), int)

"""--share/--priority: refused before anything is staged or sent, carried to the provider."""

from __future__ import annotations

import pytest

from batchkit.errors import ExitCode, UsageError
from batchkit.jobs.flags import SubmitFlags, prepare
from batchkit.jobs.submission import Submitter
from batchkit.models import JobSpec
from tests.jobs.fakes import FakeProvider


def submit(fake: FakeProvider, **fields: object) -> None:
    spec = JobSpec(name="j", command=("true",), **fields)  # type: ignore[arg-type]
    Submitter(fake, clock=lambda: 1.0, new_token=lambda: "t").submit(spec)


def test_a_fair_share_queue_refuses_a_job_without_a_share_before_any_call() -> None:
    fake = FakeProvider(fair_share_queues=frozenset({"shared"}))
    with pytest.raises(UsageError) as caught:
        submit(fake, queue="shared")
    assert caught.value.exit_code == ExitCode.USAGE
    assert "shared schedules by fair share" in caught.value.message
    assert caught.value.hint and "--share ID" in caught.value.hint
    assert fake.calls == [] and fake.objects.items == {}


def test_a_queue_without_a_policy_refuses_a_share_before_any_call() -> None:
    fake = FakeProvider(fair_share_queues=frozenset({"shared"}))
    with pytest.raises(UsageError) as caught:
        submit(fake, queue="cpu", share="genomics")
    assert "--share genomics: cpu has no fair-share scheduling policy" in caught.value.message
    assert fake.calls == [] and fake.objects.items == {}


def test_share_and_priority_reach_the_provider() -> None:
    fake = FakeProvider(fair_share_queues=frozenset({"shared"}))
    submit(fake, queue="shared", share="genomics", priority=90)
    (request,) = fake.requests
    assert (request.share, request.priority) == ("genomics", 90)


def test_a_provider_that_cannot_tell_lets_aws_decide() -> None:
    fake = FakeProvider(fair_share_queues=None)
    submit(fake, share="genomics")
    submit(fake)
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("share", "priority", "message"),
    [
        ("gen omics", None, "--share 'gen omics' is not a share identifier"),
        ("team-a", None, "--share 'team-a' is not a share identifier"),
        ("a" * 256, None, "is not a share identifier"),
        (None, 5, "--priority orders jobs within a share and needs --share"),
        ("genomics", 10000, "--priority must be between 0 and 9999, got 10000"),
        ("genomics", -1, "--priority must be between 0 and 9999, got -1"),
    ],
)
def test_bad_flags_are_refused_when_read(
    share: str | None, priority: int | None, message: str
) -> None:
    flags = SubmitFlags(argv=("true",), share=share, priority=priority)
    with pytest.raises(UsageError) as caught:
        prepare(flags, environ={})
    assert message in caught.value.message

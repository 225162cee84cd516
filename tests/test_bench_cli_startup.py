"""bench/cli_startup.py's verdict: its exit status says whether both start-up goals are met."""

from __future__ import annotations

import pytest

from bench.cli_startup import GOAL, verdict

BASELINE = ("awsbstat --help (awsbatch-cli 1.6.0)", 1.0)


def rows(help_ratio: float, sub_seconds: float) -> list[tuple[str, float]]:
    return [
        BASELINE,
        ("batchkit --help", help_ratio),
        ("batchkit stat (local, empty)", 0.5),
        ("batchkit sub true (local engine)", sub_seconds),
        ("python -c pass (interpreter alone)", 2.0),  # not batchkit: no part of the goal
    ]


@pytest.mark.parametrize(
    ("help_ratio", "sub_seconds", "status"),
    [
        (0.5, 0.090, 0),
        (GOAL, 0.090, 0),  # at the goal meets it
        (0.9, 0.090, 1),
        (0.5, 0.100, 0),  # sub at its target meets it
        (0.5, 0.101, 1),  # sub has its own target, in milliseconds, not a ratio
        (0.5, 1.500, 1),
        (0.9, 0.050, 1),  # a fast sub does not rescue a slow --help
    ],
)
def test_exit_status_is_1_when_the_worst_ratio_or_sub_misses_its_goal(
    help_ratio: float, sub_seconds: float, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verdict(rows(help_ratio, sub_seconds)) == status
    out = capsys.readouterr().out
    assert f"({'meets' if help_ratio <= GOAL else 'misses'} the goal)" in out
    within = "within" if sub_seconds <= 0.100 else "over"
    assert f"batchkit sub {sub_seconds * 1000:.1f} ms ({within} its 100 ms target" in out

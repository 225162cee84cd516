"""What the doctor says: findings, each a check, a verdict, what was seen and the fix.

A `Report` holds the findings about one job (or one cluster) most likely cause first: problems
before warnings, warnings before checks that could not be made, those before what is fine; within
a verdict, the more likely cause first. Nothing here prints: the CLI renders a report
(`batchkit.cli.doctoring`), a notebook shows its `_repr_html_`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from msgspec import Struct, field


class Verdict(StrEnum):
    PROBLEM = "problem"
    WARNING = "warning"
    NOT_CHECKED = "not checked"
    OK = "ok"

    @property
    def rank(self) -> int:
        return list(Verdict).index(self)


class Finding(Struct, frozen=True):
    """One check and its outcome.

    `check` says what was checked ("compute environment ce-1: maxvCpus"), `seen` what was found,
    with the numbers, `fix` the config key, flag or console action that changes it. `likelihood`
    (0-100) orders findings of the same verdict: how likely this is THE reason the job waits or
    failed. `subject` is the job the finding is about (None: the cluster). `details` holds extra
    lines (the end of a failed attempt's log)."""

    rule: str
    check: str
    verdict: Verdict
    seen: str
    fix: str | None = None
    likelihood: int = 50
    subject: str | None = None
    details: tuple[str, ...] = ()

    @property
    def is_problem(self) -> bool:
        return self.verdict is Verdict.PROBLEM

    def summary(self) -> str:
        """One line: what was seen, and the fix."""
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.seen}{fix}"

    def why(self, job_id: str) -> str:
        """The one line `stat` and `sub --wait` show: `why <job>: <seen>; fix: <fix>`."""
        return f"why {job_id}: {self.summary()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "check": self.check,
            "verdict": self.verdict.value,
            "seen": self.seen,
            "fix": self.fix,
            "likelihood": self.likelihood,
            "jobId": self.subject,
            "details": list(self.details),
        }


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Most likely cause first (a stable sort: rules of equal rank keep their order)."""
    return sorted(findings, key=lambda f: (f.verdict.rank, -f.likelihood))


def not_checked(rule: str, check: str, permission: str, subject: str | None = None) -> Finding:
    """A check the caller may not make: said so, never a failure of the whole command."""
    return Finding(
        rule=rule,
        check=check,
        verdict=Verdict.NOT_CHECKED,
        seen=f"not checked: needs {permission}",
        fix=f"grant {permission} to see this check",
        likelihood=0,
        subject=subject,
    )


class Report(Struct):
    """The doctor's answer about `subject` (a job id, or `cluster NAME`)."""

    subject: str
    findings: list[Finding] = field(default_factory=list)
    status: str | None = None
    """The job's status when the report is about one job."""

    def __post_init__(self) -> None:
        self.findings = ordered(self.findings)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.is_problem]

    @property
    def has_problem(self) -> bool:
        return any(f.is_problem for f in self.findings)

    @property
    def leading(self) -> Finding | None:
        """The most likely cause: the first problem or warning, if any."""
        first = self.findings[0] if self.findings else None
        if first is None or first.verdict not in (Verdict.PROBLEM, Verdict.WARNING):
            return None
        return first

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "status": self.status,
            "problem": self.has_problem,
            "findings": [f.to_dict() for f in self.findings],
        }

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(cell)}</td>"
                for cell in (f.verdict.value, f.check, f.seen, f.fix or "")
            )
            + "</tr>"
            for f in self.findings
        )
        head = "".join(f"<th>{h}</th>" for h in ("verdict", "checked", "seen", "fix"))
        title = html.escape(f"batchkit doctor: {self.subject}")
        return f"<table><caption>{title}</caption><tr>{head}</tr>{rows}</table>"

    def __repr__(self) -> str:
        lines = [f"<batchkit doctor report: {self.subject}>"]
        lines.extend(f"  {f.verdict.value}: {f.check}: {f.summary()}" for f in self.findings)
        return "\n".join(lines)

"""Rendering the doctor's findings (`batchkit doctor`, `stat`, `sub --wait`): one block per
finding, most likely cause first; verdicts coloured on a terminal only."""

from __future__ import annotations

from batchkit.doctor.findings import Finding, Report, Verdict

_COLOURS = {Verdict.PROBLEM: "31", Verdict.WARNING: "33", Verdict.NOT_CHECKED: "2"}
_WIDTH = 11


def _label(verdict: Verdict, colour: bool) -> str:
    text = verdict.value.upper() if verdict is not Verdict.OK else "ok"
    padded = text.ljust(_WIDTH)
    code = _COLOURS.get(verdict)
    return f"\x1b[{code}m{padded}\x1b[0m" if colour and code else padded


def finding_text(finding: Finding, *, colour: bool = False, with_subject: bool = False) -> str:
    indent = " " * (_WIDTH + 1)
    about = f"[{finding.subject}] " if with_subject and finding.subject else ""
    head = f"{_label(finding.verdict, colour)} {about}{finding.check}"
    if finding.verdict is Verdict.OK:
        return f"{head}: {finding.seen}"
    lines = [head, f"{indent}seen: {finding.seen}"]
    if finding.fix:
        lines.append(f"{indent}fix:  {finding.fix}")
    if finding.details:
        lines.append(f"{indent}last lines of the attempt's output:")
        lines.extend(f"{indent}| {line}" for line in finding.details)
    return "\n".join(lines)


def report_text(report: Report, *, colour: bool = False) -> str:
    status = f" ({report.status})" if report.status else ""
    cluster = report.subject.startswith("cluster ")
    title = f"batchkit doctor: {'' if cluster else 'job '}{report.subject}{status}"
    blocks = [finding_text(f, colour=colour, with_subject=cluster) for f in report.findings]
    problems = len(report.problems)
    verdict = (
        f"{problems} problem{'s' if problems != 1 else ''} found"
        if problems
        else "no problem found"
    )
    return "\n".join([title, "", *blocks, "", verdict]) + "\n"

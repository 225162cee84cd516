"""`batchkit doctor`: why a job waits or failed, and what to change (see docs/doctor.md).

Provider-neutral: rules are small pure functions over what a provider reports (`scene.Scene`,
`localrules.LocalScene`), each returning `Finding`s; `runner.Doctor` gathers the facts (through a
provider's fact source, read-only, within the rate budget) and orders the findings. Nothing here
prints.
"""

from batchkit.doctor.findings import Finding, Report, Verdict

__all__ = ["Finding", "Report", "Verdict"]

"""Printing what `batchkit cluster` commands show: a stack's events as they come (create, update,
delete) and in `status --events`, an update's change set as a diff and its review (what it does to
the jobs running on the cluster), and who is subscribed to the job events topic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchkit.cli.output import Terminal
    from batchkit.clustermodel import Subscription
    from batchkit.clusters.stacks import Change, Progress, StackEvent, UpdatePlan


def format_event(event: StackEvent) -> str:
    stamp = datetime.fromtimestamp(event.timestamp).strftime("%H:%M:%S")
    reason = f"  {event.reason}" if event.reason else ""
    return f"{stamp}  {event.status:<28} {event.resource_type:<34} {event.logical_id}{reason}"


def show_progress(term: Terminal) -> Callable[[Progress], None]:
    def show(progress: Progress) -> None:
        term.message(format_event(progress.event) if progress.event else progress.text)

    return show


_ACTION_MARKS = {"Add": "+", "Remove": "-", "Modify": "~"}


def format_changes(changes: list[Change]) -> str:
    """A change set as a diff: `+` added, `-` removed, `~` modified (and whether it is replaced)."""
    if not changes:
        return "no changes"
    lines = []
    for change in changes:
        mark = _ACTION_MARKS.get(change.action, "?")
        line = f"{mark} {change.logical_id} ({change.resource_type})"
        if change.action == "Modify":
            if change.attributes:
                line += f": {', '.join(change.attributes)}"
            if change.replacement in ("True", "Conditional"):
                line += f"  [replacement: {change.replacement}]"
        lines.append(line)
    return "\n".join(lines)


def format_review(plan: UpdatePlan) -> str:
    """What the update does to the work on the cluster, one line per touched resource."""
    lines = []
    if plan.adoption_url is not None:
        lines.append(
            "first, in an update of its own: the compute environments adopt the update policy "
            "(nothing is interrupted)"
        )
    for effect in plan.review.effects:
        what = ", ".join(p.rsplit("/", 1)[-1] for p in effect.properties)
        label = {
            "infrastructure-update": f"{what}: new instances",
            "remove": "removed",
            "replace": f"{what}: replaced",
        }.get(effect.kind, effect.kind)
        lines.append(f"{effect.logical_id} ({label}): {effect.running_jobs}")
    if not lines:
        return "running jobs: not interrupted (no compute environment needs new instances)"
    return "running jobs:\n" + "\n".join(f"  {line}" for line in lines)


def subscription_lines(subscribers: list[Subscription] | None, unchecked: str | None) -> list[str]:
    if unchecked:
        return [f"notify:   not checked ({unchecked})"]
    if subscribers is None:
        return []
    if not subscribers:
        return ["notify:   nobody is subscribed to the job events topic"]
    return [
        f"notify:   {s.endpoint} ({s.protocol}) "
        + ("confirmed" if s.confirmed else "pending confirmation: follow the link SNS mailed")
        for s in subscribers
    ]

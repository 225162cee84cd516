"""Printing what `batchkit image` commands produce: a build's progress as it comes (the context
upload, the CodeBuild build and its phases, the build log), its result (image and digest), the
plan of a dry run, and the table of `image list`; as JSON with `--json`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchkit.cli.output import Terminal
    from batchkit.images.plan import BuildEvent, ImagePlan, ImageResult
    from batchkit.providers.images import ImageRecord


def render_event(term: Terminal, event: BuildEvent, quiet: bool) -> None:
    from batchkit.images.plan import BuildLogLine, BuildPhase, BuildStarted, ContextUploaded

    if isinstance(event, ContextUploaded):
        term.message(f"uploaded the build context ({_size(event.size)}) to {event.url}")
    elif isinstance(event, BuildStarted):
        term.message(f"started CodeBuild build {event.build_id}")
        if event.console_url:
            term.message(f"  console: {event.console_url}")
    elif isinstance(event, BuildPhase):
        term.message(f"phase {event.phase}")
    elif isinstance(event, BuildLogLine) and not quiet:
        term.message(f"  | {event.message}")


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _result_lines(result: ImageResult) -> str:
    return f"image:  {result.image}\ndigest: {result.digest or '-'}\n"


def _dry_run_text(plan: ImagePlan, steps: list[str]) -> str:
    lines = [
        f"name:         {plan.recipe.name}",
        f"context:      {plan.context.root} ({plan.context.file_count} files, "
        f"{_size(plan.archive.size)} archived)",
        f"dockerfile:   {plan.recipe.dockerfile}",
        f"content hash: {plan.content_hash}",
        f"image:        {plan.image}",
        "would:",
        *(f"  {i}. {step}" for i, step in enumerate(steps, 1)),
    ]
    return "\n".join(lines) + "\n"


def print_plan(term: Terminal, plan: ImagePlan, steps: list[str], json_: bool) -> None:
    if json_:
        term.json({"dryRun": True, **plan.to_dict(), "steps": steps})
    else:
        term.data(_dry_run_text(plan, steps))


def print_result(term: Terminal, plan: ImagePlan, result: ImageResult, json_: bool) -> None:
    if result.up_to_date:
        term.message(f"{result.image} is up to date: nothing to build")
    else:
        term.message(f"built {result.image}")
    if json_:
        term.json({**result.to_dict(), "name": plan.recipe.name, "contentHash": plan.content_hash})
    else:
        term.data(_result_lines(result))


def image_table(records: list[ImageRecord]) -> str:
    from batchkit.cli.output import table

    if not records:
        return "No images\n"
    rows: list[tuple[Any, ...]] = [
        (
            record.repository,
            ", ".join(record.tags) or "<untagged>",
            record.pushed_at.astimezone().replace(microsecond=0).isoformat()
            if record.pushed_at
            else None,
            _size(record.size_bytes),
            record.digest[:19],
        )
        for record in records
    ]
    return table(("repository", "tags", "pushedAt", "size", "digest"), rows)

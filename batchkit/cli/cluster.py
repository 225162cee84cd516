"""`batchkit cluster …`: a config file becomes one CloudFormation stack, and goes away cleanly.

The commands print stack events, an update's change set and review, and a status's subscriptions
with `clusterprint`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from msgspec import Struct, field

from batchkit.cli.coercion import PlainCommand, PlainGroup
from batchkit.cli.context import DebugOption, JsonOption
from batchkit.cli.context import ProfileOption as NamedProfileOption
from batchkit.cli.context import RegionOption as NamedRegionOption
from batchkit.cli.errors import boundary
from batchkit.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from batchkit.cli.output import Terminal
    from batchkit.clustermodel import Subscription
    from batchkit.clusters.stacks import ClusterStacks, ClusterStatus
    from batchkit.infra.config import ClusterConfig
    from batchkit.providers.aws.session import AwsSession

app = typer.Typer(
    cls=PlainGroup,
    name="cluster",
    help="Create, update, delete and inspect clusters (one CloudFormation stack each).",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _session(profile: str | None, region: str | None, cluster: str | None) -> AwsSession:
    from batchkit.providers.aws.session import AwsSession

    return AwsSession(profile=profile, region=region, cluster=cluster)


class ClusterEnv(Struct):
    """What cluster commands take from outside; tests replace it through `obj=`."""

    session: Callable[[str | None, str | None, str | None], AwsSession] = _session
    sleep: Callable[[float], None] = time.sleep
    confirm: Callable[[str], bool] = lambda text: typer.confirm(text, err=True)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def of(cls, ctx: typer.Context) -> ClusterEnv:
        obj = ctx.find_object(ClusterEnv)
        return obj if obj is not None else cls()

    def stacks(self, profile: str | None, region: str | None, cluster: str | None) -> ClusterStacks:
        from batchkit.clusters.stacks import ClusterStacks

        return ClusterStacks(self.session(profile, region, cluster), sleep=self.sleep)


FileOption = Annotated[
    Path,
    typer.Option("-f", "--file", metavar="PATH", help="The cluster config file."),
]
ProfileOption = Annotated[
    str | None, typer.Option("--profile", metavar="NAME", help="AWS profile to use.")
]
RegionOption = Annotated[
    str | None,
    typer.Option("--region", metavar="REGION", help="AWS region (default: the AWS chain)."),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        metavar="KEY=VALUE",
        help="Override a stack parameter, e.g. EnableImageBuilds=false (repeatable).",
    ),
]
DECLINED = 1  # the user answered no to a confirmation (as click's abort)
YesOption = Annotated[bool, typer.Option("-y", "--yes", help="Do not ask for confirmation.")]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The cluster's name.")]


def _terminal() -> Terminal:
    from batchkit.cli.output import Terminal

    return Terminal()


def _config(path: Path) -> ClusterConfig:
    """The validated config, its warnings (`ClusterConfig.warnings`) printed on stderr."""
    from batchkit.cli.output import warning
    from batchkit.infra.config import load_cluster_config

    config = load_cluster_config(path)
    for text in config.warnings:
        _terminal().message(warning(f"{path}: {text}"))
    return config


def _open(env: ClusterEnv, path: Path, profile: str | None) -> tuple[ClusterConfig, ClusterStacks]:
    """The validated config (warnings printed), and the stacks of its region."""
    config = _config(path)
    return config, env.stacks(profile, config.region, config.name)


def _params(values: list[str] | None) -> dict[str, str]:
    result = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise UsageError(
                f"--param {value!r} is not KEY=VALUE", hint="e.g. --param EnableMultiNode=false"
            )
        result[key] = rest
    return result


def _named(env: ClusterEnv, name: str, profile: str | None, region: str | None) -> ClusterStacks:
    """The stacks where cluster `name` lives: its profile and region from the user config,
    unless given."""
    from batchkit.config import load_user_config
    from batchkit.providers.aws.discovery import check_stack_name

    user = load_user_config()
    settings = user.cluster(name)
    check_stack_name(settings.stack or name, "NAME")
    stacks = env.stacks(profile or settings.profile, region or settings.region, name)
    if name not in user.clusters and stacks.session.configured_region is None:
        from batchkit.errors import ClusterNotFoundError

        raise ClusterNotFoundError(
            name,
            hint=f"batchkit looked in {user.path or '~/.batchkit/config.yaml'} (no `clusters: "
            f"{name}:`) and not for a CloudFormation stack {name!r}: no AWS region is set. "
            "Check the name, or pass --region",
        )
    return stacks


@app.command(cls=PlainCommand)
def init(
    path: FileOption = Path("batchkit.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Write a commented example batchkit.yaml to edit."""
    with boundary(debug):
        from importlib import resources

        from batchkit.errors import ConflictError, UsageError

        if path.is_dir():
            raise UsageError(
                f"-f/--file {path} is a directory",
                hint=f"name the file to write, e.g. -f {path / 'batchkit.yaml'}",
            )
        if path.exists() and not force:
            raise ConflictError(f"{path} already exists", hint="pass --force to overwrite it")
        text = resources.files("batchkit.infra").joinpath("example.yaml").read_text("utf-8")
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as err:
            raise UsageError(
                f"-f/--file {path}: cannot write it: {err.strerror or err}",
                hint="pick a path in an existing directory you can write to",
            ) from None
        term = _terminal()
        if json_:
            term.json({"path": str(path)})
        else:
            term.message(f"wrote {path}: edit it, then `batchkit cluster template -f {path}`")


@app.command(cls=PlainCommand)
def template(
    path: FileOption = Path("batchkit.yaml"),
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Print the CloudFormation template of a config (YAML; JSON with --json)."""
    with boundary(debug):
        from batchkit.infra.template import render_template, render_yaml

        config = _config(path)
        term = _terminal()
        if json_:
            term.json(render_template(config))
        else:
            term.data(render_yaml(config))


@app.command(cls=PlainCommand)
def create(
    ctx: typer.Context,
    path: FileOption = Path("batchkit.yaml"),
    params: ParamOption = None,
    profile: ProfileOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Create the cluster's stack and wait for it, showing its events."""
    env = ClusterEnv.of(ctx)
    with boundary(debug):
        from batchkit.cli.clusterprint import show_progress

        config, stacks = _open(env, path, profile)
        term = _terminal()
        outcome = stacks.create(config, _params(params), on_progress=show_progress(term))
        if json_:
            term.json(outcome.to_dict())
        else:
            term.message(f"cluster {config.name} is ready: batchkit sub -c {config.name} …")
            term.data("\n".join(f"{k}: {v}" for k, v in sorted(outcome.outputs.items())))
        from batchkit.config import remember_cluster

        written = remember_cluster(config.name, region=config.region, profile=profile)
        if written is not None:
            term.message(f"recorded cluster {config.name} (region {config.region}) in {written}")


@app.command(cls=PlainCommand)
def update(
    ctx: typer.Context,
    path: FileOption = Path("batchkit.yaml"),
    params: ParamOption = None,
    yes: YesOption = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show the plan and what it does to running jobs; change nothing."
        ),
    ] = False,
    profile: ProfileOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show what a config change would do to the stack and to running jobs, confirm, and apply it.

    Changes CloudFormation cannot make in place (a compute environment that would need replacing)
    are refused before anything changes, with the steps that work."""
    env = ClusterEnv.of(ctx)
    with boundary(debug):
        from batchkit.cli.clusterprint import format_changes, format_review, show_progress

        config, stacks = _open(env, path, profile)
        term = _terminal()
        plan = stacks.plan_update(config, _params(params), source=str(path))
        term.message(format_changes(plan.changes))
        if not plan.changes:
            if json_:
                term.json({"name": plan.name, "status": "UNCHANGED", "changes": []})
            return
        term.message(format_review(plan))
        if dry_run:
            stacks.discard_update(plan)
            if json_:
                term.json({**plan.to_dict(), "status": "PLANNED"})
            else:
                term.message("nothing changed (--dry-run)")
            return
        if not yes and not env.confirm(f"apply these {len(plan.changes)} changes?"):
            stacks.discard_update(plan)
            term.message("nothing changed")
            raise typer.Exit(DECLINED)
        outcome = stacks.apply_update(plan, on_progress=show_progress(term))
        if json_:
            term.json(outcome.to_dict())
        else:
            term.message(f"cluster {config.name} is updated")


@app.command(cls=PlainCommand)
def delete(
    ctx: typer.Context,
    name: NameArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Terminate active jobs instead of refusing.")
    ] = False,
    yes: YesOption = False,
    profile: NamedProfileOption = None,
    region: NamedRegionOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Delete a cluster: empty its bucket prefix and image repository, then its stack."""
    env = ClusterEnv.of(ctx)
    with boundary(debug):
        from batchkit.cli.clusterprint import show_progress

        stacks = _named(env, name, profile, region)
        term = _terminal()
        if not yes and not env.confirm(f"delete cluster {name}, its job folders and images?"):
            term.message("nothing deleted")
            raise typer.Exit(DECLINED)
        outcome = stacks.delete(name, force=force, on_progress=show_progress(term))
        if json_:
            term.json(outcome.to_dict())
        else:
            term.message(f"cluster {name} is deleted")
            for leftover in outcome.leftovers:
                term.message(f"  still there: {leftover}")
        if outcome.leftovers:
            raise typer.Exit(int(ExitCode.CONFLICT))


@app.command(cls=PlainCommand)
def status(
    ctx: typer.Context,
    name: NameArgument,
    events: Annotated[bool, typer.Option("--events", help="Also list the stack's events.")] = False,
    profile: NamedProfileOption = None,
    region: NamedRegionOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show a cluster's stack status, queues and resources."""
    env = ClusterEnv.of(ctx)
    with boundary(debug):
        from batchkit.cli.clusterprint import format_event, subscription_lines

        stacks = _named(env, name, profile, region)
        term = _terminal()
        found = stacks.status(name)
        stack_events = stacks.events(name) if events else []
        subscribers, unchecked = _subscriptions(stacks, found)
        if json_:
            payload = found.to_dict()
            payload["subscriptions"] = (
                None if subscribers is None else [s.to_dict() for s in subscribers]
            )
            if events:
                payload["events"] = [e.to_dict() for e in stack_events]
            term.json(payload)
            return
        lines = [
            f"cluster:  {found.name}",
            f"status:   {found.status}" + (f" ({found.reason})" if found.reason else ""),
            f"region:   {found.region}",
            f"batchkit: {found.version or '(not a batchkit stack)'}",
        ]
        lines += [f"queue:    {q}  {arn}" for q, arn in found.queues.items()]
        for key in ("BucketName", "EcrRepositoryUri", "JobLogGroup", "CodeBuildProjectName"):
            if key in found.outputs:
                lines.append(f"{key}: {found.outputs[key]}")
        lines += subscription_lines(subscribers, unchecked)
        lines += [format_event(event) for event in stack_events]
        term.data("\n".join(lines))


def _subscriptions(
    stacks: ClusterStacks, found: ClusterStatus
) -> tuple[list[Subscription] | None, str | None]:
    """The topic's subscriptions, or why they could not be read (status still shows the rest)."""
    from batchkit.errors import AwsError

    try:
        return stacks.subscriptions(found), None
    except AwsError as err:
        return None, err.message


@app.command("list", cls=PlainCommand)
def list_(
    ctx: typer.Context,
    profile: ProfileOption = None,
    region: RegionOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """List the batchkit clusters (stacks tagged batchkit:cluster) in a region."""
    env = ClusterEnv.of(ctx)
    with boundary(debug):
        term = _terminal()
        clusters = env.stacks(profile, region, None).list()
        if json_:
            term.json([c.to_dict() for c in clusters])
            return
        if not clusters:
            term.message("no batchkit clusters in this region")
            return
        width = max(len(c.name) for c in clusters)
        term.data(
            "\n".join(f"{c.name:<{width}}  {c.status:<20} {c.version or '-'}" for c in clusters)
        )

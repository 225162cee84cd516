"""`batchkit queues` and `batchkit hosts` (≡ `awsbqueues`, `awsbhosts`)."""

from __future__ import annotations

from typing import Annotated

import typer

from batchkit.cli.context import (
    ClusterOption,
    DebugOption,
    JsonOption,
    LogLevelOption,
    ProfileOption,
    RegionOption,
    session,
)

DetailsOption = Annotated[bool, typer.Option("-d", "--details", help="One block per item.")]


def queues(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(metavar="QUEUE", help="Queues to describe.")
    ] = None,
    details: DetailsOption = False,
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    log_level: LogLevelOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show the cluster's job queues (details when names are given)."""
    with session(ctx, debug) as (cli, term):
        from batchkit.cli import queueprint

        found = cli.connect(cluster, profile=profile, region=region).queues(names or ())
        if json_:
            term.json([q.to_dict() for q in found])
        elif details or names:
            term.data(queueprint.queue_details(found))
        else:
            term.data(queueprint.queue_table(found))


def hosts(
    ctx: typer.Context,
    instance_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="INSTANCE_ID", help="Only these hosts (shows details)."),
    ] = None,
    details: DetailsOption = False,
    cluster: ClusterOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    log_level: LogLevelOption = None,
    json_: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show the hosts that run jobs (this machine on the local engine)."""
    with session(ctx, debug) as (cli, term):
        from batchkit.cli import queueprint

        found = cli.connect(cluster, profile=profile, region=region).hosts()
        if instance_ids:
            found = [h for h in found if h.instance_id in instance_ids]
        if json_:
            term.json([h.to_dict() for h in found])
        elif details or instance_ids:
            term.data(queueprint.host_details(found))
        else:
            term.data(queueprint.host_table(found))

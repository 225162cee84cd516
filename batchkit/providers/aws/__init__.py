"""batchkit on AWS: Batch, CloudWatch Logs and S3 behind `providers.base.Provider`.

Only this package imports boto3, and only when a cluster is actually opened, so commands that
talk to the local engine never pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchkit.providers.aws.provider import AwsProvider


def open_provider(
    cluster: str, *, profile: str | None = None, region: str | None = None
) -> AwsProvider:
    """The provider of AWS cluster `cluster` (see `discovery` for how it is found).

    Raises ClusterNotFoundError, StackStateError (a ConflictError), ConfigError or AwsError, each
    with a hint.
    """
    from batchkit.providers.aws.discovery import discover
    from batchkit.providers.aws.provider import AwsProvider

    session, info = discover(cluster, profile=profile, region=region)
    return AwsProvider(session, info)


__all__ = ["open_provider"]

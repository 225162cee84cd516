"""The user's batchkit configuration: `$BATCHKIT_HOME/config.yaml` (default `~/.batchkit`).

```yaml
default_cluster: research          # used when no `-c/--cluster` is given; `local` when absent
env_blacklist: [HOME, PATH]        # optional: what `sub -e all` never forwards
clusters:
  research: {region: eu-west-1, profile: lab, stack: research}
```

Every key is optional. A file that does not exist is an empty configuration; a file that exists but
is malformed raises `ConfigError` naming the file and the key path. PyYAML is imported only when a
file is actually read, so commands that need no configuration start fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from batchkit.errors import ConfigError

LOCAL_CLUSTER = "local"


def batchkit_home(environ: Mapping[str, str] | None = None) -> Path:
    """`$BATCHKIT_HOME`, else `~/.batchkit`."""
    env = os.environ if environ is None else environ
    value = env.get("BATCHKIT_HOME")
    return Path(value).expanduser() if value else Path.home() / ".batchkit"


class ClusterSettings(Struct, frozen=True):
    """How to reach one named AWS cluster. `stack` defaults to the cluster name."""

    region: str | None = None
    profile: str | None = None
    stack: str | None = None


class UserConfig(Struct, frozen=True):
    default_cluster: str | None = None
    clusters: Mapping[str, ClusterSettings] = field(default_factory=dict)
    env_blacklist: tuple[str, ...] | None = None
    path: Path | None = None

    def cluster(self, name: str) -> ClusterSettings:
        """The settings of `name` (empty settings when the file does not mention it)."""
        return self.clusters.get(name, ClusterSettings())

    def resolve(self, cluster: str | None) -> str:
        """The cluster a command talks to: `-c`, else `default_cluster`, else `local`."""
        return cluster or self.default_cluster or LOCAL_CLUSTER


def load_user_config(path: Path | None = None) -> UserConfig:
    """Read the user configuration (see the module docstring)."""
    file = path or batchkit_home() / "config.yaml"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UserConfig(path=file)
    except OSError as err:
        raise ConfigError(
            f"cannot read {file}: {err.strerror}", hint="check the file's permissions"
        ) from err
    import yaml  # deferred: only a configured user pays for it

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"{file} is not valid YAML: {err}", hint="fix the syntax, or delete the file"
        ) from err
    return _parse(data, file)


def remember_cluster(
    name: str, *, region: str, profile: str | None = None, path: Path | None = None
) -> Path | None:
    """Record in the user configuration how to reach cluster `name`, so that `-c NAME` finds it
    from any shell (e.g. a cluster created outside the default region). Other keys are kept;
    comments in the file are not. Returns the file written, or None when nothing changed."""
    file = path or batchkit_home() / "config.yaml"
    current = load_user_config(file).cluster(name)
    if current.region == region and (profile is None or current.profile == profile):
        return None
    import yaml

    data: dict[str, Any] = {}
    if file.exists():
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    clusters = data.setdefault("clusters", {}) or {}
    data["clusters"] = clusters
    entry = dict(clusters.get(name) or {})
    entry["region"] = region
    if profile is not None:
        entry["profile"] = profile
    clusters[name] = entry
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    tmp.replace(file)
    return file


def _parse(data: Any, file: Path) -> UserConfig:
    if data is None:
        return UserConfig(path=file)
    if not isinstance(data, dict):
        raise _bad(file, "(top level)", "a mapping of keys such as default_cluster and clusters")
    unknown = sorted(set(data) - {"default_cluster", "clusters", "env_blacklist"})
    if unknown:
        raise ConfigError(
            f"{file}: unknown key {unknown[0]!r}",
            hint="known keys are default_cluster, clusters and env_blacklist",
        )
    default = _optional_str(data, "default_cluster", file, "default_cluster")
    clusters_raw = data.get("clusters") or {}
    if not isinstance(clusters_raw, dict):
        raise _bad(file, "clusters", "a mapping of cluster name to {region, profile, stack}")
    clusters: dict[str, ClusterSettings] = {}
    for name, settings in clusters_raw.items():
        where = f"clusters.{name}"
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise _bad(file, where, "a mapping with region, profile and stack")
        extra = sorted(set(settings) - {"region", "profile", "stack"})
        if extra:
            raise ConfigError(
                f"{file}: unknown key {where}.{extra[0]}",
                hint="a cluster takes region, profile and stack",
            )
        clusters[str(name)] = ClusterSettings(
            region=_optional_str(settings, "region", file, f"{where}.region"),
            profile=_optional_str(settings, "profile", file, f"{where}.profile"),
            stack=_optional_str(settings, "stack", file, f"{where}.stack"),
        )
    blacklist_raw = data.get("env_blacklist")
    blacklist: tuple[str, ...] | None = None
    if blacklist_raw is not None:
        if isinstance(blacklist_raw, str):
            blacklist_raw = [part for part in blacklist_raw.split(",") if part.strip()]
        if not isinstance(blacklist_raw, list) or not all(
            isinstance(x, str) for x in blacklist_raw
        ):
            raise _bad(file, "env_blacklist", "a list of variable names")
        blacklist = tuple(x.strip() for x in blacklist_raw)
    return UserConfig(
        default_cluster=default, clusters=clusters, env_blacklist=blacklist, path=file
    )


def _optional_str(data: Mapping[str, Any], key: str, file: Path, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _bad(file, where, "a non-empty string")
    return value


def _bad(file: Path, where: str, expected: str) -> ConfigError:
    return ConfigError(f"{file}: {where} must be {expected}", hint=f"edit {file}")

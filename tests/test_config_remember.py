"""`remember_cluster`: `cluster create` records how to reach a cluster, keeping the rest."""

from __future__ import annotations

from pathlib import Path

from batchkit.config import load_user_config, remember_cluster


def test_remember_adds_the_cluster_and_keeps_other_keys(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text("default_cluster: old\nclusters:\n  old: {region: eu-west-1, profile: lab}\n")
    assert remember_cluster("new", region="us-west-2", path=file) == file
    config = load_user_config(file)
    assert config.default_cluster == "old"
    assert config.cluster("old").profile == "lab"
    assert config.cluster("new").region == "us-west-2"


def test_remember_writes_nothing_when_already_known(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    assert remember_cluster("c", region="us-east-1", profile="p", path=file) == file
    before = file.read_text()
    assert remember_cluster("c", region="us-east-1", path=file) is None
    assert file.read_text() == before
    assert load_user_config(file).cluster("c").profile == "p"

"""The rendered buildspec: golden files, valid YAML, quoting of hostile build arguments."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from batchkit.infra.buildspec import (
    BUILD_ENVIRONMENT,
    DIGEST_MARKER,
    BuildspecOptions,
    buildspec_yaml,
    parse_digest_line,
    render_buildspec,
)

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "buildspecs"

# Each golden file is what `batchkit image buildspec ARGS` prints (CTX: a context directory).
GOLDEN = {
    "default.yml": ["CTX"],
    "preset-al2023.yml": ["--preset", "al2023"],
    "preset-debian.yml": ["--preset", "debian"],
    "preset-mpi.yml": ["--preset", "mpi"],
    "build-args-arm64.yml": [
        "CTX",
        "--file",
        "docker/Dockerfile.gpu",
        "--base-image",
        "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
        "--build-arg",
        "PY=3.12",
        "--platform",
        "linux/arm64",
    ],
    "no-cache.yml": ["CTX", "--no-cache"],
}


@pytest.fixture(scope="module")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("context")
    (root / "docker").mkdir()
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "docker" / "Dockerfile.gpu").write_text("ARG BASE_IMAGE\nFROM $BASE_IMAGE\n")
    return root


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_golden_files_are_what_the_installed_command_prints(
    name: str, build_context: Path
) -> None:
    args = [str(build_context) if arg == "CTX" else arg for arg in GOLDEN[name]]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "batchkit"), "image", "buildspec", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    path = GOLDEN_DIR / name
    if os.environ.get("BATCHKIT_UPDATE_GOLDEN") == "1":
        path.write_text(done.stdout)
    assert path.read_text() == done.stdout, f"regenerate with BATCHKIT_UPDATE_GOLDEN=1 ({path})"


def test_every_golden_file_has_its_command() -> None:
    assert sorted(p.name for p in GOLDEN_DIR.glob("*.yml")) == sorted(GOLDEN)


def commands(options: BuildspecOptions) -> list[str]:
    spec = yaml.safe_load(buildspec_yaml(options))
    return [c for phase in spec["phases"].values() for c in phase["commands"]]


def test_buildspec_is_valid_yaml_of_version_0_2_with_abort_on_failure() -> None:
    spec = yaml.safe_load(buildspec_yaml(BuildspecOptions()))
    assert spec == render_buildspec(BuildspecOptions())
    assert spec["version"] == 0.2
    assert spec["env"]["variables"]["DOCKER_BUILDKIT"] == "1"
    assert set(spec["phases"]) == {"pre_build", "build"}
    assert all(phase["on-failure"] == "ABORT" for phase in spec["phases"].values())


def test_login_uses_get_login_password_never_cli_v1_get_login() -> None:
    text = "\n".join(commands(BuildspecOptions()))
    assert "get-login-password" in text and "--password-stdin" in text
    assert "get-login " not in text and "$(aws ecr get-login" not in text


def test_build_caches_from_the_moving_tag_pushes_both_tags_and_reports_the_digest() -> None:
    cmds = commands(BuildspecOptions())
    build = next(c for c in cmds if c.startswith("docker build"))
    argv = shlex.split(build)
    cache_from = argv[argv.index("--cache-from") + 1]
    assert cache_from == "$BATCHKIT_IMAGE_REPOSITORY:$BATCHKIT_IMAGE_ALIAS"
    assert "BUILDKIT_INLINE_CACHE=1" in argv
    pushes = [c for c in cmds if c.startswith("docker push")]
    assert len(pushes) == 2
    assert any(DIGEST_MARKER in c for c in cmds)
    assert "--cache-from" not in " ".join(commands(BuildspecOptions(cache=False)))
    # every per-build value comes from the environment the driver sets
    text = "\n".join(cmds)
    assert all(f"${name}" in text for name in BUILD_ENVIRONMENT)


HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch /tmp/pwned)",
    "`id`",
    "a;b && c | d",
    "line1\nline2",
    "ünïcødé ☃",
    "--network=host",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_build_args_and_dockerfile_reach_docker_byte_exact(
    value: str, tmp_path: Path
) -> None:
    options = BuildspecOptions(
        dockerfile="we ird/$(x)/Dockerfile", build_args={"ARG": value}, platform="linux/amd64"
    )
    build = next(c for c in commands(options) if c.startswith("docker build"))
    # run the command through bash with a `docker` that prints its argv, one per line (NUL-safe)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "docker").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done\n')
    (fake_bin / "docker").chmod(0o755)
    env = {
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "BATCHKIT_IMAGE_REPOSITORY": "1.dkr.ecr.us-east-1.amazonaws.com/r",
        "BATCHKIT_IMAGE_TAG": "img-0123",
        "BATCHKIT_IMAGE_ALIAS": "img",
    }
    out = subprocess.run(
        ["bash", "-c", build], env=env, capture_output=True, check=True, cwd=tmp_path
    ).stdout
    argv = out.decode().split("\0")[:-1]
    assert argv[argv.index("--file") + 1] == "context/we ird/$(x)/Dockerfile"
    assert f"ARG={value}" in argv
    assert argv[argv.index("--tag") + 1] == "1.dkr.ecr.us-east-1.amazonaws.com/r:img-0123"
    assert argv[-1] == "context"
    assert not (Path("/tmp") / "pwned").exists()


def test_digest_marker_lines_are_parsed_and_others_ignored() -> None:
    ref = "1.dkr.ecr.us-east-1.amazonaws.com/r@sha256:" + "a" * 64
    assert parse_digest_line(f"{DIGEST_MARKER}{ref}\n") == ref
    assert parse_digest_line(f"  {DIGEST_MARKER}{ref}") == ref
    assert parse_digest_line(f"{DIGEST_MARKER}") is None  # inspect failed: no digest
    assert parse_digest_line(f"echo {DIGEST_MARKER}{ref}") is None  # the command echo, not output
    assert parse_digest_line("Step 1/4 : FROM x") is None


def test_the_buildspec_runs_end_to_end_in_bash_with_fake_aws_and_docker(tmp_path: Path) -> None:
    """Run every command the way CodeBuild does (one bash shell, in order), with `aws` and
    `docker` stand-ins that log their argv: the context is fetched and unpacked, the login reads
    the password from stdin, both tags are pushed, and the digest line is what the driver parses.
    """
    import io
    import tarfile

    context_tar = tmp_path / "uploaded.tar"
    with tarfile.open(context_tar, "w") as archive:
        data = b"FROM scratch\n"
        info = tarfile.TarInfo("sub dir/Dockerfile")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "aws").write_text(
        "#!/bin/sh\n"
        f'echo "aws $*" >> "{calls}"\n'
        'case "$1 $2" in\n'
        '  "ecr get-login-password") echo secret-password ;;\n'
        f'  "s3 cp") cp "{context_tar}" "$5" ;;\n'
        "esac\n"
    )
    (bin_dir / "docker").write_text(
        "#!/bin/sh\n"
        f'echo "docker $*" >> "{calls}"\n'
        'case "$1" in\n'
        f'  login) read -r password; echo "password=$password" >> "{calls}" ;;\n'
        '  build) test -f "context/sub dir/Dockerfile" || exit 9 ;;\n'
        '  inspect) echo "${BATCHKIT_IMAGE_REPOSITORY}@sha256:' + "c" * 64 + '" ;;\n'
        "esac\n"
    )
    for tool in ("aws", "docker"):
        (bin_dir / tool).chmod(0o755)
    spec = yaml.safe_load(buildspec_yaml(BuildspecOptions(dockerfile="sub dir/Dockerfile")))
    script = "\n".join(
        ["set -e", *(c for phase in spec["phases"].values() for c in phase["commands"])]
    )
    repo = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/batchkit-demo"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "AWS_REGION": "eu-west-1",
        "BATCHKIT_IMAGE_REPOSITORY": repo,
        "BATCHKIT_IMAGE_TAG": "tool-0123456789abcdef",
        "BATCHKIT_IMAGE_ALIAS": "tool",
        "BATCHKIT_CONTEXT_URL": "s3://bucket/batchkit/demo/images/tool-0123456789abcdef.tar",
        **spec["env"]["variables"],
    }
    done = subprocess.run(
        ["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    log = calls.read_text().splitlines()
    # The two sides of `aws ecr get-login-password | docker login` start together: either may
    # log first. The password reaches docker through the pipe, never through argv.
    assert sorted(log[:2]) == [
        "aws ecr get-login-password --region eu-west-1",
        "docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    ]
    assert log[2] == "password=secret-password"
    assert log[3].startswith("aws s3 cp --only-show-errors s3://bucket/batchkit/demo/images/")
    assert [line.split()[1] for line in log[4:]] == ["build", "push", "push", "inspect"]
    assert log[5] == f"docker push {repo}:tool-0123456789abcdef"
    assert log[6] == f"docker push {repo}:tool"
    [marker] = [line for line in done.stdout.splitlines() if line.startswith(DIGEST_MARKER)]
    assert parse_digest_line(marker) == f"{repo}@sha256:" + "c" * 64

"""Benchmark: hashing and archiving an image build context, and the up-to-date check.

    .venv/bin/python bench/image_context.py [--files 20000] [--mb 200] [--checks 50]

Generates a context of FILES files totalling MB megabytes (random bytes, 3 directory levels) in
a temporary directory, then times, side by side on the same tree:

- batchkit: scan (with .dockerignore) + deterministic tar + sha256, hash only (what `plan` does);
- batchkit: the same, keeping the archive in memory (what an actual upload does);
- `tar -c | sha256sum`, plain GNU tar (not deterministic: mtimes, owners, readdir order);
- `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c | sha256sum`, GNU tar
  made deterministic the same way;
- the up-to-date check: one ECR DescribeImages call against moto (in-process), per check.

Each file-tree row is run twice (cold, then warm page cache) and both are printed.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batchkit.images.context import scan_context, write_archive


def generate(root: Path, files: int, total_bytes: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n")
    (root / ".dockerignore").write_text("**/*.tmp\n")
    per_file = max(1, total_bytes // files)
    blob = os.urandom(per_file * 4)
    for index in range(files):
        rel = Path(f"d{index % 20:02d}/e{index % 7}/f{index:05d}.bin")
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        start = rng.randrange(0, len(blob) - per_file)
        path.write_bytes(blob[start : start + per_file])


def timed(fn: Callable[[], str]) -> tuple[float, str]:
    began = time.perf_counter()
    out = fn()
    return time.perf_counter() - began, out


def batchkit_hash(root: Path) -> str:
    return write_archive(scan_context(root)).sha256


def batchkit_archive(root: Path) -> str:
    sink = io.BytesIO()
    digest = write_archive(scan_context(root), sink)
    return f"{digest.sha256} ({len(sink.getvalue()) / 1e6:.0f} MB in memory)"


def shell(command: str, root: Path) -> str:
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()[0]


def ecr_checks(count: int) -> tuple[float, int, bool]:
    """Mean seconds per up-to-date check, DescribeImages calls per check, and its verdict."""
    import json

    import boto3
    from moto import mock_aws

    from batchkit.providers.aws.ecr import EcrGateway
    from batchkit.providers.aws.session import AwsSession

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.create_repository(repositoryName="bench")
        ecr.put_image(
            repositoryName="bench",
            imageManifest=json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "layers": [],
                }
            ),
            imageTag="ctx-0123456789abcdef",
        )
        session = AwsSession(region="us-east-1")
        calls: list[str] = []
        session.add_hook("before-send.ecr", lambda **kw: calls.append("x") and None)
        gateway = EcrGateway(session.api("ecr"))
        gateway.find_image("bench", "ctx-0123456789abcdef")  # warm the client
        calls.clear()
        began = time.perf_counter()
        found = None
        for _ in range(count):
            found = gateway.find_image("bench", "ctx-0123456789abcdef")
        elapsed = (time.perf_counter() - began) / count
        return elapsed, len(calls) // count, found is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--checks", type=int, default=50)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bk-bench-ctx-"))
    try:
        root = work / "ctx"
        began = time.perf_counter()
        generate(root, args.files, args.mb * 1_000_000)
        print(
            f"context: {args.files} files, {args.mb} MB, generated in "
            f"{time.perf_counter() - began:.1f} s ({root})",
            file=sys.stderr,
        )
        gnu_det = (
            "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner "
            "--exclude='*.tmp' -cf - . | sha256sum"
        )
        rows: list[tuple[str, Callable[[], str]]] = [
            ("batchkit hash (scan+tar+sha256)", lambda: batchkit_hash(root)),
            ("batchkit archive to memory", lambda: batchkit_archive(root)),
            ("tar -c | sha256sum", lambda: shell("tar -cf - . | sha256sum", root)),
            ("GNU tar deterministic | sha256sum", lambda: shell(gnu_det, root)),
        ]
        results = []
        for label, fn in rows:
            cold, out = timed(fn)
            warm, _ = timed(fn)
            results.append((label, cold, warm, out))

        # the same content elsewhere, other mtimes: batchkit's hash must not move
        copy = work / "copy"
        shutil.copytree(root, copy, copy_function=shutil.copy)  # new mtimes
        same = batchkit_hash(copy) == results[0][3]

        per_check, calls, found = ecr_checks(args.checks)

        mb = args.mb
        print(f"\n{'what':36} {'cold s':>8} {'warm s':>8} {'MB/s warm':>10}  result")
        print("-" * 100)
        for label, cold, warm, out in results:
            print(f"{label:36} {cold:8.2f} {warm:8.2f} {mb / warm:10.0f}  {out[:40]}")
        print(
            f"{'up-to-date check (ECR, moto)':36} {per_check * 1000:7.2f}ms {'':8} {'':10}  "
            f"{calls} DescribeImages call(s) per check, found={found}"
        )
        print(f"\nbatchkit hash of a copy with new mtimes equal: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

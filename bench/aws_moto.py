"""Shared by the AWS benches: one moto server that counts the API calls it answers, the
ParallelCluster-style cluster of the tests, and side-by-side runs of batchkit and awsbatch-cli.

Run a bench from the repository root, e.g. `.venv/bin/python bench/aws_stat.py`.
"""

from __future__ import annotations

import collections
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.moto_server import (  # noqa: E402
    SIMPLE_CONFIG,
    Cluster,
    create_cluster,
    put_log_lines,
)

__all__ = ["Cluster", "create_cluster", "put_log_lines"]


class CountingApp:
    """WSGI middleware: counts requests per AWS operation (X-Amz-Target, a REST path or the
    query protocol's Action)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def _operation(self, environ: dict[str, Any]) -> str:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return str(target).rsplit(".", 1)[-1]
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith("/v1/"):
            return "batch:" + path[4:]
        if path.startswith("/moto-api"):
            return "moto-api"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if environ.get("REQUEST_METHOD") == "POST" and length and path == "/":
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action")
            if action:
                return action[0]
        return f"s3:{environ.get('REQUEST_METHOD')}"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        operation = self._operation(environ)
        with self._lock:
            self.counts[operation] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self.counts)


@dataclass
class Server:
    endpoint: str
    app: CountingApp


@contextmanager
def moto_server() -> Iterator[Server]:
    """A threaded moto server on 127.0.0.1 (simple Batch) with a request counter."""
    import logging
    import socket

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{port}"
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/moto-api/config", data=json.dumps(SIMPLE_CONFIG).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()
    try:
        yield Server(endpoint, app)
    finally:
        server.shutdown()


def bench_environment(endpoint: str) -> dict[str, str]:
    """A private HOME/BATCHKIT_HOME, fake credentials and the moto endpoint, for both CLIs."""
    home = Path(tempfile.mkdtemp(prefix="batchkit-bench-"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "BATCHKIT_HOME": str(home / ".batchkit"),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "LANG": "C.UTF-8",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    return env


def batchkit_exe() -> str:
    return str(Path(sys.executable).parent / "batchkit")


def awsbatch_cli_bin() -> Path | None:
    configured = os.environ.get("BATCHKIT_AWSBATCH_CLI_BIN")
    for candidate in [Path(configured)] if configured else []:
        if (candidate / "awsbstat").exists():
            return candidate
    default = REPO / ".venv-awsbatch-cli" / "bin"
    return default if (default / "awsbstat").exists() else None


@dataclass
class Run:
    label: str
    seconds: float
    calls: int
    calls_by_operation: dict[str, int]
    stdout: str
    code: int


def timed(
    server: Server, label: str, argv: Sequence[str], env: dict[str, str], stdin: str | None = None
) -> Run:
    before = server.app.snapshot()
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - start
    after = server.app.snapshot()
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    if proc.returncode != 0:
        print(f"[{label}] exit {proc.returncode}: {proc.stderr.strip()[-500:]}", file=sys.stderr)
    return Run(label, seconds, sum(delta.values()), delta, proc.stdout, proc.returncode)


def best_of(count: int, run: Callable[[], Run]) -> Run:
    """The median-time run of `count` (API calls are the same every time)."""
    runs = sorted((run() for _ in range(count)), key=lambda r: r.seconds)
    median = runs[len(runs) // 2]
    median.seconds = statistics.median(r.seconds for r in runs)
    return median


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

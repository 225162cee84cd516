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
    query protocol's Action), and delays each AWS call by `latency` seconds (a round trip to an
    AWS endpoint; requests in parallel wait in parallel)."""

    def __init__(self, app: Any, latency: float = 0.0) -> None:
        self.app = app
        self.latency = latency
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
        if self.latency and operation != "moto-api":
            time.sleep(self.latency)
        return self.app(environ, start_response)

    def snapshot(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self.counts)


class AwsListJobs:
    """WSGI middleware: moto's ListJobs made to answer as AWS Batch does, so that a side-by-side
    run costs each tool the calls it would make on AWS.

    moto lists array children at the top level of a queue, leaves `arrayProperties` out of a
    parent's summary and ignores `maxResults`/`nextToken`. AWS lists top-level jobs only,
    summarizes a parent's children (`arrayProperties.size` and `statusSummary`) and pages: up to
    1,000 jobs a page with a status (`maxResults` lowers it), 100 with filters.
    """

    def __init__(self, app: Any, account: str = "123456789012", region: str = "us-east-1") -> None:
        self.app = app
        self.account = account
        self.region = region
        self._listings: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/v1/listjobs" or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        forwarded = {k: v for k, v in request.items() if k not in ("maxResults", "nextToken")}
        body = json.dumps(forwarded).encode()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            captured["status"], captured["headers"] = status, headers

        key = body.decode()
        summaries = self._listings.get(key) if request.get("nextToken") else None
        if summaries is None:
            raw = b"".join(self.app(environ, capture))
            if not captured["status"].startswith("200"):
                start_response(captured["status"], captured["headers"])
                return [raw]
            summaries = json.loads(raw).get("jobSummaryList") or []
            if request.get("jobQueue") and not request.get("arrayJobId"):
                summaries = [self._as_aws(s) for s in summaries if ":" not in s["jobId"]]
            # AWS serves a next page without listing everything again: neither does the shim
            self._listings[key] = summaries
        else:
            captured.update(status="200 OK", headers=[("Content-Type", "application/json")])
        limit = 100 if request.get("filters") else 1000
        size = min(int(request.get("maxResults") or limit), limit)
        start = int(request.get("nextToken") or 0)
        answer: dict[str, Any] = {"jobSummaryList": summaries[start : start + size]}
        if start + size < len(summaries):
            answer["nextToken"] = str(start + size)
        out = json.dumps(answer).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(out)))])
        return [out]

    def _as_aws(self, summary: dict[str, Any]) -> dict[str, Any]:
        from moto.batch.models import batch_backends

        job = batch_backends[self.account][self.region].get_job_by_id(summary["jobId"])
        children = getattr(job, "_child_jobs", None) if job is not None else None
        if children:
            counts = collections.Counter(
                str(getattr(child.status, "value", child.status)) for child in children
            )
            summary["arrayProperties"] = {"size": len(children), "statusSummary": dict(counts)}
        return summary


@dataclass
class Server:
    endpoint: str
    app: CountingApp


@contextmanager
def moto_server(*, aws_list_jobs: bool = False) -> Iterator[Server]:
    """A threaded moto server on 127.0.0.1 (simple Batch) with a request counter (whose
    `latency` can be set); with `aws_list_jobs`, ListJobs answers as on AWS (`AwsListJobs`)."""
    import logging
    import socket

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto_app: Any = DomainDispatcherApplication(create_backend_app)
    app = CountingApp(AwsListJobs(moto_app) if aws_list_jobs else moto_app)
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
    return median_run([run() for _ in range(count)])


def median_run(runs: Sequence[Run]) -> Run:
    """The run of median time, timed as the median (API calls are the same every time)."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    median = ordered[len(ordered) // 2]
    median.seconds = statistics.median(r.seconds for r in ordered)
    return median


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

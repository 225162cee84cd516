"""`batchkit out` on the local engine against a plain Python loop copying the same stream.

One fresh engine home; a job prints `--lines` lines (`seq`), then, interleaved round by round:
`batchkit out` (all of it), `out --raw`, `out -t 20`, `out -hd 20`, and the baseline: a Python
process that copies the stream file to stdout line by line. Every run writes to a file; the
lines are counted (a run that misses a line says so), the wall time and the peak RSS (from
`wait4`) are the best of `--rounds`. A second job of `--array` children printing `--lines /
--array` lines each measures an array parent's `out` (children in turn).
Goals (issue 12): `out` within 3x of the loop, peak RSS <= 100 MB, `out -t 20` <= 0.2 s.

    .venv/bin/python bench/local_out.py [--lines 1000000] [--rounds 3] [--array 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchkit.providers.local.worker import worker_pid

BIN = Path(sys.executable).parent
COPY = (
    "import sys\n"
    "out = sys.stdout\n"
    "with open(sys.argv[1], encoding='utf-8') as f:\n"
    "    for line in f:\n"
    "        out.write(line)\n"
)


def run(argv: list[str], env: dict[str, str], sink: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, lines written) of one run."""
    with sink.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}")
    with sink.open("rb") as f:
        lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return wall, usage.ru_maxrss / 1024, lines


def submit(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "batchkit"), "sub", "--wait", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)["jobId"])


RATE_JOB = (
    "import sys, time\n"
    "rate, seconds = int(sys.argv[1]), int(sys.argv[2])\n"
    "start = time.monotonic()\n"
    "for second in range(seconds):\n"
    "    for tick in range(100):\n"
    "        sys.stdout.write(''.join(f'{second}.{tick}.{i}\\n' for i in range(rate // 100)))\n"
    "        sys.stdout.flush()\n"
    "        time.sleep(max(0.0, start + second + (tick + 1) / 100 - time.monotonic()))\n"
)


def follow(env: dict[str, str], sink: Path, rate: int, seconds: int) -> tuple[int, float]:
    """`out -s` of a job printing `rate` lines a second for `seconds`: (lines followed, seconds
    between the job's end and the end of `out -s`)."""
    exe = str(BIN / "batchkit")
    done = subprocess.run(
        [exe, "sub", "--json", sys.executable, "-c", RATE_JOB, str(rate), str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    job_id = str(json.loads(done.stdout)["jobId"])
    with sink.open("wb") as out:
        subprocess.run([exe, "out", "-s", "-sp", "1", job_id], env=env, stdout=out, check=True)
    ended = time.time()
    stat = subprocess.run(
        [exe, "stat", "--json", job_id], env=env, capture_output=True, text=True, check=True
    )
    stopped = json.loads(stat.stdout)[0]["stoppedAt"] / 1000
    with sink.open("rb") as f:
        lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return lines, ended - stopped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--array", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchkit-bench-out-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "BATCHKIT_HOME": str(home)}
        env.pop("BATCHKIT_CLUSTER", None)
        env.pop("PYTHONUNBUFFERED", None)  # it would make the baseline write line by line
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # start-up as installed: from bytecode
        single = submit(env, "seq", str(args.lines))
        per_child = args.lines // args.array
        array = submit(env, "-a", str(args.array), "seq", str(per_child))
        streams = sorted((home / "logs").rglob("*"))
        biggest = max((p for p in streams if p.is_file()), key=lambda p: p.stat().st_size)
        exe = str(BIN / "batchkit")
        cases = {
            "plain Python copy loop": ([sys.executable, "-c", COPY, str(biggest)], args.lines),
            "python -c pass (start-up)": ([sys.executable, "-c", "pass"], 0),
            "batchkit out --help (start-up)": ([exe, "out", "--help"], -1),
            "batchkit out": ([exe, "out", single], args.lines),
            "batchkit out --raw": ([exe, "out", "--raw", single], args.lines),
            "batchkit out -t 20": ([exe, "out", "-t", "20", single], 20),
            "batchkit out -hd 20": ([exe, "out", "-hd", "20", single], 20),
            f"batchkit out ARRAY ({args.array} children)": (
                [exe, "out", array],
                per_child * args.array,
            ),
        }
        best: dict[str, tuple[float, float, int]] = {}
        sink = Path(tmp) / "out.txt"
        for _ in range(args.rounds):
            for label, (argv, _) in cases.items():
                wall, rss, lines = run(argv, env, sink)
                old = best.get(label)
                best[label] = (
                    min(wall, old[0]) if old else wall,
                    max(rss, old[1]) if old else rss,
                    lines,
                )
        rate, seconds = 50_000, 4
        followed, lag = follow(env, Path(tmp) / "follow.txt", rate, seconds)
        pid = worker_pid(home)
        if pid and pid > 0:
            os.kill(pid, signal.SIGTERM)
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}, {args.lines:,} lines")
    base = best["plain Python copy loop"][0]
    header = (
        f"{'run':<34} {'wall s':>8} {'x loop':>7} {'peak MB':>8} {'lines':>10} {'expected':>10}"
    )
    print(header)
    print("-" * len(header))
    for label, (_, expected) in cases.items():
        wall, rss, lines = best[label]
        expected = lines if expected < 0 else expected
        print(
            f"{label:<34} {wall:>8.3f} {wall / base:>7.2f} {rss:>8.1f} {lines:>10,} {expected:>10,}"
        )
    print(
        f"out -s of a job printing {rate:,} lines/s for {seconds} s: {followed:,} of "
        f"{rate * seconds:,} lines, done {lag:.2f} s after the job ended (polls every 1 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

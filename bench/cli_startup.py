"""Cold start of the command line: `batchkit --help`, `batchkit stat` and `batchkit sub` against
awsbatch-cli 1.6.0.

    .venv/bin/python bench/cli_startup.py [--runs N] [--instructions]

awsbatch-cli is found through `$BATCHKIT_AWSBATCH_CLI_BIN` (the directory holding `awsbstat`),
else installed once into `.venv-awsbatch-cli`. Each command runs N times as a fresh process
(round-robin; the median wall time is reported); `batchkit stat` runs against an empty private
local engine home, so it measures start-up plus one real listing. Two goals: every `batchkit`
row but `sub` at most 0.8x `awsbstat --help` (issue 2), and `batchkit sub true` on the local
engine at most 100 ms (issue 12; its first call, before the timed ones, starts the worker). The
script exits 1 when either is missed, else 0.

`--instructions` also counts each command's instructions once under valgrind's callgrind (when
valgrind is installed): unlike wall time, the count is the same on a busy machine, so it shows
what a change saved even when the load blurs the milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchkit.providers.local.worker import worker_pid

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.8  # the worst ratio of a batchkit row (but sub) to awsbstat --help
SUB_TARGET = 0.100  # seconds for `batchkit sub true` on the local engine


def awsbatch_cli_bin() -> Path:
    configured = os.environ.get("BATCHKIT_AWSBATCH_CLI_BIN")
    if configured:
        return Path(configured)
    venv = ROOT / ".venv-awsbatch-cli"
    if not (venv / "bin" / "awsbstat").exists():
        print(
            "installing aws-parallelcluster-awsbatch-cli 1.6.0 into .venv-awsbatch-cli",
            file=sys.stderr,
        )
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "aws-parallelcluster-awsbatch-cli==1.6.0"],
            check=True,
        )  # fmt: skip
    return venv / "bin"


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def instructions(argv: list[str], env: dict[str, str]) -> int | None:
    """Instructions one run of `argv` executes, counted by callgrind (None without valgrind)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    with tempfile.TemporaryDirectory(prefix="batchkit-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
            timeout=600,
        )  # fmt: skip
        for line in out.read_text().splitlines() if out.exists() else []:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions with callgrind"
    )
    args = parser.parse_args()
    batchkit = Path(sys.executable).parent / "batchkit"
    awsbstat = awsbatch_cli_bin() / "awsbstat"
    with tempfile.TemporaryDirectory(prefix="batchkit-bench-") as home:
        env = {**os.environ, "BATCHKIT_HOME": home, "PYTHONDONTWRITEBYTECODE": "0"}
        cases = [
            ("awsbstat --help (awsbatch-cli 1.6.0)", [str(awsbstat), "--help"]),
            ("batchkit --help", [str(batchkit), "--help"]),
            ("batchkit stat (local, empty)", [str(batchkit), "stat"]),
            ("batchkit stat --help", [str(batchkit), "stat", "--help"]),
            ("batchkit sub true (local engine)", [str(batchkit), "sub", "true"]),
            ("python -c pass (interpreter alone)", [sys.executable, "-c", "pass"]),
        ]
        for _, argv in cases:  # warm the page cache and bytecode once
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Round-robin, so that a busy moment of a shared machine hits every command alike.
        samples: list[list[float]] = [[] for _ in cases]
        for _ in range(args.runs):
            for index, (_, argv) in enumerate(cases):
                samples[index].append(run_once(argv, env))
        results = [
            (label, statistics.median(s)) for (label, _), s in zip(cases, samples, strict=True)
        ]
        if args.instructions:
            print(f"{'command':40}  {'instructions':>14}")
            for label, argv in cases:
                count = instructions(argv, env)
                shown = f"{count / 1e6:,.1f} M" if count is not None else "no valgrind"
                print(f"{label:40}  {shown:>14}")
            print()
        pid = worker_pid(Path(home))  # the worker `sub` started
        if pid and pid > 0:
            os.kill(pid, signal.SIGTERM)
    return verdict(results)


def verdict(results: list[tuple[str, float]]) -> int:
    """Print the table (the first row is the baseline) and the verdict: 1 when the worst ratio of
    the `batchkit` rows but `sub` misses GOAL or a `sub` row is over SUB_TARGET, else 0."""
    baseline = results[0][1]
    print(f"{'command':40}  {'median ms':>9}  {'ratio':>6}  goal <= {GOAL}")
    print(f"{'-' * 40}  {'-' * 9}  {'-' * 6}")
    worst = 0.0
    sub: list[float] = []
    for label, seconds in results:
        ratio = seconds / baseline
        if label.startswith("batchkit sub"):
            sub.append(seconds)
        elif label.startswith("batchkit"):
            worst = max(worst, ratio)
        print(f"{label:40}  {seconds * 1000:9.1f}  {ratio:6.2f}")
    meets = worst <= GOAL
    print(f"\nworst batchkit ratio {worst:.2f} ({'meets' if meets else 'misses'} the goal)")
    for seconds in sub:
        within = seconds <= SUB_TARGET
        meets = meets and within
        print(
            f"batchkit sub {seconds * 1000:.1f} ms "
            f"({'within' if within else 'over'} its {SUB_TARGET * 1000:.0f} ms target)"
        )
    return 0 if meets else 1


if __name__ == "__main__":
    sys.exit(main())

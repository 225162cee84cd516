"""Cold start of the command line: `batchkit --help` and `batchkit stat` against awsbatch-cli 1.6.0.

    .venv/bin/python bench/cli_startup.py [--runs N]

awsbatch-cli is found through `$BATCHKIT_AWSBATCH_CLI_BIN` (the directory holding `awsbstat`),
else installed once into `.venv-awsbatch-cli`. Each command runs N times as a fresh process
(round-robin; the median wall time is reported); `batchkit stat` runs against an empty private
local engine home, so it measures start-up plus one real listing. The goal is a ratio of at most
0.8 against `awsbstat --help`; `batchkit sub true` on the local engine should take at most 100 ms
(issue 12; its first call also starts the worker).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchkit.providers.local.worker import worker_pid

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.8


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
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
        pid = worker_pid(Path(home))  # the worker `sub` started
        if pid and pid > 0:
            os.kill(pid, signal.SIGTERM)
    baseline = results[0][1]
    print(f"{'command':40}  {'median ms':>9}  {'ratio':>6}  goal <= {GOAL}")
    print(f"{'-' * 40}  {'-' * 9}  {'-' * 6}")
    worst = 0.0
    for label, seconds in results:
        ratio = seconds / baseline
        if label.startswith("batchkit") and "sub" not in label:
            worst = max(worst, ratio)
        print(f"{label:40}  {seconds * 1000:9.1f}  {ratio:6.2f}")
    print(f"\nworst batchkit ratio {worst:.2f} ({'meets' if worst <= GOAL else 'misses'} the goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

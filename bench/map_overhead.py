"""`Cluster.map` of a trivial function over 1,000 items on the local engine, against a plain loop.

The map is ONE array job: each child is a fresh Python process that loads the payload, calls the
function on its item and stores the result. Side by side, the same work as a plain loop in this
process, and as Python processes started one after another (`python -c "import cloudpickle"`,
sampled and scaled): the floor for any process-per-item design on this machine. Overhead per item
is (map wall - plain loop) / items; "of which batchkit" is what remains after the process floor
shared over the cores: the job wrapper (a shell, `mkdir`, a copy of the job folder), the runner's
own imports and the engine's scheduling (about 2 ms of it: see bench/local_engine.py).

    .venv/bin/python bench/map_overhead.py [--items 1000] [--sample 50]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchkit.api import Cluster
from batchkit.providers.local.provider import LocalProvider
from batchkit.providers.local.worker import worker_pid


def inc(x: int) -> int:
    return x + 1


def process_floor(sample: int) -> float:
    """Seconds per `python -c "import cloudpickle"` run, over `sample` runs one after another."""
    started = time.perf_counter()
    for _ in range(sample):
        subprocess.run([sys.executable, "-c", "import cloudpickle"], check=True)
    return (time.perf_counter() - started) / sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=50, help="process starts to time")
    args = parser.parse_args()
    items = list(range(args.items))

    started = time.perf_counter()
    expected = [inc(x) for x in items]
    loop = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="batchkit-bench-") as tmp:
        home = Path(tmp)
        provider = LocalProvider(home, idle_exit=10)
        cluster = Cluster(provider)
        try:
            cluster.submit(inc, 0).result(timeout=120)  # warm up: the worker's start-up
            started = time.perf_counter()
            job = cluster.map(inc, items, memory=64)
            submitted = time.perf_counter()
            job.wait(progress=False)
            finished = time.perf_counter()
            values = job.results()
            fetched = time.perf_counter()
            cores = provider.capacity().vcpus
        finally:
            pid = worker_pid(home)
            if pid and pid > 0:
                os.kill(pid, signal.SIGTERM)
            for process in provider.spawned:
                process.wait(timeout=10)
    if values != expected:
        print("error: map returned wrong values", file=sys.stderr)
        return 1
    floor = process_floor(args.sample)
    wall = fetched - started
    count = len(items)
    per_item = (wall - loop) / count
    engine_share = per_item - floor / cores
    print(f"items: {count}, cores: {cores:g}, python {sys.version.split()[0]}")
    rows = [
        ("plain loop", loop, loop / count * 1e3, ""),
        ("map: submit (pickle + stage)", submitted - started, "", ""),
        ("map: run (array job)", finished - submitted, "", ""),
        ("map: results()", fetched - finished, "", ""),
        ("map: total", wall, wall / count * 1e3, f"{per_item * 1e3:.2f}"),
        (
            f"process floor ({args.sample} runs, x{count})",
            floor * count,
            floor * 1e3,
            f"{engine_share * 1e3:.2f} of which batchkit",
        ),
    ]
    header = f"{'phase':<36} {'wall s':>9} {'ms/item':>9}  overhead ms/item"
    print(header)
    print("-" * len(header))
    for label, seconds, per, overhead in rows:
        per_text = f"{per:.3f}" if isinstance(per, float) else per
        print(f"{label:<36} {seconds:>9.3f} {per_text:>9}  {overhead}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

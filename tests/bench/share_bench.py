#!/usr/bin/python3
"""One 2.47 GB table, eight worker processes: memory (sum of PSS) and time.

    /usr/bin/python3 tests/bench/share_bench.py [BUILD_DIR] [--rows N] [--dim D] [--workers W]

Makes a 50,257 x 12,288 table in $EMBSTORE_BENCH_DIR (default /tmp) and runs
W = 8 copies of build/tests/table_worker that each gather every row in a
random order, then reads /proc/PID/smaps_rollup of each while all are alive:
  - mapping the file (the page cache holds one copy for all);
  - mapping it from shared memory (`embstore share`, timed against `cp` of
    the same file into /dev/shm, same run);
  - each loading a private copy (what a process does without embstore): as
    many workers as fit in half the available memory, at least 2.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from procmem import pss_bytes  # noqa: E402


def args():
    """The build folder (default build) and the options."""
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?", default="build")
    p.add_argument("--rows", type=int, default=50257)
    p.add_argument("--dim", type=int, default=12288)
    p.add_argument("--workers", type=int, default=8)
    a = p.parse_args()
    return a.build, a.rows, a.dim, a.workers


def available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def pool(worker, mode, table, n):
    t = time.perf_counter()
    procs = [subprocess.Popen([worker, mode, table], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    try:
        ready = [p.stdout.readline().split() for p in procs]
        elapsed = time.perf_counter() - t
        if not all(r and r[0] == "ready" for r in ready) or len({r[1] for r in ready}) != 1:
            raise RuntimeError(f"workers failed: {ready}")
        return sum(pss_bytes(p.pid) for p in procs), elapsed
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait()


def main():
    build, rows, dim, n = args()
    emb = os.path.join(build, "embstore")
    worker = os.path.join(build, "tests", "table_worker")
    d = tempfile.mkdtemp(dir=os.environ.get("EMBSTORE_BENCH_DIR", "/tmp"))
    name = f"share-bench-{os.getpid()}"
    try:
        table = os.path.join(d, "t.emb")
        subprocess.run([emb, "generate", "--rows", str(rows), "--dim", str(dim), "--seed", "7", "--no-fsync",
                        "-o", table], check=True)
        size = os.path.getsize(table)
        gb = 1e9
        print(f"table: {rows:,} x {dim:,} float32, {size / gb:.2f} GB; {n} worker processes, each gathering every "
              f"row in a random order; {os.cpu_count()} cpus")
        pss, t = pool(worker, "gather", table, n)
        print(f"  mapping the file:           PSS sum {pss / gb:6.2f} GB = {pss / size:5.3f}x the table  ({t:.2f} s)")

        cp_dst = f"/dev/shm/{name}-cp"
        t0 = time.perf_counter()
        subprocess.run(["cp", table, cp_dst], check=True)
        t_cp = time.perf_counter() - t0
        os.remove(cp_dst)
        t0 = time.perf_counter()
        subprocess.run([emb, "share", table, "--name", name, "-T", "2"], check=True)
        t_share = time.perf_counter() - t0
        try:
            pss, t = pool(worker, "gather", "shm:" + name, n)
            print(f"  mapping shm:{name}: PSS sum {pss / gb:6.2f} GB = {pss / size:5.3f}x the table  ({t:.2f} s)")
        finally:
            subprocess.run([emb, "unshare", name], check=True)
        print(f"  embstore share (copy + verify every checksum): {t_share:.2f} s; cp of the file into /dev/shm: "
              f"{t_cp:.2f} s ({t_share / t_cp:.2f}x)")

        fit = max(2, min(n, int(available_bytes() * 0.5 // size)))
        pss, t = pool(worker, "private", table, fit)
        note = "" if fit == n else f" (only {fit} fit in half the free memory; {n} would use {n * pss / fit / gb:.1f} GB)"
        print(f"  private copies, {fit} workers: PSS sum {pss / gb:6.2f} GB = {pss / size:5.3f}x the table, "
              f"{pss / fit / size:.3f}x per worker  ({t:.2f} s){note}")
    finally:
        subprocess.run([emb, "unshare", name], capture_output=True)
        subprocess.run(["rm", "-rf", d], check=True)


if __name__ == "__main__":
    main()

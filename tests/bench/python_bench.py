#!/usr/bin/python3
"""Open a 50,257 x 12,288 float32 table (2.47 GB) from Python and read 4,096
random rows: embstore against numpy.load(mmap_mode='r') of the same rows as
a .npy and torch.load of the same tensor, in one run.

    /usr/bin/python3 tests/bench/python_bench.py [BUILD_DIR] [--reps N] [--rows R] [--dim D]

Files in $EMBSTORE_BENCH_DIR (default /tmp): t.emb (embstore generate), t.npy
(embstore export: the bytes numpy.save writes), t.pt (torch.save of the
tensor). Every measurement is a fresh interpreter (imports not timed), so
"open" includes everything a new worker process pays. Each case runs twice
per repetition:
  - warm: the file already in the page cache;
  - cold: its pages dropped first (posix_fadvise DONTNEED, after a sync), so
    the rows come from the disk.
Then, warm and in one process, a fresh open and the same read for embstore,
embstore through nn.Embedding and NumPy in turn, 3N times each (the
fresh-interpreter figures above swing by tens of milliseconds between runs
on this shared machine; alternating in one process does not).
Reported: medians of N (default 5) for open, for reading the rows (the same
4,096 ids for every case, rows copied into one array), their sum, and how
much the process's RSS grew over both; ratios against embstore. Every case must return the
same bytes (SHA-256), else the run fails.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PY = "/usr/bin/python3"

# Warm, in one process: a fresh open (new mapping, new page tables) and the
# same gather, the cases alternating, so that the machine's drift hits all
# of them alike.
ALTERNATING = r"""
import json, statistics, sys, time, warnings
sys.path.insert(0, sys.argv[4])
import numpy as np
import torch
import embstore
warnings.filterwarnings("ignore")
emb_path, npy_path, ids = sys.argv[1], sys.argv[2], np.load(sys.argv[3])
tids = torch.from_numpy(ids)
for p in (emb_path, npy_path):
    with open(p, "rb") as f:
        while f.read(64 << 20):
            pass
def run_embstore():
    return embstore.open(emb_path)[ids]
def run_embstore_torch():
    t = embstore.open(emb_path)
    return torch.nn.Embedding.from_pretrained(torch.from_numpy(t.array), freeze=True)(tids)
def run_numpy():
    return np.load(npy_path, mmap_mode="r")[ids]
cases = {"embstore": run_embstore, "embstore+torch": run_embstore_torch, "numpy": run_numpy}
times = {c: [] for c in cases}
for i in range(int(sys.argv[5])):
    for c, fn in cases.items():
        t0 = time.perf_counter()
        r = fn()
        times[c].append(time.perf_counter() - t0)
        del r
print(json.dumps({c: statistics.median(v) for c, v in times.items()}))
"""

CHILD = r"""
import hashlib, json, os, sys, time, warnings
sys.path.insert(0, sys.argv[4])
import numpy as np
import torch
import embstore
warnings.filterwarnings("ignore")
case, path, ids_path = sys.argv[1], sys.argv[2], sys.argv[3]
ids = np.load(ids_path)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
rss0 = rss()
t0 = time.perf_counter()
if case == "embstore":
    t = embstore.open(path)
    t1 = time.perf_counter()
    rows = t[ids]
elif case == "embstore+torch":
    t = embstore.open(path)
    emb = torch.nn.Embedding.from_pretrained(torch.from_numpy(t.array), freeze=True)
    t1 = time.perf_counter()
    rows = emb(torch.from_numpy(ids)).numpy()
elif case == "numpy":
    a = np.load(path, mmap_mode="r")
    t1 = time.perf_counter()
    rows = a[ids]
elif case == "torch":
    w = torch.load(path)
    t1 = time.perf_counter()
    rows = w[torch.from_numpy(ids)].numpy()
t2 = time.perf_counter()
print(json.dumps({"open": t1 - t0, "read": t2 - t1,
                  "rss": rss() - rss0,
                  "sha": hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()}))
"""


def args():
    p = argparse.ArgumentParser(description="embstore, numpy.load(mmap_mode='r') and torch.load from Python")
    p.add_argument("build", nargs="?", default="build", help="the build folder (embstore, python/)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--rows", type=int, default=50257)
    p.add_argument("--dim", type=int, default=12288)
    a = p.parse_args()
    return a.build, a.reps, a.rows, a.dim


def drop(path):
    subprocess.run(["sync"], check=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path):
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def main():
    build, reps, rows, dim = args()
    emb = os.path.join(build, "embstore")
    module_dir = os.path.join(build, "python")
    d = tempfile.mkdtemp(prefix="python-bench-", dir=os.environ.get("EMBSTORE_BENCH_DIR", "/tmp"))
    files = {"emb": os.path.join(d, "t.emb"), "npy": os.path.join(d, "t.npy"), "pt": os.path.join(d, "t.pt")}
    try:
        subprocess.run([emb, "generate", "--rows", str(rows), "--dim", str(dim), "--seed", "123", "--no-fsync",
                        "-o", files["emb"]], check=True)
        subprocess.run([emb, "export", files["emb"], "-o", files["npy"], "--no-fsync"], check=True)
        subprocess.run([PY, "-c", "import sys, numpy, torch; "
                        "torch.save(torch.from_numpy(numpy.load(sys.argv[1])), sys.argv[2])",
                        files["npy"], files["pt"]], check=True)
        import numpy as np
        ids_path = os.path.join(d, "ids.npy")
        np.save(ids_path, np.random.default_rng(7).integers(0, rows, size=4096))
        cases = [("embstore", files["emb"]), ("embstore+torch", files["emb"]), ("numpy", files["npy"]),
                 ("torch", files["pt"])]
        results = {(c, state): [] for c, _ in cases for state in ("warm", "cold")}
        shas = set()
        for rep in range(reps):
            order = cases[rep % len(cases):] + cases[:rep % len(cases)]  # no case always first
            for state in ("cold", "warm"):
                for case, path in order:
                    drop(path) if state == "cold" else warm(path)
                    out = subprocess.run([PY, "-c", CHILD, case, path, ids_path, module_dir], check=True,
                                         capture_output=True, text=True).stdout
                    r = json.loads(out)
                    shas.add(r["sha"])
                    results[(case, state)].append(r)
            print(f"repetition {rep + 1} of {reps} done", file=sys.stderr, flush=True)
        if len(shas) != 1:
            raise SystemExit(f"the cases returned different rows: {shas}")
        size = os.path.getsize(files["emb"])
        print(f"# {rows} x {dim} float32 ({size / 1e9:.2f} GB); 4,096 random rows; medians of {reps}; "
              f"every case returned the same rows")
        for state in ("warm", "cold"):
            print(f"\n## {state} page cache\n")
            print("| case | open | read 4,096 rows | total | vs embstore | RSS added |")
            print("|---|---|---|---|---|---|")
            base = statistics.median(r["open"] + r["read"] for r in results[("embstore", state)])
            for case, _ in cases:
                rs = results[(case, state)]
                o = statistics.median(r["open"] for r in rs)
                rd = statistics.median(r["read"] for r in rs)
                tot = statistics.median(r["open"] + r["read"] for r in rs)
                rss = statistics.median(r["rss"] for r in rs)
                print(f"| {case} | {o * 1e3:.2f} ms | {rd * 1e3:.1f} ms | {tot * 1e3:.1f} ms | "
                      f"{tot / base:.2f}x | {rss / 1e6:.0f} MB |")
        alt = json.loads(subprocess.run([PY, "-c", ALTERNATING, files["emb"], files["npy"], ids_path, module_dir,
                                         str(3 * reps)], check=True, capture_output=True, text=True).stdout)
        print(f"\n## warm, one process, open + read alternating, medians of {3 * reps}\n")
        print("| case | open + read 4,096 rows | vs embstore |")
        print("|---|---|---|")
        for case, v in alt.items():
            print(f"| {case} | {v * 1e3:.1f} ms | {v / alt['embstore']:.2f}x |")
    finally:
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        os.rmdir(d)


if __name__ == "__main__":
    main()

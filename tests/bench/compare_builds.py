#!/usr/bin/python3
"""Two builds of embstore, side by side: the same commands and library
benchmarks, alternating between the builds, medians of N and the ratio
new/old. For "no regression beyond noise" across a change.

    /usr/bin/python3 tests/bench/compare_builds.py OLD_BUILD NEW_BUILD [--reps N]

Each BUILD is a build tree (Release) with `embstore`, and, when built,
the Python module (python/), tests/bench/table_bench and
tests/bench/embz_bench. Files go to
$EMBSTORE_BENCH_DIR (default /tmp): a 50,257 x 768 table (154 MB), its
.embz and .npy, made by OLD_BUILD's embstore. The command cases run the
whole process (open, work, exit), warm; the library cases are the
benchmarks' own medians. Old and new alternate within every repetition, so
the machine's drift hits both alike. Every command case but verify (whose
report's wording may change) must print the same bytes from both builds,
else the run fails.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv):
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0, r.stdout


def human(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:8.2f}{unit}"
    return f"{seconds * 1e9:8.2f}ns"


# The Python module of one build, in a fresh interpreter, warm: each case
# is the median of many calls (its own count); prints them as JSON.
PY_CASES = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import embstore
emb, embz = sys.argv[2], sys.argv[3]
ids = np.array(json.loads(sys.argv[4]), dtype=np.int64)
def timed(f, reps):
    f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
    return statistics.median(t)
t = embstore.open(emb)
print(json.dumps({
    "python: embstore.open(.emb)": timed(lambda: embstore.open(emb), 500),
    "python: embstore.open(.emb)[256 ids]": timed(lambda: embstore.open(emb)[ids], 500),
    "python: embstore.open(.embz)[256 ids]": timed(lambda: embstore.open(embz)[ids], 20),
    "python: t[id], .emb open": timed(lambda: t[12345], 2000),
    "python: t.gather(256 ids), .emb open": timed(lambda: t.gather(ids), 2000),
}))
"""


def bench_json(binary, filt, reps):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, f"--benchmark_filter={filt}", f"--benchmark_repetitions={reps}",
                        "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.2",
                        f"--benchmark_out={out.name}", "--benchmark_out_format=json"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        runs = json.load(open(out.name))
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    return {b["run_name"]: b["real_time"] * unit[b["time_unit"]] for b in runs["benchmarks"]
            if b.get("aggregate_name") == "median"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    d = os.environ.get("EMBSTORE_BENCH_DIR", "/tmp")
    old_emb, new_emb = os.path.join(a.old, "embstore"), os.path.join(a.new, "embstore")
    t = os.path.join(d, "embstore-compare-50257x768.emb")
    z = os.path.join(d, "embstore-compare-50257x768.embz")
    n = os.path.join(d, "embstore-compare-50257x768.npy")
    for p in (t, z, n):
        if os.path.exists(p):
            os.unlink(p)
    subprocess.run([old_emb, "generate", "--rows", "50257", "--dim", "768", "--seed", "5", "-o", t], check=True)
    subprocess.run([old_emb, "compress", t, "-o", z, "-q"], check=True)
    subprocess.run([old_emb, "export", t, "-o", n, "-q"], check=True)
    ids = [str(i) for i in random.Random(1).sample(range(50257), 256)]
    out = os.path.join(d, "embstore-compare-out")
    cases = {
        "info (open, header, exit)": ["info", t],
        "get 256 random rows, .emb": ["get", t, *ids, "--raw"],
        "get 256 random rows, .embz": ["get", z, *ids, "--raw"],
        "verify .emb (154 MB)": ["verify", t],
        "verify .embz": ["verify", z],
        "generate 50,257 x 768": ["generate", "--rows", "50257", "--dim", "768", "--seed", "7", "-o", out + ".gen",
                                  "--no-fsync"],
        "compress .emb": ["compress", t, "-o", out + ".embz", "-f", "-q", "--no-fsync"],
        "decompress .embz": ["decompress", z, "-o", out, "-f", "--no-fsync"],
        "export .npy": ["export", t, "-o", out + ".npy", "-f", "-q", "--no-fsync"],
        "import .npy": ["import", n, "-o", out, "-f", "-q", "--no-fsync"],
    }
    times = {name: ([], []) for name in cases}
    for _ in range(a.reps):
        for name, argv in cases.items():
            got = []
            for k, binary in enumerate((old_emb, new_emb)):
                s, stdout = timed([binary, *argv])
                times[name][k].append(s)
                got.append(stdout)
            if got[0] != got[1] and argv[0] != "verify":  # a report's wording may change
                sys.exit(f"compare_builds: `{' '.join(argv)}` prints different bytes from the two builds")
    print(f"medians of {a.reps}, old = {a.old}, new = {a.new}")
    print(f"{'case':42} {'old':>10} {'new':>10} {'new/old':>8}")
    for name, (o, w) in times.items():
        mo, mw = statistics.median(o), statistics.median(w)
        print(f"{name:42} {human(mo)} {human(mw)} {mw / mo:8.3f}")
    modules = [os.path.join(b, "python") for b in (a.old, a.new)]
    # The module: python/embstore.*.so before 0.1's packaging, the package
    # python/embstore/ since.
    if all(os.path.isdir(m) and any(f == "embstore" or f.startswith("embstore.") for f in os.listdir(m))
           for m in modules):
        per = ([], [])
        for _ in range(8):  # microsecond calls swing between interpreters: alternate eight
            for k, m in enumerate(modules):
                r = subprocess.run([sys.executable, "-c", PY_CASES, m, t, z, json.dumps([int(i) for i in ids])],
                                   check=True, capture_output=True, text=True)
                per[k].append(json.loads(r.stdout))
        for name in per[0][0]:
            mo = statistics.median(r[name] for r in per[0])
            mw = statistics.median(r[name] for r in per[1])
            print(f"{name:42} {human(mo)} {human(mw)} {mw / mo:8.3f}")
    else:
        print("(the Python module is not built in both trees: skipped)")
    for bench, filt in (("table_bench", "BM_Open|BM_Gather|BM_Memcpy|BM_Verify|BM_RowLookup"),
                        ("embz_bench", "BM_EmbzColdRow|BM_EmbzFirstRowOfBlock|BM_EmbzWarmRow")):
        paths = [os.path.join(b, "tests", "bench", bench) for b in (a.old, a.new)]
        if not all(os.path.exists(p) for p in paths):
            print(f"({bench} is not built in both trees: skipped)")
            continue
        per = ([], [])
        for _ in range(3):  # each run is itself a median of 5; alternate three of them
            for k, p in enumerate(paths):
                per[k].append(bench_json(p, filt, 5))
        for name in per[0][0]:
            mo = statistics.median(r[name] for r in per[0])
            mw = statistics.median(r[name] for r in per[1] if name in r)
            print(f"{bench + ' ' + name:42} {human(mo)} {human(mw)} {mw / mo:8.3f}")
    for p in (t, z, n, out, out + ".npy", out + ".gen", out + ".embz"):
        if os.path.exists(p):
            os.unlink(p)


if __name__ == "__main__":
    main()

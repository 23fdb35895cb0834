#!/usr/bin/python3
"""Sharded tables (issue 19): every figure beside its baseline, in one run.

    /usr/bin/python3 tests/bench/shard_bench.py [BUILD_DIR] [--reps N] [--quick]

Prints medians of N rounds (default 5); within every round each figure's
cases run in turn, in an order that rotates from round to round, so the
machine's drift hits them alike; ratios are the median of each round's own
ratio.
  1. Generation of an 8,000,000 x 128 bfloat16 table (2.05 GB) cut into 8
     shards of 1,000,000 rows, on a distributed.LocalCluster (worker
     processes, threads_per_worker=1; each task threads=1, fsync=False):
     the wall time of embstore.dask.generate(client, folder, ...) alone,
     with 1 worker and with 2, against one process writing the same table
     as one file, `embstore generate --rows R --dim 128 --dtype bfloat16
     --no-fsync -o X.emb` with --threads 1 and with --threads 2 (a
     subprocess, wall clock; target: 1 worker <= 1.3x the 1-thread
     command; 2 workers against the 2-thread command); and the command's
     own sharded path, `... --threads 2 --shard-rows 1,000,000 -o DIR`,
     against the 2-thread command. Each dask case starts its cluster,
     waits for its workers and warms them (embstore imported in every
     worker, then a tiny 8-shard table generated through the same call),
     all untimed, and closes the cluster after its timed call: no idle
     cluster runs beside the other cases. Before every timed run the
     previous output is deleted, then sync, a pause (this machine's ext4
     trims freed blocks; generate_bench.py's reason) and sync again. The
     page cache is not dropped: the clusters' processes would then read
     their code back from disk inside the timed call.
     Checked after every run, outside the timed region: every output's
     rows are the same bytes as a reference table (made once by `embstore
     generate --threads 2`, verified): SHA-1 of each shard's data section
     against SHA-1 of that row range of the reference's (one file's ranges
     likewise); a sharded output also has exactly the 8 shard files and
     its manifest, opens as one table of the right shape that verify()
     passes, gives the reference's values for 256 random rows, and its
     manifest and shard headers (the bytes before the rows) are the same
     bytes whichever way it was written (the command or dask).
  2. Opening and looking up rows in a 1,000-shard table against one file
     of the same rows: a 1,000,000 x 64 float32 table (256 MB), once as one
     file and once with --shard-rows 1,000 (1,000 shards), pages warm.
     From Python, in a fresh process per sample (imports not timed), with
     time.perf_counter_ns: embstore.open(path) (the process's first open);
     the first t[i] at a random i (for the sharded table this opens and
     checks one shard); the next 1,000 random t[i], the sharded table's
     split by whether the row's shard was still unopened (the cost of
     opening a shard) or not; then, with every shard opened (one row of
     each read, untimed), 1,000 other random t[i], each row's page touched
     by the process for the first time, and the same 1,000 again: the
     warm lookup. Also the cost of the timer itself (two calls back to
     back) and the process's open file descriptors at the end (a mapped
     shard keeps its descriptor). Both cases read the same ids in a round;
     the rows they return must hash alike. The manifest's size beside.
     Then the same in C++ (tests/bench/table_bench, Google Benchmark; one
     benchmark per process, the cases alternating within each round):
     BM_OpenLookupTable (OpenTable by name), BM_OpenAndFirstLookup (open
     and one row at a random id) and BM_LookupOneRow (Gather of one row,
     warm: every shard opened, the ids' pages mapped), each for the file
     (/0) and the 1,000-shard table (/1); and BM_FirstRowInShard (the
     sharded table open, one row from each shard in turn: opening and
     checking a shard). Checked once: the two tables
     hold the same rows (all of them compared) and the sharded one passes
     verify().
The figures end with the machine's facts and a markdown table for
tests/bench/RESULTS.md, then the raw runs. A disagreement fails the run
(after the report).

The Dask module is embstore.dask (tools/python/dask.py); where the build
has none, a stand-in doing the same thing is used, and said so: client.map
of embstore.generate_shard over the shards, then
embstore.write_generated_manifest of their entries.

Files: made in a new folder under $EMBSTORE_BENCH_DIR (default /tmp),
removed at the end: about 2 x 2.05 GB for figure 1 (the reference and one
output at a time) and 2 x 256 MB for figure 2 (under the names table_bench
reads: embstore-bench-lookup.emb and embstore-bench-lookup-shards/).
--quick: the same figures at small sizes (500,000 x 128 for 1, 100,000 x 64
still in 1,000 shards for 2, short pauses and C++ runs), to check the
script in a few minutes; its figures mean little.
Needs numpy and python3-distributed (Dask).
"""

import argparse
import datetime
import hashlib
import json
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

PY = "/usr/bin/python3"
MB, GB = 1e6, 1e9
SEED = 19
GEN_SHARDS = 8
LOOKUP_SHARDS = 1000
FULL = dict(gen=(8_000_000, 128), lookup=(1_000_000, 64), lookups=1000, pause=3.0, min_time=0.5, warmup=0.1)
QUICK = dict(gen=(500_000, 128), lookup=(100_000, 64), lookups=1000, pause=0.3, min_time=0.02, warmup=0.01)
# tests/bench/table_bench's names (whatever the shape).
LOOKUP_SINGLE, LOOKUP_SHARDED = "embstore-bench-lookup.emb", "embstore-bench-lookup-shards"
ELEMENT = {"float32": 4, "float16": 2, "bfloat16": 2}


def args():
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?", default="build")
    p.add_argument("--reps", type=int, default=5, help="rounds")
    p.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    return p.parse_args()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Checks:
    """Disagreements found along the way; the run fails after its report."""

    def __init__(self):
        self.failures = []

    def fail(self, what):
        log(f"DISAGREEMENT: {what}")
        self.failures.append(what)


def run_quiet(cmd):
    subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL)


def settle(pause):
    """Flush dirty pages and let the disk finish (trims of the files just
    deleted), so that no run inherits the previous one's writeback."""
    subprocess.run(["sync"], check=True)
    time.sleep(pause)
    subprocess.run(["sync"], check=True)


def remove(*paths):
    for p in paths:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)


def warm(path):
    """Every byte of a file, or of every file in a folder, read once."""
    files = [os.path.join(path, f) for f in sorted(os.listdir(path))] if os.path.isdir(path) else [path]
    for name in files:
        with open(name, "rb") as f:
            while f.read(64 << 20):
                pass


def med(xs):
    return statistics.median(xs)


def machine():
    model = "?"
    mem = 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    mhz = ""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = next(line.split(":", 1)[1].strip() for line in f if line.startswith("cpu MHz"))
    except StopIteration:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return dict(nproc=nproc, model=model, mhz=mhz, mem_gib=mem / (1 << 30), kernel=platform.release(),
                python=platform.python_version(), date=datetime.date.today().isoformat())


# --- the rows' bytes ------------------------------------------------------------------------------

def digests(emb_mod, path, ranges):
    """SHA-1 of the bytes before the rows, and of each row range's stored
    elements (padding left out), of one table file."""
    info = emb_mod.info(path)
    off, stride, rows = info["data_offset"], info["row_stride"], info["rows"]
    row_bytes = info["dim"] * ELEMENT[info["dtype"]]
    with open(path, "rb") as f:
        prefix = hashlib.sha1(f.read(off)).hexdigest()
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=off, shape=(rows, stride))
    out = []
    try:
        for first, n in ranges:
            h = hashlib.sha1()
            step = max(1, (64 << 20) // stride)
            for a in range(first, first + n, step):
                block = mm[a:min(first + n, a + step), :row_bytes]
                h.update(block if stride == row_bytes else np.ascontiguousarray(block))
            out.append(h.hexdigest())
    finally:
        del mm
    return prefix, out


# --- 1. generation ----------------------------------------------------------------------------------

def standin_generate(client, folder, rows, dim, seed, *, shard_rows, dtype, threads=1, fsync=True):
    """What embstore.dask.generate does, for a build that has not got it:
    one task per shard, then the manifest of their entries."""
    import embstore
    os.makedirs(folder, exist_ok=True)
    n = -(-rows // shard_rows)
    futures = client.map(embstore.generate_shard, [folder] * n, list(range(n)), rows=rows, dim=dim, seed=seed,
                         shard_rows=shard_rows, dtype=dtype, threads=threads, fsync=fsync, pure=False)
    entries = client.gather(futures)
    return embstore.write_generated_manifest(folder, entries, rows, dim, seed, shard_rows=shard_rows, dtype=dtype,
                                             fsync=fsync)


def dask_generate():
    """(generate, where it comes from)."""
    try:
        import embstore.dask as ed
        return ed.generate, "embstore.dask.generate"
    except ImportError as e:
        return standin_generate, f"a stand-in (no embstore.dask in this build: {e}): client.map(generate_shard)"


class Cluster:
    """A LocalCluster of n worker processes (1 thread each), started, its
    workers waited for and warmed: embstore imported in each, then a tiny
    sharded table generated through `generate` (8 tasks)."""

    def __init__(self, n, generate, scratch):
        from distributed import Client, LocalCluster
        # Another cluster on this machine holds port 8787: ours takes another.
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        self.environ = dict(os.environ)
        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                    silence_logs=logging.ERROR)
        self.client = Client(self.cluster)
        self.client.wait_for_workers(n)
        files = self.client.run(lambda: __import__("embstore").__file__)
        if len(files) != n:
            raise RuntimeError(f"{len(files)} workers answered, {n} expected")
        tiny = os.path.join(scratch, f"warm-{n}")
        generate(self.client, tiny, 64, 8, SEED, shard_rows=8, dtype="bfloat16", threads=1, fsync=False)
        remove(tiny)

    def close(self):
        self.client.close()
        self.cluster.close()
        # LocalCluster sets its workers' environment (OMP_NUM_THREADS=1,
        # MALLOC_TRIM_THRESHOLD_, ...) in this process's os.environ, where
        # the commands run next would inherit it: put it back.
        os.environ.clear()
        os.environ.update(self.environ)


GEN_CASES = ["cmd1", "dask1", "cmd2", "dask2", "cmd_shards2"]


def generation(emb, emb_mod, generate, d, size, reps, checks):
    rows, dim = size["gen"]
    if rows % GEN_SHARDS:
        raise ValueError("rows must be a multiple of 8")
    shard_rows = rows // GEN_SHARDS
    ranges = [(i * shard_rows, shard_rows) for i in range(GEN_SHARDS)]
    ref = os.path.join(d, "reference.emb")
    log(f"figure 1: the reference table, {rows:,} x {dim} bfloat16 ...")
    base = [emb, "generate", "--rows", rows, "--dim", dim, "--dtype", "bfloat16", "--seed", SEED, "--no-fsync"]
    run_quiet(base + ["--threads", 2, "-o", ref])
    if not emb_mod.open(ref).verify()["ok"]:
        checks.fail("figure 1: the reference table does not verify")
    _, ref_sums = digests(emb_mod, ref, ranges)
    ref_table = emb_mod.open(ref)
    out_file, out_dir = os.path.join(d, "generated.emb"), os.path.join(d, "generated-shards")
    manifest_path = os.path.join(out_dir, "manifest.json")
    shard_names = [f"shard-{i:06d}.emb" for i in range(GEN_SHARDS)]
    first = {}  # the first sharded output's manifest bytes and shard prefixes, and its case
    rng = random.Random(5)

    def check(case):
        if not case.startswith("dask") and case != "cmd_shards2":
            _, sums = digests(emb_mod, out_file, ranges)
            bad = [i for i in range(GEN_SHARDS) if sums[i] != ref_sums[i]]
            if bad:
                checks.fail(f"figure 1, {case}: rows of ranges {bad} differ from the reference's")
            return
        names = sorted(os.listdir(out_dir))
        if names != sorted(shard_names + ["manifest.json"]):
            checks.fail(f"figure 1, {case}: the folder holds {names}")
            return
        prefixes = []
        for i, name in enumerate(shard_names):
            prefix, sums = digests(emb_mod, os.path.join(out_dir, name), [(0, shard_rows)])
            prefixes.append(prefix)
            if sums[0] != ref_sums[i]:
                checks.fail(f"figure 1, {case}: {name}'s rows differ from the reference's rows "
                            f"[{i * shard_rows}, {(i + 1) * shard_rows})")
        with open(manifest_path, "rb") as f:
            manifest = f.read()
        if not first:
            first.update(manifest=manifest, prefixes=prefixes, case=case)
        else:
            if manifest != first["manifest"]:
                checks.fail(f"figure 1: {case}'s manifest differs from {first['case']}'s")
            if prefixes != first["prefixes"]:
                checks.fail(f"figure 1: {case}'s shard headers differ from {first['case']}'s")
        t = emb_mod.open(manifest_path)
        try:
            if t.shape != (rows, dim) or t.dtype != "bfloat16":
                checks.fail(f"figure 1, {case}: the sharded table is {t.shape} {t.dtype}")
            if not t.verify()["ok"]:
                checks.fail(f"figure 1, {case}: the sharded table does not verify")
            ids = [rng.randrange(rows) for _ in range(256)]
            if not np.array_equal(t[ids], ref_table[ids]):
                checks.fail(f"figure 1, {case}: rows read through the manifest differ from the reference's")
        finally:
            t.close()

    runs = {c: [] for c in GEN_CASES}
    for r in range(reps):
        k = r % len(GEN_CASES)
        order = GEN_CASES[k:] + GEN_CASES[:k]
        if r % 2:
            order = order[::-1]
        for case in order:
            remove(out_file, out_dir)
            if case.startswith("dask"):
                cluster = Cluster(int(case[-1]), generate, d)
                try:
                    settle(size["pause"])
                    t0 = time.perf_counter()
                    got = generate(cluster.client, out_dir, rows, dim, SEED, shard_rows=shard_rows,
                                   dtype="bfloat16", threads=1, fsync=False)
                    dt = time.perf_counter() - t0
                finally:
                    cluster.close()
                if os.path.realpath(str(got)) != os.path.realpath(manifest_path):
                    checks.fail(f"figure 1, {case}: generate returned {got!r}, not the manifest's path")
            else:
                threads = 1 if case == "cmd1" else 2
                cmd = base + ["--threads", threads]
                cmd += ["--shard-rows", shard_rows, "-o", out_dir] if case == "cmd_shards2" else ["-o", out_file]
                settle(size["pause"])
                t0 = time.perf_counter()
                run_quiet(cmd)
                dt = time.perf_counter() - t0
            runs[case].append(dt)
            check(case)
            remove(out_file, out_dir)
        log(f"  figure 1: round {r + 1} of {reps} done: " + ", ".join(f"{c} {runs[c][-1]:.3f} s" for c in GEN_CASES))
    ref_table.close()
    remove(ref)
    return runs, dict(rows=rows, dim=dim, shard_rows=shard_rows, nbytes=rows * dim * 2)


# --- 2. open and look up ----------------------------------------------------------------------------

PROBE = r"""
import hashlib, json, os, random, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import embstore
path, rows, shard_rows, n, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rng = random.Random(seed)
first_id = rng.randrange(rows)
fresh_ids = [rng.randrange(rows) for _ in range(n)]
warm_ids = [rng.randrange(rows) for _ in range(n)]
clock = time.perf_counter_ns
t0 = clock()
t = embstore.open(path)
t1 = clock()
row = t[first_id]
t2 = clock()
h = hashlib.sha1(row.tobytes())
seen = {first_id // shard_rows}
new_shard, old_shard = [], []
for i in fresh_ids:
    a = clock()
    r = t[i]
    b = clock()
    (old_shard if i // shard_rows in seen else new_shard).append(b - a)
    seen.add(i // shard_rows)
    h.update(r.tobytes())
t[list(range(0, rows, shard_rows))]  # every shard opened (untimed)
page, again = [], []
for i in warm_ids:  # rows on pages this process has not touched yet
    a = clock()
    r = t[i]
    b = clock()
    page.append(b - a)
for i in warm_ids:  # the same rows again: warm
    a = clock()
    r = t[i]
    b = clock()
    again.append(b - a)
    h.update(r.tobytes())
timer = []
for _ in range(n):
    a = clock()
    b = clock()
    timer.append(b - a)
m = statistics.median
print(json.dumps(dict(open=t1 - t0, first=t2 - t1, new_shard=m(new_shard) if new_shard else None,
                      new_count=len(new_shard), old_shard=m(old_shard), fresh=m(new_shard + old_shard),
                      page=m(page), warm=m(again), timer=m(timer), fds=len(os.listdir("/proc/self/fd")),
                      digest=h.hexdigest())))
"""


def probe(pydir, path, rows, shard_rows, n, seed):
    r = subprocess.run([PY, "-c", PROBE, pydir, path, str(rows), str(shard_rows), str(n), str(seed)], check=True,
                       capture_output=True, text=True)
    return json.loads(r.stdout)


def gbench(binary, env, name, min_time, warmup):
    """One benchmark in its own process: seconds per iteration."""
    r = subprocess.run([binary, f"--benchmark_filter=^{name}$", "--benchmark_format=json",
                        f"--benchmark_min_time={min_time}", f"--benchmark_min_warmup_time={warmup}"],
                       env=env, check=True, capture_output=True, text=True)
    data = json.loads(r.stdout)
    runs = [b for b in data["benchmarks"] if b["name"] == name]
    if len(runs) != 1 or runs[0].get("error_occurred"):
        raise RuntimeError(f"{name}: {runs[0].get('error_message') if runs else 'no such benchmark'}")
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[runs[0]["time_unit"]]
    return runs[0]["real_time"] * unit


CPP_CASES = ["BM_OpenLookupTable/0", "BM_OpenLookupTable/1", "BM_OpenAndFirstLookup/0", "BM_OpenAndFirstLookup/1",
             "BM_FirstRowInShard", "BM_LookupOneRow/0", "BM_LookupOneRow/1"]


def lookups(emb, emb_mod, pydir, table_bench, d, size, reps, checks):
    rows, dim = size["lookup"]
    shard_rows = rows // LOOKUP_SHARDS
    single, folder = os.path.join(d, LOOKUP_SINGLE), os.path.join(d, LOOKUP_SHARDED)
    manifest = os.path.join(folder, "manifest.json")
    log(f"figure 2: {rows:,} x {dim} float32, one file and {LOOKUP_SHARDS:,} shards ...")
    base = [emb, "generate", "--rows", rows, "--dim", dim, "--seed", 0, "--no-fsync"]
    run_quiet(base + ["-o", single])
    run_quiet(base + ["--shard-rows", shard_rows, "-o", folder])
    nshards = len([f for f in os.listdir(folder) if f.startswith("shard-")])
    if nshards != LOOKUP_SHARDS:
        checks.fail(f"figure 2: {nshards} shards written, {LOOKUP_SHARDS} expected")
    a, b = emb_mod.open(single), emb_mod.open(manifest)
    try:
        if a.shape != b.shape:
            checks.fail(f"figure 2: shapes {a.shape} and {b.shape}")
        elif not np.array_equal(a[0:rows], b[0:rows]):
            checks.fail("figure 2: the sharded table's rows differ from the file's")
        if not b.verify()["ok"]:
            checks.fail("figure 2: the sharded table does not verify")
    finally:
        a.close()
        b.close()
    warm(single)
    warm(folder)
    cases = {"single": (single, rows), "sharded": (manifest, shard_rows)}
    for name, (path, sr) in cases.items():  # untimed: the interpreter's and the module's pages
        probe(pydir, path, rows, sr, size["lookups"], 0)
    runs = {k: [] for k in cases}
    for r in range(reps):
        order = list(cases) if r % 2 == 0 else list(cases)[::-1]
        got = {}
        for name in order:
            path, sr = cases[name]
            got[name] = probe(pydir, path, rows, sr, size["lookups"], 1000 + r)
            runs[name].append(got[name])
        if got["single"]["digest"] != got["sharded"]["digest"]:
            checks.fail(f"figure 2, round {r + 1}: the rows read from the two tables differ")
        log(f"  figure 2 (Python): round {r + 1} of {reps} done")

    cpp = {n: [] for n in CPP_CASES}
    cpp_note = ""
    if not os.path.exists(table_bench):
        cpp_note = f"{table_bench} not built (EMBSTORE_BUILD_BENCHMARKS=OFF?)"
    else:
        env = dict(os.environ, EMBSTORE_BENCH_DIR=d)
        try:
            for r in range(reps):
                order = CPP_CASES if r % 2 == 0 else CPP_CASES[::-1]
                for n in order:
                    cpp[n].append(gbench(table_bench, env, n, size["min_time"], size["warmup"]))
                log(f"  figure 2 (C++): round {r + 1} of {reps} done")
        except RuntimeError as e:
            cpp_note = f"table_bench: {e}"
            cpp = {n: [] for n in CPP_CASES}
    facts = dict(rows=rows, dim=dim, shard_rows=shard_rows, manifest_bytes=os.path.getsize(manifest),
                 file_bytes=os.path.getsize(single),
                 shards_bytes=sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)))
    remove(single, folder)
    return runs, cpp, cpp_note, facts


# --- the report -------------------------------------------------------------------------------------

def main():
    a = args()
    size = QUICK if a.quick else FULL
    build = os.path.abspath(a.build)
    emb = os.path.join(build, "embstore")
    pydir = os.path.join(build, "python")
    table_bench = os.path.join(build, "tests", "bench", "table_bench")
    os.environ["PYTHONPATH"] = pydir + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
    sys.path.insert(0, pydir)
    import embstore
    import dask
    import distributed
    generate, generate_from = dask_generate()
    m = machine()
    checks = Checks()
    parent = os.environ.get("EMBSTORE_BENCH_DIR") or "/tmp"
    d = tempfile.mkdtemp(prefix="embstore-shardbench-", dir=parent)
    try:
        gen, gfacts = generation(emb, embstore, generate, d, size, a.reps, checks)
        py, cpp, cpp_note, lfacts = lookups(emb, embstore, pydir, table_bench, d, size, a.reps, checks)
    finally:
        shutil.rmtree(d, ignore_errors=True)

    reps = a.reps
    print(f"machine: {m['nproc']} cpus (nproc), {m['model']} @ {m['mhz']} MHz, {m['mem_gib']:.1f} GiB, Linux "
          f"{m['kernel']}, Python {m['python']}, NumPy {np.__version__}, Dask {dask.__version__}, distributed "
          f"{distributed.__version__}; {m['date']}; medians of {reps} rounds"
          f"{'; QUICK (small sizes: the figures mean little)' if a.quick else ''}")

    def line(label, value, note=""):
        print(f"  {label:58s}{value}{'   ' + note if note else ''}")

    def ratio(x, y):  # the median of each round's own ratio
        return med([p / q for p, q in zip(gen[x], gen[y])])

    rows, dim, sr, nb = gfacts["rows"], gfacts["dim"], gfacts["shard_rows"], gfacts["nbytes"]
    g = {c: med(v) for c, v in gen.items()}
    print(f"1. generating {rows:,} x {dim} bfloat16 ({nb / GB:.2f} GB), no fsync; sharded: {GEN_SHARDS} shards of "
          f"{sr:,} rows; dask: {generate_from}, each task threads=1:")
    line("`embstore generate --threads 1` (one file)", f"{g['cmd1']:7.3f} s", f"{nb / g['cmd1'] / GB:.2f} GB/s")
    line("`embstore generate --threads 2` (one file)", f"{g['cmd2']:7.3f} s", f"{nb / g['cmd2'] / GB:.2f} GB/s")
    line("LocalCluster, 1 worker x 1 thread", f"{g['dask1']:7.3f} s",
         f"{ratio('dask1', 'cmd1'):.2f}x the 1-thread command (target <= 1.3x)")
    line("LocalCluster, 2 workers x 1 thread", f"{g['dask2']:7.3f} s",
         f"{ratio('dask2', 'cmd2'):.2f}x the 2-thread command; {ratio('dask1', 'dask2'):.2f}x faster than 1 worker")
    line(f"`embstore generate --threads 2 --shard-rows {sr:,}`", f"{g['cmd_shards2']:7.3f} s",
         f"{ratio('cmd_shards2', 'cmd2'):.2f}x the 2-thread command")
    print("  checked: every output's rows against the reference's; the sharded outputs' manifests and shard headers "
          "alike; verify(); 256 random rows through each manifest")

    rows2, dim2, sr2 = lfacts["rows"], lfacts["dim"], lfacts["shard_rows"]
    p = {k: {f: med([s[f] for s in v if s[f] is not None]) for f in ("open", "first", "old_shard", "fresh", "page",
                                                                      "warm", "timer", "fds")}
         for k, v in py.items()}
    new_shard = med([s["new_shard"] for s in py["sharded"]])
    new_count = med([s["new_count"] for s in py["sharded"]])

    def pratio(f):
        return med([x[f] / y[f] for x, y in zip(py["sharded"], py["single"])])

    us = 1e-3  # ns -> us
    print(f"2. {rows2:,} x {dim2} float32 ({lfacts['file_bytes'] / MB:.0f} MB) as one file and as "
          f"{LOOKUP_SHARDS:,} shards of {sr2:,} rows (manifest {lfacts['manifest_bytes']:,} bytes); pages warm; "
          "Python, a fresh process per sample:")
    line("embstore.open: one file", f"{p['single']['open'] * us:9.1f} us")
    line("embstore.open: 1,000-shard manifest", f"{p['sharded']['open'] * us:9.1f} us",
         f"{pratio('open'):.1f}x the file")
    line("first t[i]: one file", f"{p['single']['first'] * us:9.1f} us")
    line("first t[i]: sharded (opens and checks one shard)", f"{p['sharded']['first'] * us:9.1f} us",
         f"{pratio('first'):.1f}x the file")
    line(f"next {size['lookups']:,} random t[i], sharded: row in an unopened shard", f"{new_shard * us:9.1f} us",
         f"{new_count:.0f} of them")
    line("  the others, sharded (shard already open)", f"{p['sharded']['old_shard']:9.0f} ns")
    line("  one file, all of them", f"{p['single']['fresh']:9.0f} ns")
    line("t[i], every shard open, row's page not touched yet: one file", f"{p['single']['page']:9.0f} ns")
    line("  sharded", f"{p['sharded']['page']:9.0f} ns", f"{pratio('page'):.2f}x the file")
    line("warm t[i] (the same rows again): one file", f"{p['single']['warm']:9.0f} ns")
    line("  sharded", f"{p['sharded']['warm']:9.0f} ns", f"{pratio('warm'):.2f}x the file")
    line("the timer itself (two perf_counter_ns calls)", f"{p['single']['timer']:9.0f} ns",
         "included in every figure above")
    line("open descriptors at the end: one file / sharded", f"{p['single']['fds']:.0f} / {p['sharded']['fds']:.0f}",
         "a mapped shard keeps its descriptor")
    c = {}
    if cpp_note:
        print(f"  C++: skipped: {cpp_note}")
    else:
        c = {n: med(v) for n, v in cpp.items()}

        def cratio(x, y):
            return med([p_ / q_ for p_, q_ in zip(cpp[x], cpp[y])])

        print("  C++ (table_bench, Google Benchmark):")
        line("OpenTable: one file", f"{c['BM_OpenLookupTable/0'] * 1e6:9.1f} us")
        line("OpenTable: 1,000-shard manifest", f"{c['BM_OpenLookupTable/1'] * 1e6:9.1f} us",
             f"{cratio('BM_OpenLookupTable/1', 'BM_OpenLookupTable/0'):.1f}x the file")
        line("open + one row at a random id: one file", f"{c['BM_OpenAndFirstLookup/0'] * 1e6:9.1f} us")
        line("open + one row at a random id: sharded", f"{c['BM_OpenAndFirstLookup/1'] * 1e6:9.1f} us",
             f"{cratio('BM_OpenAndFirstLookup/1', 'BM_OpenAndFirstLookup/0'):.1f}x the file")
        line("one row of a shard not yet opened (table open)", f"{c['BM_FirstRowInShard'] * 1e6:9.1f} us")
        line("Gather of one row, warm: one file", f"{c['BM_LookupOneRow/0'] * 1e9:9.1f} ns")
        line("Gather of one row, warm: sharded", f"{c['BM_LookupOneRow/1'] * 1e9:9.1f} ns",
             f"{cratio('BM_LookupOneRow/1', 'BM_LookupOneRow/0'):.2f}x the file")

    # The markdown table, for tests/bench/RESULTS.md.
    print()
    print(f"{m['nproc']} cpus (nproc), {m['model']}, {m['mem_gib']:.0f} GiB, Linux {m['kernel']}, {m['date']}; "
          f"medians of {reps}")
    print()
    print("| what | sharded | baseline, same run | ratio | target |")
    print("|---|---|---|---|---|")
    what = f"generate {rows:,} x {dim} bfloat16 ({nb / GB:.2f} GB), {GEN_SHARDS} shards, no fsync"
    print(f"| {what}: LocalCluster, 1 worker | {g['dask1']:.3f} s | `embstore generate --threads 1` {g['cmd1']:.3f} s "
          f"| **{ratio('dask1', 'cmd1'):.2f}x** | <= 1.3x |")
    print(f"| the same, 2 workers | {g['dask2']:.3f} s | `--threads 2` {g['cmd2']:.3f} s | "
          f"**{ratio('dask2', 'cmd2'):.2f}x** | |")
    print(f"| the same, `embstore generate --threads 2 --shard-rows {sr:,}` | {g['cmd_shards2']:.3f} s | "
          f"`--threads 2` {g['cmd2']:.3f} s | **{ratio('cmd_shards2', 'cmd2'):.2f}x** | |")
    print(f"| open, Python, fresh process: {LOOKUP_SHARDS:,}-shard manifest ({lfacts['manifest_bytes'] / 1e3:.0f} KB)"
          f" | {p['sharded']['open'] * us:.1f} us | one file of the same {rows2:,} x {dim2} float32: "
          f"{p['single']['open'] * us:.1f} us | {pratio('open'):.1f}x | |")
    print(f"| first `t[i]` after open (sharded: opens one shard) | {p['sharded']['first'] * us:.1f} us | "
          f"{p['single']['first'] * us:.1f} us | {pratio('first'):.1f}x | |")
    print(f"| `t[i]` in a shard not yet opened | {new_shard * us:.1f} us | | | |")
    print(f"| warm `t[i]`, random rows | {p['sharded']['warm']:.0f} ns | {p['single']['warm']:.0f} ns | "
          f"{pratio('warm'):.2f}x | |")
    if c:
        print(f"| C++ `OpenTable` | {c['BM_OpenLookupTable/1'] * 1e6:.1f} us | "
              f"{c['BM_OpenLookupTable/0'] * 1e6:.1f} us | "
              f"{cratio('BM_OpenLookupTable/1', 'BM_OpenLookupTable/0'):.1f}x | |")
        print(f"| C++ open + first row | {c['BM_OpenAndFirstLookup/1'] * 1e6:.1f} us | "
              f"{c['BM_OpenAndFirstLookup/0'] * 1e6:.1f} us | "
              f"{cratio('BM_OpenAndFirstLookup/1', 'BM_OpenAndFirstLookup/0'):.1f}x | |")
        print(f"| C++ one row of a shard not yet opened | {c['BM_FirstRowInShard'] * 1e6:.1f} us | | | |")
        print(f"| C++ warm `Gather` of one row | {c['BM_LookupOneRow/1'] * 1e9:.0f} ns | "
              f"{c['BM_LookupOneRow/0'] * 1e9:.0f} ns | {cratio('BM_LookupOneRow/1', 'BM_LookupOneRow/0'):.2f}x | |")
    print()
    raw = {"generate_s": {k: [round(x, 3) for x in v] for k, v in gen.items()},
           "python_ns": {k: [{f: s[f] for f in ("open", "first", "new_shard", "old_shard", "page", "warm")}
                             for s in v] for k, v in py.items()},
           "cpp_s": {k: [float(f"{x:.4g}") for x in v] for k, v in cpp.items()}}
    print("raw runs:", json.dumps(raw))
    if checks.failures:
        sys.exit("FAILED: " + "; ".join(checks.failures))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Exact nearest neighbours: every figure of issue 18 beside its baseline,
in one run.

    /usr/bin/python3 tests/bench/nearest_bench.py [BUILD_DIR] [--reps N] [--quick]

Prints medians of N repetitions (default 5; each figure's cases alternate
within every repetition, so the machine's drift hits them alike; ratios are
the median of each repetition's own ratio) and the targets:
  1. one query (k = 10) over the 50,257 x 12,288 float32 table (2.47 GB),
     2 threads (1 thread as an extra), against the memory read bandwidth:
     a plain AVX-512 sum over the same float32 mapping with as many threads
     (target >= 80% of it); the same query over the bfloat16 table of that
     shape (target >= 1.7x faster than float32); cosine against dot and l2
     at 2 threads, each table (cosine ~ dot: computing the row norms in the
     same pass costs nothing, so storing them would gain nothing). From
     tests/bench/nearest_bench (Google Benchmark), one benchmark per
     process (--benchmark_filter), the benchmarks alternating within each
     round, N rounds; plus its BM_Batch1024 (1,024 queries over 50,257 x
     768, 2 threads; cosine, dot, l2) as an extra beside figure 2;
  2. a batch of 1,024 queries (k = 10) over a 50,257 x 768 float32 table,
     2 threads, l2 and dot: t.nearest(queries, 10, metric, threads=2)
     against faiss.knn (python3-faiss 1.7.3, faiss.omp_set_num_threads(2),
     the base rows in memory as faiss needs them), the same float32
     queries (target: embstore <= faiss's time). Each library in its own
     long-lived process; the two alternate call by call, with a pause
     between calls (OpenMP and OpenBLAS threads spin for a while after a
     call, and would steal the next one's cores). faiss (and gensim, 3.)
     run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from their
     environment: a user of those libraries would not have them set;
  3. most_similar on a 1,000,000 x 300 table with keys (keys_bench's
     synthetic word-like vocabulary): t.most_similar(positive=...,
     negative=..., topn=10) over the float32 table and its bfloat16
     conversion (`embstore convert --dtype bfloat16`) against gensim 4.2's
     KeyedVectors.most_similar over the same float32 vectors loaded with
     KeyedVectors.load(mmap='r') (its norms filled by an untimed first
     call), the same query words: single words and a + b - c analogies
     (targets: float32 at least as fast as gensim, bfloat16 >= 1.7x faster
     than gensim). Memory of a fresh process that opened the table and
     answered 3 queries, one process at a time: PSS, private memory
     (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup) and the
     part of it that is not the table file's pages (a file's page cache
     mapped by a single process counts as private to it; that part is the
     process's own memory: target embstore's a small fraction of gensim's),
     beside a bare interpreter importing each library (embstore with numpy;
     gensim);
  4. 8 processes, each opening the 1,000,000 x 300 float32 table and
     answering most_similar and nearest queries, then waiting while
     /proc/PID/smaps_rollup is read for all of them: sum of PSS against
     the table's file size (target <= 1.1x; the sum includes the 8
     interpreters themselves), beside 8 bare interpreters that only import
     numpy and embstore, and the sum beyond them; then the same with 8
     processes each scanning the 50,257 x 12,288 float32 table (2.47 GB)
     with one nearest query of 4 rows.
Answers are checked, and a disagreement fails the run (after the report):
  - 1: one query per table and metric by t.nearest against float64 NumPy
    over the same rows;
  - 2: embstore's ids against faiss's (the count of differing ids), each
    difference checked against float64 scores: only near-ties (scores
    within 1e-5 |q| |r| for dot, 1e-5 (|q|^2 + |r|^2) for l2) may differ;
  - 3: embstore float32's keys against gensim's, likewise (cosines within
    2e-5); bfloat16 against float32: how many of the top 10 agree
    (reported, not checked: rounding to bfloat16 moves scores by ~1e-3);
  - 4: every worker's answers against the others' and figure 3's.

Files, made once in $EMBSTORE_BENCH_DIR (default /tmp) and reused when
present (delete them to remake): nearest-f32-50257x12288.emb (`embstore
generate`, seed 0), nearest-bf16-50257x12288.emb (generate --dtype
bfloat16), nearest-f32-50257x768.emb and its .npy (`embstore export`, for
faiss), embstore-nearestbench-1000000x300.emb (generate, then `embstore
keys attach` of a one-key-per-line vocabulary), its -bf16.emb (convert),
and gensim's save of the same vectors, .kv and .kv.vectors.npy. Disk: about
7 GB; memory: the page cache holds them all while the figures run, and
gensim's first most_similar allocates a 1.2 GB temporary.
--quick: the same figures at small sizes (5,000 x 1,024 for 1, a batch of
64 over 5,000 x 768 for 2, 50,000 x 300 for 3 and 4, 3 processes, short
runs), to check the script in under 2 minutes; its files are in
$EMBSTORE_BENCH_DIR/embstore-nearestbench-quick/ (under the names the
Google Benchmark program reads, whatever their shape). Its figures mean
little: tables of a few MB (partly in the CPU's caches), runs of a few ms.
The figures end with a markdown table for tests/bench/RESULTS.md.
Needs python3-faiss, python3-gensim and numpy.
"""

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from generate_bench import settle  # noqa: E402  (flush, drop caches)
from keys_bench import vocabulary, warm  # noqa: E402  (the synthetic keys; read a file once)
from procmem import pss_bytes  # noqa: E402

PY = "/usr/bin/python3"
MB, GB = 1e6, 1e9
K = 10

FULL = dict(big=(50257, 12288), batch_table=(50257, 768), batch=1024, ms=(1_000_000, 300), workers=8,
            min_time=1.0, warmup=0.5, queries=8, pause=0.2, check_queries=64)
QUICK = dict(big=(5000, 1024), batch_table=(5000, 768), batch=64, ms=(50_000, 300), workers=3,
             min_time=0.05, warmup=0.02, queries=4, pause=0.05, check_queries=64)
# The Google Benchmark program's names (tests/bench/nearest_bench.cc), whatever the shape.
BIG_F32, BIG_BF16, BATCH_TABLE = "nearest-f32-50257x12288.emb", "nearest-bf16-50257x12288.emb", \
    "nearest-f32-50257x768.emb"


def args():
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?", default="build")
    p.add_argument("--reps", type=int, default=5, help="rounds (figure 1) and repetitions (2, 3)")
    p.add_argument("--quick", action="store_true", help="small sizes, to check the script (< 2 minutes)")
    return p.parse_args()


def peer_env():
    """The environment of the peer libraries' processes: a user of faiss or
    gensim would not have OpenBLAS tuned."""
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    return env


# --- the files ----------------------------------------------------------------------------------

GENSIM_SAVE = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import embstore
from gensim.models import KeyedVectors
src, dst = sys.argv[2], sys.argv[3]
t = embstore.open(src)
keys = [t.key(i) for i in range(len(t))]
vectors = np.array(t.array, dtype=np.float32)  # a copy: the same float32 values
kv = KeyedVectors(t.shape[1], count=0, dtype=np.float32)
kv.add_vectors(keys, vectors)
if kv.index_to_key != keys or not np.array_equal(kv.vectors, vectors):
    sys.exit("gensim's vectors differ from the table's")
kv.save(dst + ".part", separately=["vectors"])  # the vectors in their own .npy, which load(mmap='r') maps
os.rename(dst + ".part.vectors.npy", dst + ".vectors.npy")
os.rename(dst + ".part", dst)
"""


def run_quiet(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def make_files(emb, pydir, d, size):
    """Every file, made if absent; {name: path}."""
    os.makedirs(d, exist_ok=True)
    f = {"big_f32": os.path.join(d, BIG_F32), "big_bf16": os.path.join(d, BIG_BF16),
         "batch": os.path.join(d, BATCH_TABLE)}
    f["batch_npy"] = f["batch"][:-4] + ".npy"
    n, dim = size["ms"]
    base = os.path.join(d, f"embstore-nearestbench-{n}x{dim}")
    f.update(ms_f32=base + ".emb", ms_bf16=base + "-bf16.emb", kv=base + ".kv")
    made = False

    def generate(path, shape, *extra):
        nonlocal made
        if not os.path.exists(path):
            print(f"making {path} ...", file=sys.stderr, flush=True)
            run_quiet([emb, "generate", "--rows", str(shape[0]), "--dim", str(shape[1]), "--seed", "0", *extra,
                       "--no-fsync", "-o", path])
            made = True

    generate(f["big_f32"], size["big"])
    generate(f["big_bf16"], size["big"], "--dtype", "bfloat16")
    generate(f["batch"], size["batch_table"])
    if not os.path.exists(f["batch_npy"]):
        run_quiet([emb, "export", f["batch"], "-o", f["batch_npy"], "-q", "--no-fsync"])
        made = True
    if not os.path.exists(f["ms_f32"]):
        plain, vocab = base + "-nokeys.emb", base + ".keys.txt"
        generate(plain, size["ms"])
        print(f"making {f['ms_f32']} (keys) ...", file=sys.stderr, flush=True)
        with open(vocab + ".part", "w", encoding="utf-8") as out:
            out.writelines(k + "\n" for k in vocabulary(n))
        os.rename(vocab + ".part", vocab)
        run_quiet([emb, "keys", "attach", plain, vocab, "-o", f["ms_f32"], "--vocab-format", "lines", "-q",
                   "--no-fsync"])
        os.remove(plain)
        os.remove(vocab)
        made = True
    if not os.path.exists(f["ms_bf16"]):
        run_quiet([emb, "convert", f["ms_f32"], "--dtype", "bfloat16", "-o", f["ms_bf16"], "-q", "--no-fsync"])
        made = True
    if not os.path.exists(f["kv"]):
        print(f"making {f['kv']} (gensim) ...", file=sys.stderr, flush=True)
        subprocess.run([PY, "-c", GENSIM_SAVE, pydir, f["ms_f32"], f["kv"]], check=True, env=peer_env())
        made = True
    return f, made


# --- answers against float64 -------------------------------------------------------------------------

class Checks:
    """Disagreements found along the way; the run fails after its report."""

    def __init__(self):
        self.failures = []

    def fail(self, what):
        print(f"DISAGREEMENT: {what}", file=sys.stderr, flush=True)
        self.failures.append(what)


def diff_ids(ids_a, ids_b, exact):
    """Positions where two (n, k) id arrays differ, and those of them that
    are not near-ties: exact(query, ids_a_there, ids_b_there) gives the
    float64 scores of both and the tolerance. (differing, unexplained,
    first unexplained example)"""
    differing = unexplained = 0
    example = None
    for qi in range(ids_a.shape[0]):
        m = ids_a[qi] != ids_b[qi]
        if not m.any():
            continue
        differing += int(m.sum())
        sa, sb, tol = exact(qi, ids_a[qi][m], ids_b[qi][m])
        bad = np.abs(sa - sb) > tol
        if bad.any():
            unexplained += int(bad.sum())
            if example is None:
                j = int(np.flatnonzero(m)[np.flatnonzero(bad)[0]])
                example = (f"query {qi}, rank {j}: ids {int(ids_a[qi][j])} (exact {sa[bad][0]:.9g}) and "
                           f"{int(ids_b[qi][j])} (exact {sb[bad][0]:.9g}), tolerance {np.max(tol):.3g}; "
                           f"lists {ids_a[qi].tolist()} and {ids_b[qi].tolist()}")
    return differing, unexplained, example


def scan_float64(t, q, chunk_bytes=128 << 20):
    """q . r and |r|^2 for every row r, in float64 (the rows widened exactly)."""
    n, dim = t.shape
    step = max(1, chunk_bytes // (8 * dim))
    dots, norms = np.empty((n,) + q.shape[1:]), np.empty(n)
    for a in range(0, n, step):
        rows = t[a:min(n, a + step)].astype(np.float64)
        dots[a:a + len(rows)] = rows @ q
        norms[a:a + len(rows)] = np.einsum("ij,ij->i", rows, rows)
    return dots, norms


def check_one_query(emb_mod, paths, checks):
    """Figure 1's answers: one query per table and metric, t.nearest against
    float64 NumPy (each table read once; the page cache warmed too)."""
    lines = []
    for name, path in paths.items():
        t = emb_mod.open(path)
        dim = t.shape[1]
        q = np.random.default_rng(11).standard_normal(dim, dtype=np.float32)
        q64 = q.astype(np.float64)
        nq = float(q64 @ q64)
        dots, norms = scan_float64(t, q64)
        exact = {"dot": dots, "cosine": dots / np.sqrt(nq * norms), "l2": np.maximum(0, nq + norms - 2 * dots)}
        e = (math.ceil(dim / 16) + 4) * 2.0 ** -24  # store/search/nearest.h's bound
        tol = {"dot": 2 * e * math.sqrt(nq) * np.sqrt(norms), "cosine": np.full(len(norms), 2 * (2 * e + 2 ** -23)),
               "l2": 2 * (2 * e * (nq + norms) + 2 ** -24 * exact["l2"])}
        for metric in ("cosine", "dot", "l2"):
            ids, _ = t.nearest(q, K, metric, threads=2)
            order = np.argsort(exact[metric] if metric == "l2" else -exact[metric], kind="stable")[:K]
            s, tl = exact[metric], tol[metric]
            d, u, ex = diff_ids(ids, order[None, :], lambda qi, a, b: (s[a], s[b], tl[a] + tl[b]))
            lines.append(f"{name} {metric}: {d} of {K} ids differ from float64 NumPy, {u} beyond near-ties")
            if u:
                checks.fail(f"figure 1, {name} table, {metric}: embstore and float64 NumPy disagree: {ex}")
        t.close()
    return lines


# --- 1. one query, Google Benchmark -----------------------------------------------------------------

def gbench(binary, env, name, min_time, warmup):
    """One benchmark in its own process: (seconds per iteration, bytes/s, context)."""
    r = subprocess.run([binary, f"--benchmark_filter=^{name}$", "--benchmark_format=json",
                        f"--benchmark_min_time={min_time}", f"--benchmark_min_warmup_time={warmup}"],
                       env=env, check=True, capture_output=True, text=True)
    data = json.loads(r.stdout)
    runs = [b for b in data["benchmarks"] if b["name"] == name]
    if len(runs) != 1 or runs[0].get("error_occurred"):
        raise RuntimeError(f"{name}: {runs[0].get('error_message') if runs else 'no such benchmark'}")
    b = runs[0]
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
    return b["real_time"] * unit, b.get("bytes_per_second", 0.0), data["context"]


ONE_QUERY = ["BM_SumMapping/2", "BM_OneQueryF32/2/0", "BM_OneQueryBF16/2/0",
             "BM_SumMapping/1", "BM_OneQueryF32/1/0", "BM_OneQueryBF16/1/0",
             "BM_OneQueryF32/2/1", "BM_OneQueryF32/2/2", "BM_OneQueryBF16/2/1", "BM_OneQueryBF16/2/2",
             "BM_Batch1024/2/0", "BM_Batch1024/2/1", "BM_Batch1024/2/2"]


def one_query_rounds(binary, d, size, reps):
    env = dict(os.environ, EMBSTORE_BENCH_DIR=d)
    runs = {n: [] for n in ONE_QUERY}
    ctx = None
    for r in range(reps):
        order = ONE_QUERY if r % 2 == 0 else ONE_QUERY[::-1]  # alternate, and each position in turn
        for n in order:
            s, bps, ctx = gbench(binary, env, n + "/real_time", size["min_time"], size["warmup"])
            runs[n].append(s)
        print(f"  figure 1: round {r + 1} of {reps} done", file=sys.stderr, flush=True)
    return runs, ctx


# --- 2 and 3: long-lived processes, called in turn --------------------------------------------------------

SERVER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
mode, cfg = sys.argv[2], json.loads(sys.argv[3])
if mode == "embstore-batch":
    import embstore
    t = embstore.open(cfg["table"])
    q = np.load(cfg["queries"])
    def run(c):
        return t.nearest(q, cfg["k"], c["metric"], threads=cfg["threads"])
elif mode == "faiss-batch":
    import faiss
    faiss.omp_set_num_threads(cfg["threads"])
    xb = np.load(cfg["base"])  # in memory, as faiss needs it
    q = np.load(cfg["queries"])
    metrics = {"l2": faiss.METRIC_L2, "dot": faiss.METRIC_INNER_PRODUCT}
    def run(c):
        D, I = faiss.knn(q, xb, cfg["k"], metric=metrics[c["metric"]])
        return I, D
elif mode == "embstore-ms":
    import embstore
    tables = {k: embstore.open(p) for k, p in cfg["tables"].items()}
    def run(c):
        pos, neg = cfg["queries"][c["q"]]
        return tables[c["table"]].most_similar(positive=pos, negative=neg, topn=cfg["k"])
elif mode == "gensim-ms":
    from gensim.models import KeyedVectors
    kv = KeyedVectors.load(cfg["kv"], mmap="r")
    def run(c):
        pos, neg = cfg["queries"][c["q"]]
        return kv.most_similar(positive=pos, negative=neg, topn=cfg["k"])
print("ready", flush=True)
for line in sys.stdin:
    c = json.loads(line)
    t0 = time.perf_counter()
    r = run(c)
    out = {"s": time.perf_counter() - t0}
    if c.get("dump"):
        np.save(c["dump"] + "-ids.npy", np.asarray(r[0], dtype=np.int64))
        np.save(c["dump"] + "-scores.npy", np.asarray(r[1], dtype=np.float32))
    if mode.endswith("-ms"):
        out["r"] = [[k, float(v)] for k, v in r]
    print(json.dumps(out), flush=True)
"""


class Server:
    def __init__(self, pydir, mode, cfg, env=None):
        self.mode = mode
        self.p = subprocess.Popen([PY, "-c", SERVER, pydir, mode, json.dumps(cfg)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{mode}: the process did not start")

    def call(self, **c):
        self.p.stdin.write(json.dumps(c) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.mode}: the process died")
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def batch_runs(pydir, f, size, reps, tmp):
    """Figure 2: {(lib, metric): [seconds]}, and the answers' files."""
    n, dim = size["batch_table"]
    q = np.random.default_rng(5).standard_normal((size["batch"], dim), dtype=np.float32)
    qpath = os.path.join(tmp, "queries.npy")
    np.save(qpath, q)
    warm(f["batch"])
    warm(f["batch_npy"])
    cfg = {"k": K, "threads": 2, "queries": qpath}
    servers = {"embstore": Server(pydir, "embstore-batch", dict(cfg, table=f["batch"])),
               "faiss": Server(pydir, "faiss-batch", dict(cfg, base=f["batch_npy"]), env=peer_env())}
    runs, dumps = {}, {}
    try:
        for rep in range(reps + 1):  # the first: untimed, its answers kept
            for metric in ("l2", "dot"):
                libs = ("embstore", "faiss") if (rep + (metric == "dot")) % 2 == 0 else ("faiss", "embstore")
                for lib in libs:
                    dump = os.path.join(tmp, f"{lib}-{metric}") if rep == 0 else None
                    r = servers[lib].call(metric=metric, dump=dump)
                    if rep:
                        runs.setdefault((lib, metric), []).append(r["s"])
                    else:
                        dumps[(lib, metric)] = dump
                    time.sleep(size["pause"])
    finally:
        for s in servers.values():
            s.close()
    answers = {k: (np.load(v + "-ids.npy"), np.load(v + "-scores.npy")) for k, v in dumps.items()}
    return runs, answers, q


def check_batch(emb_mod, f, q, answers, size, checks):
    """embstore's ids against faiss's, differences checked in float64; the
    first queries' also against a float64 brute force."""
    t = emb_mod.open(f["batch"])
    out = {}
    qn = np.sqrt(np.einsum("ij,ij->i", q.astype(np.float64), q.astype(np.float64)))
    try:
        for metric in ("l2", "dot"):
            e_ids, e_scores = answers[("embstore", metric)]
            f_ids, f_scores = answers[("faiss", metric)]

            def exact(qi, a, b, metric=metric):
                ra, rb = t[a].astype(np.float64), t[b].astype(np.float64)
                q64 = q[qi].astype(np.float64)
                na, nb = np.linalg.norm(ra, axis=1), np.linalg.norm(rb, axis=1)
                if metric == "dot":
                    return ra @ q64, rb @ q64, 1e-5 * qn[qi] * np.maximum(na, nb)
                return (((ra - q64) ** 2).sum(1), ((rb - q64) ** 2).sum(1),
                        1e-5 * (qn[qi] ** 2 + np.maximum(na, nb) ** 2))

            d, u, ex = diff_ids(e_ids, f_ids, exact)
            # The first queries against float64 over every row.
            m = min(size["check_queries"], len(q))
            dots, norms = scan_float64(t, q[:m].astype(np.float64).T)
            s = dots if metric == "dot" else np.maximum(0, (qn[:m] ** 2)[None, :] + norms[:, None] - 2 * dots)
            order = np.argsort(-s if metric == "dot" else s, axis=0, kind="stable")[:K].T
            de, ue, exe = diff_ids(e_ids[:m], order, exact)
            df, uf, _ = diff_ids(f_ids[:m], order, exact)
            score_gap = float(np.max(np.abs(e_scores - f_scores) / np.maximum(1, np.abs(f_scores))))
            out[metric] = dict(differ=d, beyond=u, total=e_ids.size, m=m, e_exact=(de, ue), f_exact=(df, uf),
                               score_gap=score_gap)
            if u:
                checks.fail(f"figure 2, {metric}: embstore and faiss disagree beyond near-ties ({u} ids): {ex}")
            if ue:
                checks.fail(f"figure 2, {metric}: embstore and float64 NumPy disagree beyond near-ties: {exe}")
    finally:
        t.close()
    return out


def query_sets(emb_mod, path, count):
    """Deterministic query words: single words, and a + b - c analogies."""
    t = emb_mod.open(path)
    n = len(t)
    rng = random.Random(3)
    sets = []
    for i in range(count):
        ids = rng.sample(range(n), 3)
        keys = [t.key(j) for j in ids]
        sets.append([keys[:1], []] if i % 2 == 0 else [keys[:2], keys[2:]])
    t.close()
    return sets


def most_similar_runs(pydir, f, size, reps, queries):
    """Figure 3's timing: {lib: [seconds]}, {lib: [answers per query set]}."""
    for p in (f["ms_f32"], f["ms_bf16"], f["kv"] + ".vectors.npy"):
        warm(p)
    cfg = {"k": K, "queries": queries}
    emb = Server(pydir, "embstore-ms", dict(cfg, tables={"f32": f["ms_f32"], "bf16": f["ms_bf16"]}))
    gen = Server(pydir, "gensim-ms", dict(cfg, kv=f["kv"]), env=peer_env())
    calls = {"f32": lambda qi: emb.call(table="f32", q=qi), "bf16": lambda qi: emb.call(table="bf16", q=qi),
             "gensim": lambda qi: gen.call(q=qi)}
    runs = {k: [] for k in calls}
    answers = {k: [None] * len(queries) for k in calls}
    warmup = {}
    try:
        for lib, call in calls.items():  # untimed: gensim fills its norms here
            warmup[lib] = call(0)["s"]
            time.sleep(size["pause"])
        libs = list(calls)
        for rep in range(reps):
            for qi in range(len(queries)):
                turn = rep * len(queries) + qi
                for lib in libs[turn % 3:] + libs[:turn % 3]:  # each library first in turn
                    r = calls[lib](qi)
                    runs[lib].append(r["s"])
                    if answers[lib][qi] is None:
                        answers[lib][qi] = r["r"]
                    elif answers[lib][qi] != r["r"]:
                        raise RuntimeError(f"{lib} answered query {qi} differently on repetition {rep}")
                    time.sleep(size["pause"])
    finally:
        emb.close()
        gen.close()
    return runs, answers, warmup


def check_most_similar(emb_mod, f, queries, answers, checks):
    """embstore float32 against gensim (differences checked with float64
    cosines); bfloat16 against float32: how many of the top 10 agree."""
    t = emb_mod.open(f["ms_f32"])
    try:
        def mean_of(qi):
            pos, neg = queries[qi]
            rows = t[[*pos, *neg]].astype(np.float64)
            w = np.array([1.0] * len(pos) + [-1.0] * len(neg))
            m = (w[:, None] * rows / np.linalg.norm(rows, axis=1)[:, None]).sum(0) / len(w)
            return m / np.linalg.norm(m)

        means = [mean_of(qi) for qi in range(len(queries))]

        def cosines(qi, keys):
            rows = t[list(keys)].astype(np.float64)
            return rows @ means[qi] / np.linalg.norm(rows, axis=1)

        def exact(qi, a, b):
            return cosines(qi, a), cosines(qi, b), 2e-5

        index = {}

        def ids(lib):  # keys as ids, for diff_ids
            rows = []
            for ans in answers[lib]:
                rows.append([index.setdefault(k, len(index)) for k, _ in ans])
            return np.array(rows)

        e, g, b = ids("f32"), ids("gensim"), ids("bf16")
        key_of = {v: k for k, v in index.items()}
        d, u, ex = diff_ids(e, g, lambda qi, a, bb: exact(qi, [key_of[int(i)] for i in a],
                                                             [key_of[int(i)] for i in bb]))
        if u:
            checks.fail(f"figure 3: embstore and gensim most_similar disagree beyond near-ties ({u} keys): {ex}")
        gap = max(abs(s1 - s2) for x, y in zip(answers["f32"], answers["gensim"]) for (_, s1), (_, s2) in zip(x, y))
        overlap = [len({k for k, _ in x} & {k for k, _ in y}) for x, y in zip(answers["bf16"], answers["f32"])]
        same_order = sum(int(np.array_equal(x, y)) for x, y in zip(b, e))
    finally:
        t.close()
    return dict(differ=d, beyond=u, total=e.size, score_gap=gap, overlap=overlap, same_order=same_order)


# --- 3 and 4: memory -------------------------------------------------------------------------------

WORKER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
mode, path, cfg = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
out = {}
if mode == "embstore":
    import embstore
    t = embstore.open(path)
    out["most_similar"] = [t.most_similar(positive=p, negative=n, topn=10) for p, n in cfg["queries"]]
    if cfg.get("nearest"):
        ids, scores = t.nearest(t[cfg["nearest"]], 10, "l2")
        out["nearest"] = ids.tolist()
elif mode == "gensim":
    from gensim.models import KeyedVectors
    kv = KeyedVectors.load(path, mmap="r")
    out["most_similar"] = [kv.most_similar(positive=p, negative=n, topn=10) for p, n in cfg["queries"]]
elif mode == "bare":
    import embstore
elif mode == "gensim-bare":
    from gensim.models import KeyedVectors
print(json.dumps(out), flush=True)
print("ready", flush=True)
sys.stdin.read()
"""


def memory_of(pid, files):
    """PSS, private (Private_Clean + Private_Dirty) and the private bytes of
    the mappings of `files` (bytes), from /proc/PID/smaps."""
    files = {os.path.realpath(p) for p in files}
    roll = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3 and parts[0].endswith(":") and parts[1].isdigit():
                roll[parts[0][:-1]] = int(parts[1]) * 1024
    in_files, current = 0, None
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 5 and "-" in parts[0] and ":" not in parts[0]:  # a mapping's header line
                current = parts[5] if len(parts) >= 6 else None
            elif current in files and parts and parts[0] in ("Private_Clean:", "Private_Dirty:"):
                in_files += int(parts[1]) * 1024
    private = roll.get("Private_Clean", 0) + roll.get("Private_Dirty", 0)
    return dict(pss=pss_bytes(pid), private=private, file_private=in_files, own=private - in_files)


def pool(pydir, mode, path, n, cfg, files, env=None):
    """n workers at once; each one's answers and memory."""
    procs = [subprocess.Popen([PY, "-c", WORKER, pydir, mode, path, json.dumps(cfg)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    try:
        outs = [json.loads(p.stdout.readline() or "null") for p in procs]
        ready = [p.stdout.readline().strip() for p in procs]
        if ready != ["ready"] * n:
            raise RuntimeError(f"{mode} workers failed: {ready}")
        return outs, [memory_of(p.pid, files) for p in procs]
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait()


# --- the run --------------------------------------------------------------------------------------

def med(v):
    return statistics.median(v)


def ratio(a, b):
    """Median of the per-repetition ratios a[i] / b[i]."""
    return statistics.median(x / y for x, y in zip(a, b))


def main():
    a = args()
    size = QUICK if a.quick else FULL
    reps = a.reps
    build = os.path.abspath(a.build)
    emb = os.path.join(build, "embstore")
    binary = os.path.join(build, "tests", "bench", "nearest_bench")
    pydir = os.path.join(build, "python")
    base_dir = os.environ.get("EMBSTORE_BENCH_DIR", "/tmp")
    d = os.path.join(base_dir, "embstore-nearestbench-quick") if a.quick else base_dir
    sys.path.insert(0, pydir)
    import embstore  # noqa: E402

    t_start = time.perf_counter()
    f, made = make_files(emb, pydir, d, size)
    settle()  # the files' dirty pages written out (and, where allowed, the page cache emptied)
    checks = Checks()
    sizes = {k: os.path.getsize(f[k]) for k in ("big_f32", "big_bf16", "batch", "ms_f32", "ms_bf16")}
    sizes["kv"] = os.path.getsize(f["kv"]) + os.path.getsize(f["kv"] + ".vectors.npy")

    # 1. (the answers first: this also reads both tables into the page cache)
    print("checking figure 1's answers ...", file=sys.stderr, flush=True)
    check1 = check_one_query(embstore, {"float32": f["big_f32"], "bfloat16": f["big_bf16"]}, checks)
    one, ctx = one_query_rounds(binary, d, size, reps)

    # 2.
    with tempfile.TemporaryDirectory(dir=base_dir) as tmp:
        print("figure 2 ...", file=sys.stderr, flush=True)
        batch, answers2, q2 = batch_runs(pydir, f, size, reps, tmp)
        check2 = check_batch(embstore, f, q2, answers2, size, checks)

    # 3.
    print("figure 3 ...", file=sys.stderr, flush=True)
    queries = query_sets(embstore, f["ms_f32"], size["queries"])
    ms, answers3, ms_warmup = most_similar_runs(pydir, f, size, reps, queries)
    check3 = check_most_similar(embstore, f, queries, answers3, checks)
    mem3 = {}
    few = {"queries": queries[:3]}
    for name, mode, path, files, env in (
            ("embstore float32", "embstore", f["ms_f32"], [f["ms_f32"]], None),
            ("embstore bfloat16", "embstore", f["ms_bf16"], [f["ms_bf16"]], None),
            ("gensim", "gensim", f["kv"], [f["kv"] + ".vectors.npy"], peer_env())):
        outs, mems = pool(pydir, mode, path, 1, few, files, env)
        mem3[name] = mems[0]
        if mode == "gensim" or name == "embstore float32":  # a bare interpreter importing the library, alone
            bare3 = pool(pydir, "gensim-bare" if mode == "gensim" else "bare", path, 1, {}, files, env)[1][0]
            mem3[name]["bare"] = bare3
        want = answers3["bf16" if "bfloat16" in name else "gensim" if mode == "gensim" else "f32"][:3]
        if [[[k, s] for k, s in r] for r in outs[0]["most_similar"]] != want:
            checks.fail(f"figure 3, memory: a fresh {name} process answered differently from the timed one")

    # 4.
    print("figure 4 ...", file=sys.stderr, flush=True)
    w = size["workers"]
    near_ids = [0, 1, len(queries), 12345 % size["ms"][0]]
    outs4, mem4 = pool(pydir, "embstore", f["ms_f32"], w, {"queries": queries, "nearest": near_ids},
                       [f["ms_f32"]])
    _, bare4 = pool(pydir, "bare", f["ms_f32"], w, {}, [f["ms_f32"]])
    for i, o in enumerate(outs4):
        if o != outs4[0]:
            checks.fail(f"figure 4: worker {i} answered differently from worker 0")
    if [[[k, s] for k, s in r] for r in outs4[0]["most_similar"]] != answers3["f32"]:
        checks.fail("figure 4: the workers' most_similar answers differ from figure 3's")
    if [r[0] for r in outs4[0]["nearest"]] != near_ids:
        checks.fail(f"figure 4: a row's nearest (l2) is not itself: {outs4[0]['nearest']}")
    # ... and on the project's big table (50,257 x 12,288 float32), where 8
    # interpreters weigh less beside the table: each scans it whole.
    big_ids = [0, 1, 2, 3]
    outs4b, mem4b = pool(pydir, "embstore", f["big_f32"], w, {"queries": [], "nearest": big_ids}, [f["big_f32"]])
    for i, o in enumerate(outs4b):
        if o != outs4b[0] or [r[0] for r in o["nearest"]] != big_ids:
            checks.fail(f"figure 4 (big table): worker {i} answered differently, or a row's nearest is not itself")
    elapsed = time.perf_counter() - t_start

    # --- the report ------------------------------------------------------------------------------------
    ms_, gbs = 1e3, lambda nbytes, s: nbytes / s / GB
    print(f"machine: {ctx['num_cpus']} cpus @ {ctx['mhz_per_cpu']} MHz; {'QUICK (small sizes): ' if a.quick else ''}"
          f"medians of {reps}; {elapsed:.0f} s{' (files made in this run)' if made else ''}")

    def line(label, value, note=""):
        print(f"  {label:50s}{value}{'   ' + note if note else ''}")

    rows, dim = size["big"]
    big_gb = sizes["big_f32"] / GB
    print(f"1. one query, k = {K}, {rows:,} x {dim:,} ({big_gb:.2f} GB float32, {sizes['big_bf16'] / GB:.2f} GB "
          f"bfloat16), pages warm; Google Benchmark, {reps} interleaved rounds:")
    nbytes_f32, nbytes_bf16 = rows * dim * 4, rows * dim * 2
    fig = {}
    for th in (2, 1):
        s, f32, bf = one[f"BM_SumMapping/{th}"], one[f"BM_OneQueryF32/{th}/0"], one[f"BM_OneQueryBF16/{th}/0"]
        frac, speed = ratio(s, f32), ratio(f32, bf)
        fig[th] = (med(s), med(f32), med(bf), frac, speed)
        line(f"{th} thread{'s' if th > 1 else ''}: plain sum over the float32 mapping",
             f"{med(s) * ms_:8.2f} ms", f"{gbs(nbytes_f32, med(s)):6.2f} GB/s (the read bandwidth)")
        line("  nearest, float32, cosine", f"{med(f32) * ms_:8.2f} ms",
             f"{gbs(nbytes_f32, med(f32)):6.2f} GB/s = {frac:.0%} of the sum" + (" (target >= 80%)" if th == 2 else ""))
        line("  nearest, bfloat16, cosine", f"{med(bf) * ms_:8.2f} ms",
             f"{gbs(nbytes_bf16, med(bf)):6.2f} GB/s of bfloat16; {speed:.2f}x float32's speed"
             + (" (target >= 1.7x)" if th == 2 else ""))
    print("  metric, 2 threads (cosine computes each row's norm in the same pass):")
    metric_rows = {}
    for tag, label in (("F32", "float32"), ("BF16", "bfloat16")):
        c, dt, l2 = (one[f"BM_OneQuery{tag}/2/{m}"] for m in range(3))
        metric_rows[label] = (med(c), med(dt), med(l2), ratio(c, dt), ratio(l2, dt))
        line(f"  {label}: cosine / dot / l2",
             f"{med(c) * ms_:8.2f} / {med(dt) * ms_:.2f} / {med(l2) * ms_:.2f} ms",
             f"cosine = {ratio(c, dt):.3f}x dot, l2 = {ratio(l2, dt):.3f}x dot")
    for lne in check1:
        print("  check: " + lne)

    bn, bdim = size["batch_table"]
    nb = size["batch"]
    print(f"2. a batch of {nb:,} queries, k = {K}, over {bn:,} x {bdim} float32 ({sizes['batch'] / MB:.0f} MB), "
          f"2 threads, medians of {reps} (target: embstore <= faiss):")
    fig2 = {}
    for metric in ("l2", "dot"):
        e, fa = batch[("embstore", metric)], batch[("faiss", metric)]
        fig2[metric] = (med(e), med(fa), ratio(e, fa))
        c = check2[metric]
        line(f"{metric}: embstore t.nearest(threads=2)", f"{med(e) * ms_:8.1f} ms",
             f"{ratio(e, fa):.2f}x faiss's time ({ratio(fa, e):.2f}x its speed)")
        line(f"{metric}: faiss.knn, omp_set_num_threads(2)", f"{med(fa) * ms_:8.1f} ms")
        line("  ids differing from faiss's", f"{c['differ']:8d} of {c['total']:,}",
             f"{c['beyond']} beyond near-ties; scores differ by at most {c['score_gap']:.2g} (relative)")
        line(f"  first {c['m']} queries vs float64 NumPy",
             f"embstore {c['e_exact'][0]} ids differ ({c['e_exact'][1]} beyond near-ties), "
             f"faiss {c['f_exact'][0]} ({c['f_exact'][1]})")
    print("  extra: the C++ Google Benchmark, 1,024 queries over the same table, 2 threads (BM_Batch1024):")
    cpp_batch = {}
    for m, name in ((0, "cosine"), (1, "dot"), (2, "l2")):
        v = one[f"BM_Batch1024/2/{m}"]
        cpp_batch[name] = med(v)
        py = f"; Python t.nearest = {med(batch[('embstore', name)]) / med(v):.3f}x" \
            if nb == 1024 and ("embstore", name) in batch else ""
        line(f"  {name}", f"{med(v) * ms_:8.1f} ms", py.lstrip("; "))

    n3, d3 = size["ms"]
    g, e32, e16 = ms["gensim"], ms["f32"], ms["bf16"]
    print(f"3. most_similar, topn = {K}, {n3:,} x {d3} with keys ({sizes['ms_f32'] / MB:,.0f} MB float32), "
          f"{len(queries)} query sets (single words and a + b - c) x {reps}, pages warm:")
    line("gensim KeyedVectors.most_similar (mmap='r')", f"{med(g) * ms_:8.1f} ms",
         f"its first call (filling the norms): {ms_warmup['gensim'] * ms_:.0f} ms")
    line("embstore float32 t.most_similar", f"{med(e32) * ms_:8.1f} ms",
         f"{ratio(g, e32):.2f}x gensim's speed (target >= 1x)")
    line("embstore bfloat16 t.most_similar", f"{med(e16) * ms_:8.1f} ms",
         f"{ratio(g, e16):.2f}x gensim's speed (target >= 1.7x); {ratio(e32, e16):.2f}x float32's")
    line("  keys differing, embstore float32 vs gensim", f"{check3['differ']:8d} of {check3['total']}",
         f"{check3['beyond']} beyond near-ties; similarities differ by at most {check3['score_gap']:.2g}")
    ov = check3["overlap"]
    line("  bfloat16 vs float32: top-10 keys in common", f"{sum(ov) / len(ov):8.1f} of {K}",
         f"per query set {ov}; same keys in the same order for {check3['same_order']} of {len(ov)}")
    print("  memory of a fresh process that opened the table and answered 3 queries (one at a time):")
    for name, m in mem3.items():
        line(f"  {name}", f"PSS {m['pss'] / MB:8.1f} MB",
             f"private {m['private'] / MB:7.1f} MB, of which the table file's pages {m['file_private'] / MB:7.1f} MB: "
             f"its own {m['own'] / MB:6.1f} MB")
    own_ratio = mem3["embstore float32"]["own"] / mem3["gensim"]["own"]
    line("  embstore float32's own private memory", f"{own_ratio:8.2f}x gensim's",
         "(target: a small fraction)")
    for name, lib in (("embstore float32", "numpy + embstore"), ("gensim", "gensim")):
        m, b = mem3[name], mem3[name]["bare"]
        line(f"  a bare interpreter importing {lib}", f"PSS {b['pss'] / MB:8.1f} MB",
             f"private {b['own'] / MB:6.1f} MB; {name} beyond it: own private {(m['own'] - b['own']) / MB:.1f} MB")

    pss4 = sum(m["pss"] for m in mem4)
    bare_pss = sum(m["pss"] for m in bare4)
    file4 = sizes["ms_f32"]
    priv4 = statistics.mean(m["own"] for m in mem4)
    bare_priv = statistics.mean(m["own"] for m in bare4)
    print(f"4. {w} processes, each answering {len(queries)} most_similar and a nearest query of "
          f"{len(near_ids)} rows on the {n3:,} x {d3} float32 table ({file4 / MB:,.0f} MB):")
    line("PSS sum", f"{pss4 / MB:8.1f} MB", f"{pss4 / file4:.3f}x the file (target <= 1.1x)")
    line(f"{w} bare interpreters (numpy + embstore)", f"{bare_pss / MB:8.1f} MB",
         f"private {bare_priv / MB:.1f} MB per process")
    line("beyond them", f"{(pss4 - bare_pss) / MB:8.1f} MB",
         f"{(pss4 - bare_pss) / file4:.3f}x the file; private beyond them "
         f"{(priv4 - bare_priv) / MB:.1f} MB per process")

    pss4b = sum(m["pss"] for m in mem4b)
    file4b = sizes["big_f32"]
    print(f"   the same on the {size['big'][0]:,} x {size['big'][1]:,} float32 table ({file4b / MB:,.0f} MB), "
          f"each process a nearest query of {len(big_ids)} rows (a whole scan):")
    line("PSS sum", f"{pss4b / MB:8.1f} MB", f"{pss4b / file4b:.3f}x the file (target <= 1.1x)")
    line("beyond the bare interpreters", f"{(pss4b - bare_pss) / MB:8.1f} MB",
         f"{(pss4b - bare_pss) / file4b:.3f}x the file")

    # The markdown table, for tests/bench/RESULTS.md.
    s2, f2, b2, frac2, sp2 = fig[2]
    s1, f1, b1, frac1, sp1 = fig[1]
    print()
    print("| what | embstore | baseline, same run | target |")
    print("|---|---|---|---|")
    print(f"| one query over {rows:,} x {dim:,} float32 ({big_gb:.2f} GB), 2 threads | {f2 * ms_:.1f} ms, "
          f"{gbs(nbytes_f32, f2):.2f} GB/s | a plain AVX-512 sum over the same mapping: {s2 * ms_:.1f} ms, "
          f"{gbs(nbytes_f32, s2):.2f} GB/s: **{frac2:.0%}** | >= 80% |")
    print(f"| the same, bfloat16 table | {b2 * ms_:.1f} ms | float32 {f2 * ms_:.1f} ms: **{sp2:.2f}x** its speed "
          "| >= 1.7x |")
    print(f"| the same, 1 thread | float32 {f1 * ms_:.1f} ms ({frac1:.0%} of the sum, {s1 * ms_:.1f} ms); "
          f"bfloat16 {b1 * ms_:.1f} ms ({sp1:.2f}x) | | |")
    for label, (c, dt, l2, cr, lr) in metric_rows.items():
        print(f"| one query, {label}, 2 threads: cosine / dot / l2 | {c * ms_:.1f} / {dt * ms_:.1f} / "
              f"{l2 * ms_:.1f} ms | cosine {cr:.3f}x dot, l2 {lr:.3f}x dot | norms in the same pass or stored |")
    for metric in ("l2", "dot"):
        e, fa, r = fig2[metric]
        c = check2[metric]
        print(f"| {nb:,} queries over {bn:,} x {bdim} float32, {metric}, 2 threads (`t.nearest`) | "
              f"{e * ms_:.0f} ms | `faiss.knn` {fa * ms_:.0f} ms: **{r:.2f}x** its time; {c['differ']} of "
              f"{c['total']:,} ids differ ({c['beyond']} beyond near-ties) | <= faiss |")
    print(f"| `most_similar`, {n3:,} x {d3} float32 | {med(e32) * ms_:.1f} ms | gensim 4.2 (mmap='r') "
          f"{med(g) * ms_:.1f} ms: embstore **{ratio(g, e32):.2f}x** its speed; {check3['differ']} of "
          f"{check3['total']} keys differ | >= 1x |")
    print(f"| the same, bfloat16 table | {med(e16) * ms_:.1f} ms | **{ratio(g, e16):.2f}x** gensim's speed; "
          f"{sum(ov) / len(ov):.1f} of the top 10 as float32's | >= 1.7x |")
    print(f"| memory of one process after 3 queries | PSS {mem3['embstore float32']['pss'] / MB:.0f} MB, own private "
          f"{mem3['embstore float32']['own'] / MB:.1f} MB | gensim: PSS {mem3['gensim']['pss'] / MB:.0f} MB, own "
          f"private {mem3['gensim']['own'] / MB:.1f} MB: **{own_ratio:.2f}x**; beyond a bare interpreter importing "
          f"each library: {(mem3['embstore float32']['own'] - mem3['embstore float32']['bare']['own']) / MB:.1f} MB "
          f"and {(mem3['gensim']['own'] - mem3['gensim']['bare']['own']) / MB:.1f} MB | a small fraction |")
    print(f"| {w} processes answering queries on the {file4 / MB:,.0f} MB table | PSS sum {pss4 / MB:,.0f} MB = "
          f"**{pss4 / file4:.3f}x** the file | {w} bare interpreters: {bare_pss / MB:.0f} MB; beyond them "
          f"{(pss4 - bare_pss) / MB:,.0f} MB = {(pss4 - bare_pss) / file4:.3f}x | <= 1.1x |")
    print(f"| {w} processes scanning the {file4b / MB:,.0f} MB table ({size['big'][0]:,} x {size['big'][1]:,}) | "
          f"PSS sum {pss4b / MB:,.0f} MB = **{pss4b / file4b:.3f}x** the file | beyond {w} bare interpreters "
          f"{(pss4b - bare_pss) / MB:,.0f} MB = {(pss4b - bare_pss) / file4b:.3f}x | <= 1.1x |")
    print()
    print("raw runs (s):", json.dumps({"one_query": {k: [round(x, 6) for x in v] for k, v in one.items()},
                                      "batch": {f"{k[0]} {k[1]}": [round(x, 5) for x in v] for k, v in batch.items()},
                                      "most_similar": {k: [round(x, 5) for x in v] for k, v in ms.items()}}))
    if checks.failures:
        sys.exit("FAILED: " + "; ".join(checks.failures))


if __name__ == "__main__":
    main()

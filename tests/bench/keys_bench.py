#!/usr/bin/python3
"""Keys inside tables: every figure of issue 17 beside its baseline, in one
run.

    /usr/bin/python3 tests/bench/keys_bench.py [BUILD_DIR] [--reps N] [--keys N] [--import-keys N]
                     [--dim D] [--lookups M] [--workers W] [--pss-big] [--no-big-import]

A synthetic vocabulary made here (deterministic): word-like keys of 2 to 20
characters (lengths peaked at 6-7 with a Zipf-like tail, letters at English
frequencies; about 18% capitalized, 5% word2vec-style phrases "a_b", 2%
numbers, 5% non-ASCII: accented Latin, Cyrillic, Greek, CJK), each with D
(default 300) random float32 values, written as a word2vec binary file and
imported into a table. Two vocabularies: the big one (--keys, default
3,000,000: a 3.6 GB table) and the import one (--import-keys, default
300,000: the size issue 17 measured gensim at). Prints medians of N
repetitions (default 5) and ratios:
  1. open (target <= 1 ms at any size): C++ TableReader::Open of the big
     keyed table, of a table of the same shape without keys (embstore
     generate) and of a 3 x 4 keyed one, and open + a first Find
     (tests/bench/keys_bench, Google Benchmark; each iteration also
     closes, i.e. unmaps, as half_bench's do); Python embstore.open of
     the same (open alone), of the 300,000-key table, and open + a first
     t.index(k);
     baseline gensim KeyedVectors.load(mmap='r') of the same vocabularies
     (issue 17: 76 ms for 300,000 keys);
  2. key -> row (target <= 1 us from C++, a small multiple of a dict from
     Python), random existing keys over the big table and missing ones
     (existing + "~"): C++ KeysView::Find against std::unordered_map<
     std::string, uint32_t> of the same keys in memory, ns per lookup;
     Python t.index(k), t.key_to_index[k], k in t, t[k] (a float32 copy of
     the row) and t.array[t.index(k)] (a view) against d[k] for a dict d of
     the same keys and gensim kv.key_to_index[k], k in kv, kv[k] (a view
     into its mapped vectors), ns per op over M (default 1,000,000) keys,
     the Python loop included (its cost alone is printed);
  3. import of a word2vec binary file (target >= 5x gensim), 300,000 x 300,
     warm page cache (flushed and dropped, then the file read once):
     `embstore import F.bin -o T.emb --no-fsync -f` and with fsync (the
     whole command), embstore.import_table(fsync=False) and gensim
     load_word2vec_format(binary=True) into memory (both timed inside a
     fresh interpreter, imports not timed; issue 17: 1.14 s); MB/s of the
     .bin; and embstore alone on the big file (--no-big-import: skip);
  4. memory (target: PSS sum <= 1.1x the file): W = 8 processes each open
     the 300,000-key table (--pss-big: the big one) and look every key up
     (embstore: t.index(t.key(i)) == i; gensim: KeyedVectors.load(mmap='r')
     then kv.key_to_index[k] for each k of kv.index_to_key), then wait
     while /proc/PID/smaps_rollup is read for all of them: sum of PSS
     against the files, and private memory (Private_Clean + Private_Dirty)
     per process; beside 8 bare interpreters that only import the library.
Each case's answers are checked against the others (same ids, same rows);
a disagreement fails the run.

Files, made once in $EMBSTORE_BENCH_DIR (default /tmp) and reused when
present (delete them to remake): embstore-keysbench-NxD.bin (word2vec
binary), .emb (imported, keys), -nokeys.emb (big only), .kv and
.kv.vectors.npy (gensim's save of load_word2vec_format), and the 3 x 4
table. Disk: about 4.9 x the table size for the big vocabulary (3,000,000 x
300: .bin, .emb, -nokeys.emb and gensim's .npy at 3.6 GB each, plus 3.6 GB
while the big import is timed: about 18 GB) and 5 x 0.36 GB for the import
one: about 20 GB in all. Memory: gensim's loads and 8 gensim processes need
a few GB (about 15 GB with --pss-big). Needs python3-gensim and numpy.
Quick check at small sizes (under a minute):
    /usr/bin/python3 tests/bench/keys_bench.py build --keys 100000 --import-keys 30000 --lookups 100000 --reps 1
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

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from generate_bench import settle  # noqa: E402  (flush, drop caches)
from procmem import pss_bytes  # noqa: E402

PY = "/usr/bin/python3"
MB = 1e6


def args():
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?", default="build")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--keys", type=int, default=3_000_000, help="the big vocabulary (open, lookups)")
    p.add_argument("--import-keys", type=int, default=300_000, help="the import (and memory) vocabulary")
    p.add_argument("--dim", type=int, default=300)
    p.add_argument("--lookups", type=int, default=1_000_000, help="random keys per Python lookup loop")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--pss-big", action="store_true", help="memory figure on the big table")
    p.add_argument("--no-big-import", action="store_true", help="skip timing the import of the big file")
    return p.parse_args()


# --- the vocabulary -----------------------------------------------------------------------------

LATIN = "etaoinshrdlcumwfgypbvkjxqz"
LATIN_W = (12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5,
           1.0, 0.8, 0.15, 0.15, 0.1, 0.07)
ACCENTED = "éèêëàâäçîïôöûüùñßøåæœ"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыьэюя"
GREEK = "αβγδεζηθικλμνξοπρστυφχψω"
CJK = "日本語中文字的一是不了人我在有他这为之大来以个上们"
LENGTHS = list(range(2, 21))
LENGTH_W = [n - 1 if n <= 7 else 6 * (7 / n) ** 4 for n in LENGTHS]  # rises to 7, then a Zipf-like tail


def vocabulary(n, seed=17):
    """n distinct word-like keys (no space, newline or "~")."""
    rng = random.Random(seed)
    cum = []
    for w in LENGTH_W:
        cum.append((cum[-1] if cum else 0) + w)
    cum_latin = []
    for w in LATIN_W:
        cum_latin.append((cum_latin[-1] if cum_latin else 0) + w)

    def word(length):
        return "".join(rng.choices(LATIN, cum_weights=cum_latin, k=length))

    seen, keys = set(), []
    while len(keys) < n:
        length = rng.choices(LENGTHS, cum_weights=cum)[0]
        r = rng.random()
        if r < 0.03:  # accented Latin
            w = list(word(length))
            w[rng.randrange(length)] = rng.choice(ACCENTED)
            for i in range(length):
                if rng.random() < 0.15:
                    w[i] = rng.choice(ACCENTED)
            k = "".join(w)
        elif r < 0.04:
            k = "".join(rng.choices(CYRILLIC, k=length))
        elif r < 0.045:
            k = "".join(rng.choices(GREEK, k=length))
        elif r < 0.05:
            k = "".join(rng.choices(CJK, k=2 + length % 3))
        elif r < 0.10 and length >= 5:  # a phrase, as word2vec joins them
            a = word((length - 1) // 2)
            k = a + "_" + word(length - 1 - len(a))
        elif r < 0.12:
            k = "".join(rng.choices("0123456789", k=min(length, 8)))
        elif r < 0.30:
            k = word(length).capitalize()
        else:
            k = word(length)
        if k not in seen:
            seen.add(k)
            keys.append(k)
    return keys


def write_bin(path, keys, dim, seed):
    """word2vec binary: "N D\\n", then each record "key " + D little-endian float32 + "\\n"."""
    rng = np.random.default_rng(seed)
    part = path + ".part"
    with open(part, "wb") as f:
        f.write(f"{len(keys)} {dim}\n".encode())
        for s in range(0, len(keys), 65536):
            chunk = keys[s:s + 65536]
            v = rng.standard_normal((len(chunk), dim), dtype=np.float32).astype("<f4")
            f.write(b"".join(k.encode() + b" " + row.tobytes() + b"\n" for k, row in zip(chunk, v)))
    os.rename(part, path)


GENSIM_SAVE = r"""
import os, sys
from gensim.models import KeyedVectors
src, dst = sys.argv[1], sys.argv[2]
kv = KeyedVectors.load_word2vec_format(src, binary=True)
kv.save(dst + ".part", separately=["vectors"])  # the vectors in their own .npy, which load(mmap='r') maps
os.rename(dst + ".part.vectors.npy", dst + ".vectors.npy")
os.rename(dst + ".part", dst)
"""


def dataset(emb, d, n, dim, plain=False):
    """The files of one vocabulary, made if absent."""
    base = os.path.join(d, f"embstore-keysbench-{n}x{dim}")
    f = {"bin": base + ".bin", "emb": base + ".emb", "kv": base + ".kv"}
    if plain:
        f["plain"] = base + "-nokeys.emb"
    if not os.path.exists(f["bin"]):
        print(f"making {f['bin']} ...", file=sys.stderr, flush=True)
        write_bin(f["bin"], vocabulary(n), dim, seed=n)
    if not os.path.exists(f["emb"]):
        subprocess.run([emb, "import", f["bin"], "-o", f["emb"], "--no-fsync", "-q", "-f"], check=True)
    if plain and not os.path.exists(f["plain"]):
        subprocess.run([emb, "generate", "--rows", str(n), "--dim", str(dim), "--seed", "7", "--no-fsync",
                        "-o", f["plain"]], check=True, stdout=subprocess.DEVNULL)
    if not os.path.exists(f["kv"]):
        print(f"making {f['kv']} (gensim) ...", file=sys.stderr, flush=True)
        subprocess.run([PY, "-c", GENSIM_SAVE, f["bin"], f["kv"]], check=True)
    return f


def warm(path):
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


# --- 1. open, from Python ---------------------------------------------------------------------------

OPEN = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
import embstore
from gensim.models import KeyedVectors
cfg = json.loads(sys.argv[2])
out = {}
first = {}
for name, p in cfg["emb"].items():  # untimed once: the header pages in the page cache
    t = embstore.open(p)
    if t.has_keys:
        first[name] = t.key(len(t) // 2)
    t.close()
for _ in range(cfg["emb_reps"]):
    for name, p in cfg["emb"].items():
        t0 = time.perf_counter()
        t = embstore.open(p)
        t1 = time.perf_counter()
        t.close()
        out.setdefault("open " + name, []).append(t1 - t0)
    for name, k in first.items():
        t0 = time.perf_counter()
        t = embstore.open(cfg["emb"][name])
        i = t.index(k)
        t1 = time.perf_counter()
        t.close()
        out.setdefault("open+index " + name, []).append(t1 - t0)
for name, p in cfg["kv"].items():  # untimed once: the pickle in the page cache
    kv = KeyedVectors.load(p, mmap="r")
    del kv
    gc.collect()
for _ in range(cfg["reps"]):
    for name, p in cfg["kv"].items():
        t0 = time.perf_counter()
        kv = KeyedVectors.load(p, mmap="r")
        t1 = time.perf_counter()
        out.setdefault("gensim " + name, []).append(t1 - t0)
        del kv
        gc.collect()
print(json.dumps(out))
"""


# --- 2. lookups, from Python ------------------------------------------------------------------------

LOOKUP = r"""
import gc, json, random, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import embstore
from gensim.models import KeyedVectors
table, kv_path, m, reps = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
t = embstore.open(table)
kv = KeyedVectors.load(kv_path, mmap="r")
n = len(t)
if len(kv) != n:
    sys.exit(f"gensim has {len(kv)} keys, the table {n}")
nbytes = nchars = non_ascii = 0
for i in range(n):
    k = t.key(i)
    b = len(k.encode())
    nbytes += b
    nchars += len(k)
    non_ascii += b != len(k)
d = {t.key(i): i for i in range(n)}
rng = random.Random(1)
ids = [rng.randrange(n) for _ in range(m)]
keys = [t.key(i) for i in ids]
missing = [k + "~" for k in keys]
a = t.array
for j in range(min(m, 20000)):  # every case answers alike
    k, i = keys[j], ids[j]
    if not (d[k] == t.index(k) == t.key_to_index[k] == kv.key_to_index[k] == i and kv.index_to_key[i] == k
            and k in t and missing[j] not in t and missing[j] not in d and missing[j] not in kv):
        sys.exit(f"cases disagree on key {k!r} (row {i})")
    if j < 1000 and not (np.array_equal(t[k], kv[k]) and np.array_equal(a[t.index(k)], kv[k])):
        sys.exit(f"rows differ for key {k!r}")

def loop(keys):
    for k in keys: pass
def dict_get(keys, d=d):
    for k in keys: d[k]
def dict_in(keys, d=d):
    for k in keys: k in d
def t_index(keys, t=t):
    for k in keys: t.index(k)
def t_view(keys, v=t.key_to_index):
    for k in keys: v[k]
def t_in(keys, t=t):
    for k in keys: k in t
def t_row(keys, t=t):
    for k in keys: t[k]
def t_row_view(keys, t=t, a=a):
    for k in keys: a[t.index(k)]
def g_index(keys, kv=kv):
    for k in keys: kv.key_to_index[k]
def g_in_dict(keys, kv=kv):
    for k in keys: k in kv.key_to_index
def g_in(keys, kv=kv):
    for k in keys: k in kv
def g_row(keys, kv=kv):
    for k in keys: kv[k]
def t_key(ids, t=t):
    for i in ids: t.key(i)
def g_key(ids, kv=kv):
    for i in ids: kv.index_to_key[i]

cases = [("loop", loop, keys), ("d[k]", dict_get, keys), ("t.index(k)", t_index, keys),
         ("t.key_to_index[k]", t_view, keys), ("kv.key_to_index[k]", g_index, keys),
         ("k in d", dict_in, keys), ("k in t", t_in, keys), ("k in kv.key_to_index", g_in_dict, keys),
         ("k in kv", g_in, keys), ("t[k]", t_row, keys), ("t.array[t.index(k)]", t_row_view, keys),
         ("kv[k]", g_row, keys), ("missing k in d", dict_in, missing), ("missing k in t", t_in, missing),
         ("missing k in kv.key_to_index", g_in_dict, missing), ("missing k in kv", g_in, missing),
         ("t.key(i)", t_key, ids), ("kv.index_to_key[i]", g_key, ids)]
out = {}
for _ in range(reps):  # the cases alternate, so the machine's drift hits them alike
    for name, fn, arg in cases:
        gc.collect()
        t0 = time.perf_counter_ns()
        fn(arg)
        out.setdefault(name, []).append((time.perf_counter_ns() - t0) / len(arg))
print(json.dumps({"cases": out, "stats": {"keys": n, "mean_bytes": nbytes / n, "mean_chars": nchars / n,
                                          "non_ascii": non_ascii / n}}))
"""


# --- 3. import ------------------------------------------------------------------------------------

GENSIM_LOAD_BIN = r"""
import sys, time
from gensim.models import KeyedVectors
t = time.perf_counter()
kv = KeyedVectors.load_word2vec_format(sys.argv[1], binary=True)
print(time.perf_counter() - t, len(kv))
"""

EMBSTORE_IMPORT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import embstore
t = time.perf_counter()
embstore.import_table(sys.argv[2], sys.argv[3], force=True, fsync=False)
print(time.perf_counter() - t)
"""


def settled_warm(src):
    """Dirty pages flushed and the page cache dropped (settle), then the
    source read once: every run starts from the same warm state."""
    settle()
    warm(src)


def time_command(cmd, src):
    settled_warm(src)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def time_inside(cmd, src):
    settled_warm(src)
    return float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()[0])


def import_runs(emb, pydir, f, reps, big):
    out = f["emb"][:-4] + "-import.emb"
    runs = {k: [] for k in ("cli", "cli_fsync", "python", "gensim", "big")}
    try:
        for _ in range(reps):
            runs["cli"].append(time_command([emb, "import", f["bin"], "-o", out, "--no-fsync", "-f", "-q"], f["bin"]))
            os.remove(out)
            runs["cli_fsync"].append(time_command([emb, "import", f["bin"], "-o", out, "-f", "-q"], f["bin"]))
            os.remove(out)
            runs["python"].append(time_inside([PY, "-c", EMBSTORE_IMPORT, pydir, f["bin"], out], f["bin"]))
            os.remove(out)
            runs["gensim"].append(time_inside([PY, "-c", GENSIM_LOAD_BIN, f["bin"]], f["bin"]))
        if big:
            big_out = big["emb"][:-4] + "-import.emb"
            try:
                for _ in range(reps):
                    runs["big"].append(time_command([emb, "import", big["bin"], "-o", big_out, "--no-fsync", "-f",
                                                     "-q"], big["bin"]))
                    os.remove(big_out)
            finally:
                if os.path.exists(big_out):
                    os.remove(big_out)
    finally:
        if os.path.exists(out):
            os.remove(out)
    settle()
    return runs


# --- 4. memory ------------------------------------------------------------------------------------

WORKER = r"""
import sys
sys.path.insert(0, sys.argv[1])
mode, path = sys.argv[2], sys.argv[3]
if mode == "embstore":
    import embstore
    t = embstore.open(path)
    for i in range(len(t)):
        if t.index(t.key(i)) != i:
            sys.exit(f"row {i}: its key is found at another row")
elif mode == "gensim":
    from gensim.models import KeyedVectors
    kv = KeyedVectors.load(path, mmap="r")
    k2i = kv.key_to_index
    for i, k in enumerate(kv.index_to_key):
        if k2i[k] != i:
            sys.exit(f"row {i}: its key is found at another row")
elif mode == "embstore-bare":
    import embstore
elif mode == "gensim-bare":
    from gensim.models import KeyedVectors
print("ready", flush=True)
sys.stdin.read()
"""


def rollup(pid):
    """Pss, Private_Clean + Private_Dirty (bytes) of a process."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) * 1024
    return fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)


def pool(pydir, mode, path, n):
    """n workers; (sum of PSS, mean private bytes, seconds until all were ready)."""
    t = time.perf_counter()
    procs = [subprocess.Popen([PY, "-c", WORKER, pydir, mode, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(n)]
    try:
        ready = [p.stdout.readline().strip() for p in procs]
        elapsed = time.perf_counter() - t
        if ready != ["ready"] * n:
            raise RuntimeError(f"{mode} workers failed: {ready}")
        pss = sum(pss_bytes(p.pid) for p in procs)
        private = statistics.mean(rollup(p.pid) for p in procs)
        return pss, private, elapsed
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait()


# --- the run --------------------------------------------------------------------------------------

def main():
    a = args()
    build = os.path.abspath(a.build)
    emb = os.path.join(build, "embstore")
    gbench = os.path.join(build, "tests", "bench", "keys_bench")
    pydir = os.path.join(build, "python")
    d = os.environ.get("EMBSTORE_BENCH_DIR", "/tmp")
    reps, dim = a.reps, a.dim

    big = dataset(emb, d, a.keys, dim, plain=True)
    small = dataset(emb, d, a.import_keys, dim)
    tiny_bin = os.path.join(d, "embstore-keysbench-3x4.bin")
    tiny = os.path.join(d, "embstore-keysbench-3x4.emb")
    if not os.path.exists(tiny):
        write_bin(tiny_bin, ["king", "queen", "reine"], 4, seed=3)
        subprocess.run([emb, "import", tiny_bin, "-o", tiny, "--no-fsync", "-q", "-f"], check=True)
        os.remove(tiny_bin)
    table_bytes = os.path.getsize(big["emb"])

    # 2 (and 1) from C++: Google Benchmark, the big table warm.
    warm(big["emb"])
    env = dict(os.environ, EMBSTORE_KEYS_BENCH_SHAPE=f"{a.keys}x{dim}", EMBSTORE_BENCH_DIR=d)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([gbench, f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true",
                        f"--benchmark_out={out.name}", "--benchmark_out_format=json"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        data = json.load(open(out.name))
    unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
    # ns; with --reps 1 Google Benchmark reports the one run and no aggregates.
    cc = {b["run_name"]: b["real_time"] * unit[b["time_unit"]] for b in data["benchmarks"]
          if b.get("aggregate_name") == "median" or (reps == 1 and b.get("run_type") == "iteration")}

    # 1 from Python.
    cfg = {"emb": {"big": big["emb"], "plain": big["plain"], "small": small["emb"], "tiny": tiny},
           "kv": {"big": big["kv"], "small": small["kv"]}, "reps": reps, "emb_reps": max(51, 10 * reps)}
    r = subprocess.run([PY, "-c", OPEN, pydir, json.dumps(cfg)], check=True, capture_output=True, text=True)
    opens = {k: statistics.median(v) for k, v in json.loads(r.stdout).items()}  # seconds

    # 2 from Python.
    r = subprocess.run([PY, "-c", LOOKUP, pydir, big["emb"], big["kv"], str(a.lookups), str(reps)], check=True,
                       capture_output=True, text=True)
    lk = json.loads(r.stdout)
    py = {k: statistics.median(v) for k, v in lk["cases"].items()}  # ns per op
    stats = lk["stats"]

    # 3.
    imp = import_runs(emb, pydir, small, reps, None if a.no_big_import else big)
    mi = {k: statistics.median(v) for k, v in imp.items() if v}

    # 4.
    mem_set = big if a.pss_big else small
    mem_keys = a.keys if a.pss_big else a.import_keys
    mem = {mode: pool(pydir, mode, mem_set["emb"] if mode.startswith("embstore") else mem_set["kv"], a.workers)
           for mode in ("embstore", "embstore-bare", "gensim", "gensim-bare")}

    # The report.
    ctx = data["context"]
    print(f"machine: {ctx['num_cpus']} cpus @ {ctx['mhz_per_cpu']} MHz; medians of {reps}")
    print(f"vocabulary: {a.keys:,} keys x {dim} float32 ({table_bytes / 1e9:.2f} GB table); keys of 2-20 characters, "
          f"mean {stats['mean_chars']:.1f} characters / {stats['mean_bytes']:.1f} UTF-8 bytes, "
          f"{stats['non_ascii']:.1%} non-ASCII")

    def line(label, value, note=""):
        print(f"  {label:46s}{value}{'   ' + note if note else ''}")

    def us(ns):
        return f"{ns / 1e3:9.1f} us"

    print("1. open (target <= 1 ms at any size):")
    ok, pk, tk, of = cc["BM_OpenKeyed"], cc["BM_OpenNoKeys"], cc["BM_OpenTiny"], cc["BM_OpenFindFirst"]
    line(f"C++ TableReader::Open, {a.keys:,} keys", us(ok), f"{ok / pk:.2f}x the same shape without keys")
    line("C++ same shape, no keys", us(pk))
    line("C++ 3 x 4 keyed table", us(tk), f"the {a.keys:,}-key table = {ok / tk:.2f}x")
    line("C++ open + first Find", us(of))
    ob, op, osm, ot = (opens["open " + k] * 1e9 for k in ("big", "plain", "small", "tiny"))
    gb, gs = opens["gensim big"], opens["gensim small"]
    line(f"Python embstore.open, {a.keys:,} keys", us(ob), f"{ob / op:.2f}x without keys")
    line("Python embstore.open, same shape, no keys", us(op))
    line(f"Python embstore.open, {a.import_keys:,} keys", us(osm))
    line("Python embstore.open, 3 x 4", us(ot))
    line(f"Python open + first t.index(k), {a.keys:,} keys", us(opens["open+index big"] * 1e9))
    line(f"gensim load(mmap='r'), {a.keys:,} keys", f"{gb * 1e3:9.1f} ms", f"{gb * 1e9 / ob:,.0f}x embstore.open")
    line(f"gensim load(mmap='r'), {a.import_keys:,} keys", f"{gs * 1e3:9.1f} ms",
         f"{gs * 1e9 / osm:,.0f}x embstore.open (issue 17: 76 ms for 300,000)")

    print(f"2. key -> row, random keys of the {a.keys:,}-key table (target <= 1000 ns from C++):")
    fe, fm, um, umm = (cc[k] for k in ("BM_FindExisting", "BM_FindMissing", "BM_UnorderedMapExisting",
                                       "BM_UnorderedMapMissing"))
    line("C++ KeysView::Find, existing keys", f"{fe:9.1f} ns", f"{fe / um:.2f}x unordered_map")
    line("C++ unordered_map<string, uint32_t>, existing", f"{um:9.1f} ns")
    line("C++ KeysView::Find, missing keys", f"{fm:9.1f} ns", f"{fm / umm:.2f}x unordered_map")
    line("C++ unordered_map, missing keys", f"{umm:9.1f} ns")
    line("C++ Find + row(id)[0]", f"{cc['BM_FindRow']:9.1f} ns")
    line("C++ KeysView::Key(id), random ids", f"{cc['BM_KeyOfId']:9.1f} ns")
    print(f"  Python, ns per op over {a.lookups:,} random keys (the bare loop: {py['loop']:.1f} ns, included):")
    base = {"d[k]": None, "t.index(k)": ("d[k]", "kv.key_to_index[k]"),
            "t.key_to_index[k]": ("d[k]", "kv.key_to_index[k]"), "kv.key_to_index[k]": ("d[k]",),
            "k in d": None, "k in t": ("k in d", "k in kv"), "k in kv.key_to_index": ("k in d",),
            "k in kv": ("k in d",), "t[k]": ("kv[k]",), "t.array[t.index(k)]": ("kv[k]",), "kv[k]": None,
            "missing k in d": None, "missing k in t": ("missing k in d", "missing k in kv"),
            "missing k in kv.key_to_index": ("missing k in d",), "missing k in kv": ("missing k in d",),
            "t.key(i)": ("kv.index_to_key[i]",), "kv.index_to_key[i]": None}
    notes = {"t[k]": "  (a float32 copy of the row)", "t.array[t.index(k)]": "  (a view)",
             "kv[k]": "  (a view of gensim's mapped vectors)"}
    for name, against in base.items():
        ratios = "   ".join(f"{py[name] / py[b]:5.2f}x {b}" for b in against) if against else ""
        line("  " + name, f"{py[name]:9.1f} ns", ratios + notes.get(name, ""))

    size_mb = os.path.getsize(small["bin"]) / MB
    g = mi["gensim"]
    print(f"3. import of word2vec binary, {a.import_keys:,} x {dim} ({size_mb:,.0f} MB), warm page cache "
          "(target >= 5x gensim):")
    line("gensim load_word2vec_format(binary=True)", f"{g:9.3f} s", f"{size_mb / g:6.0f} MB/s   (issue 17: 1.14 s "
         "for 300,000 x 300)")
    for k, what in (("cli", "embstore import --no-fsync"), ("cli_fsync", "embstore import (fsync)"),
                    ("python", "embstore.import_table(fsync=False)")):
        line(what, f"{mi[k]:9.3f} s", f"{size_mb / mi[k]:6.0f} MB/s   {g / mi[k]:5.1f}x gensim")
    if "big" in mi:
        big_mb = os.path.getsize(big["bin"]) / MB
        line(f"embstore import --no-fsync, {a.keys:,} x {dim}", f"{mi['big']:9.3f} s",
             f"{big_mb / mi['big']:6.0f} MB/s   ({big_mb:,.0f} MB)")

    emb_file = os.path.getsize(mem_set["emb"])
    kv_files = os.path.getsize(mem_set["kv"]) + os.path.getsize(mem_set["kv"] + ".vectors.npy")
    print(f"4. memory: {a.workers} processes, each looking up every key of the {mem_keys:,}-key table "
          "(target: PSS sum <= 1.1x the file):")
    for mode, files, what in (("embstore", emb_file, "the .emb"), ("gensim", kv_files, ".kv + .vectors.npy")):
        pss, private, t = mem[mode]
        bpss, bprivate, _ = mem[mode + "-bare"]
        print(f"  {mode:8s}  PSS sum {pss / MB:8.1f} MB = {pss / files:5.3f}x {what} ({files / MB:,.0f} MB); "
              f"private {private / MB:6.1f} MB per process; all ready in {t:.2f} s")
        print(f"  {'':8s}  bare interpreters importing {mode}: PSS sum {bpss / MB:6.1f} MB, private "
              f"{bprivate / MB:5.1f} MB per process; beyond them: {(pss - bpss) / MB:7.1f} MB, "
              f"{(private - bprivate) / MB:6.1f} MB per process")
    print("raw runs:", json.dumps({"import": {k: [round(x, 3) for x in v] for k, v in imp.items() if v},
                                   "open_s": {k: round(v, 6) for k, v in opens.items()}}))


if __name__ == "__main__":
    main()

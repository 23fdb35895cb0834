#!/usr/bin/python3
"""Half-precision tables: every figure of issue 16 beside its baseline, in
one run.

    /usr/bin/python3 tests/bench/half_bench.py [BUILD_DIR] [--reps N]

Prints medians of N repetitions (default 3) and ratios:
  - generation of 50,257 x 12,288 bfloat16 (1.24 GB) into warm memory:
    embstore (build/tests/bench/half_bench, Google Benchmark) against
    PyTorch's own bfloat16 normal_ on an allocated, touched tensor, and a
    memset of the same bytes; float16 likewise;
  - to a file: `embstore generate --dtype bfloat16` against writing the same
    number of zero bytes (dd), without and with fsync;
  - gather of 4,096 random rows of a 50,257 x 768 half table into float32
    against a memcpy of the float32 output bytes;
  - open of the 1.24 GB table against a 48-byte one;
  - the .embz ratio of a generated 10,000 x 768 bfloat16 (and float16)
    table against zstd and byte-shuffle + zstd (the zstd command line) on
    the same row bytes.
Needs about 4 GB free in $EMBSTORE_BENCH_DIR (default /tmp) and python3-torch.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate_bench import settle, timed  # noqa: E402  (flush, drop caches; time a command)

ROWS, DIM = 50257, 12288
NBYTES = ROWS * DIM * 2
PY = "/usr/bin/python3"


def args():
    build, reps = "build", 3
    rest = sys.argv[1:]
    while rest:
        a = rest.pop(0)
        if a == "--reps":
            reps = int(rest.pop(0))
        else:
            build = a
    return build, reps


def write_zeros(path, fsync):
    mib = NBYTES // (1 << 20)
    settle()
    t = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "status=none",
                    *(["conv=fsync"] if fsync else [])], check=True)
    with open(path, "ab") as f:
        f.write(b"\0" * (NBYTES - mib * (1 << 20)))
        if fsync:
            os.fsync(f.fileno())
    return time.perf_counter() - t


TORCH_WARM = r"""
import sys, time, torch
dt = getattr(torch, sys.argv[2])
w = torch.empty(%d, %d, dtype=dt); w.zero_()
out = []
for _ in range(int(sys.argv[1])):
    torch.manual_seed(123)
    t = time.perf_counter(); w.normal_(); out.append(time.perf_counter() - t)
print(out)
""" % (ROWS, DIM)


def zstd_size(data, level, tmp):
    src = os.path.join(tmp, "z.bin")
    with open(src, "wb") as f:
        f.write(data)
    out = subprocess.run(["zstd", f"-{level}", "-q", "-c", "-T1", src], check=True, capture_output=True).stdout
    return len(out)


def embz_ratios(emb, tmp):
    lines = []
    for dtype in ("bfloat16", "float16"):
        t = os.path.join(tmp, f"r-{dtype}.emb")
        subprocess.run([emb, "generate", "--rows", "10000", "--dim", "768", "--seed", "123", "--dtype", dtype,
                        "--no-fsync", "-o", t], check=True)
        rows = subprocess.run([emb, "get", t, "0:10000", "--raw"], check=True, capture_output=True).stdout
        lo, hi = rows[0::2], rows[1::2]
        n = len(rows)
        for level in (3, 19):
            z = os.path.join(tmp, f"r-{dtype}-{level}.embz")
            subprocess.run([emb, "compress", t, "-o", z, "--level", str(level), "-q", "--no-fsync"], check=True)
            # The .embz holds the whole table file: compare it with the file, and the others with the rows.
            embz = os.path.getsize(t) / os.path.getsize(z)
            plain = n / zstd_size(rows, level, tmp)
            shuffled = n / zstd_size(hi + lo, level, tmp)
            lines.append(f"  {dtype:8s} -{level:<2d}  .embz {embz:.4f}   zstd {plain:.4f}   byte-shuffle + zstd "
                         f"{shuffled:.4f}")
    return lines


def main():
    build, reps = args()
    emb = os.path.join(build, "embstore")
    gbench = os.path.join(build, "tests", "bench", "half_bench")
    d = os.environ.get("EMBSTORE_BENCH_DIR", "/tmp")
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        ratio_lines = embz_ratios(emb, tmp)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([gbench, f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true",
                        f"--benchmark_out={out.name}", "--benchmark_out_format=json"], check=True,
                       stdout=subprocess.DEVNULL)
        data = json.load(open(out.name))
    med = {b["run_name"]: b for b in data["benchmarks"] if b.get("aggregate_name") == "median"}

    def sec(name):
        return med[name]["real_time"] / 1e3 if med[name]["time_unit"] == "ms" else med[name]["real_time"] / 1e9

    def gbps(name):
        return med[name]["bytes_per_second"] / 1e9

    torch_runs = {}
    for dt in ("bfloat16", "float16"):
        r = subprocess.run([PY, "-c", TORCH_WARM, str(reps), dt], check=True, capture_output=True, text=True).stdout
        torch_runs[dt] = statistics.median(json.loads(r))

    f = os.path.join(d, "embstore-halfbench.emb")
    z = os.path.join(d, "embstore-halfbench.zero")
    runs = {k: [] for k in ("gen", "zero", "gen_sync", "zero_sync")}
    try:
        for _ in range(reps):
            base = [emb, "generate", "--rows", str(ROWS), "--dim", str(DIM), "--seed", "123", "--dtype", "bfloat16"]
            runs["gen"].append(timed(base + ["--no-fsync", "-o", f]))
            os.remove(f)
            runs["zero"].append(write_zeros(z, False))
            os.remove(z)
            runs["gen_sync"].append(timed(base + ["-o", f]))
            os.remove(f)
            runs["zero_sync"].append(write_zeros(z, True))
            os.remove(z)
    finally:
        for p in (f, z):
            if os.path.exists(p):
                os.remove(p)
    m = {k: statistics.median(v) for k, v in runs.items()}

    ctx = data["context"]
    tb, tf = torch_runs["bfloat16"], torch_runs["float16"]
    g1, g2, gf = sec("BM_GenerateHalfWarm/1/3/real_time"), sec("BM_GenerateHalfWarm/2/3/real_time"), \
        sec("BM_GenerateHalfWarm/2/2/real_time")
    memset = sec("BM_MemsetHalfFloor/real_time")
    print(f"machine: {ctx['num_cpus']} cpus @ {ctx['mhz_per_cpu']} MHz; 50,257 x 12,288 half (1.24 GB); medians of {reps}")
    print("into warm memory:")
    print(f"  PyTorch bfloat16 normal_            {tb:7.3f} s")
    print(f"  embstore bfloat16, 1 thread         {g1:7.3f} s   {tb / g1:5.1f}x PyTorch")
    print(f"  embstore bfloat16, 2 threads        {g2:7.3f} s   {tb / g2:5.1f}x PyTorch (target >= 20x)")
    print(f"  PyTorch float16 normal_             {tf:7.3f} s")
    print(f"  embstore float16, 2 threads         {gf:7.3f} s   {tf / gf:5.1f}x PyTorch")
    print(f"  memset of the same bytes (floor)    {memset:7.3f} s   embstore bfloat16 = {g2 / memset:.2f}x the floor")
    print("to a file (page cache dropped before each run):")
    print(f"  embstore generate --no-fsync        {m['gen']:7.3f} s   {m['gen'] / m['zero']:.2f}x zeros (target <= 1.2x)")
    print(f"  dd of as many zero bytes            {m['zero']:7.3f} s")
    print(f"  embstore generate (fsync)           {m['gen_sync']:7.3f} s   {m['gen_sync'] / m['zero_sync']:.2f}x zeros")
    print(f"  dd of zero bytes + fsync            {m['zero_sync']:7.3f} s")
    print("gather of 4,096 random rows into float32, warm (memcpy: as many bytes from the same mapping):")
    for dim, what in ((12288, "1.24 GB table, 201 MB out"), (768, "50,257 x 768, 12.6 MB out")):
        mc = gbps(f"BM_MemcpyFloat32Out/{dim}")
        print(f"  {what}: memcpy {mc:.2f} GB/s")
        for dt, arg in (("bfloat16", 3), ("float16", 2)):
            name = f"BM_GatherHalfToFloat32/{arg}/{dim}"
            if name in med:
                g = gbps(name)
                print(f"    {dt:8s} -> float32    {g:6.2f} GB/s of output   {g / mc:.0%} of memcpy (target >= 80%)")
        g = gbps(f"BM_GatherHalfStored/3/{dim}")
        print(f"    bfloat16 as stored   {g:6.2f} GB/s            {2 * g / mc:.0%} of memcpy per row")
    print(f"  memcpy of 12.6 MB from a cached buffer: {gbps('BM_MemcpyFloat32OutCached'):.2f} GB/s")
    ob, of, osm = (med[k]["real_time"] for k in ("BM_OpenHalfBig", "BM_OpenFloat32SameBytes", "BM_OpenHalfSmall"))
    print(f"open: 1.24 GB bfloat16 table {ob / 1e3:.1f} us; 1.24 GB float32 table {of / 1e3:.1f} us ({ob / of:.2f}x); "
          f"48-byte bfloat16 table {osm / 1e3:.1f} us")
    print(".embz ratio (table bytes / compressed bytes; zstd command line on the row bytes):")
    for line in ratio_lines:
        print(line)
    print("raw runs:", json.dumps({k: [round(x, 3) for x in v] for k, v in runs.items()}))


if __name__ == "__main__":
    main()

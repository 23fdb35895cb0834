#!/usr/bin/python3
"""embstore compress / decompress next to the zstd command line, on the same
files, in one run.

    /usr/bin/python3 tests/bench/compress_bench.py [BUILD_DIR] [--reps N] [--slow]

Tables: 50,257 x 768 from `embstore generate` (PyTorch normal init), and the
same shape with uniform(-0.1, 0.1) init (not Gaussian). Ratios per level for
embstore, plain zstd, and zstd on byte-shuffled floats (made with NumPy);
speeds (medians of N, default 5, each after a warm-up run) on a 50,257 x 3,072
table, 2 threads, with fresh outputs and no fsync on either side, next to
`cp` of the uncompressed table (the cost of writing its bytes at all); and
one row from a cold frame (build/tests/bench/embz_bench).
--slow adds level 19, and times byte-shuffle + zstd -19 -T2 against embstore
on the same 50,257 x 768 table (over a minute).

Files go to $EMBSTORE_BENCH_DIR, default /dev/shm where it exists: a disk's
own noise (this machine's ext4 is mounted with discard) would otherwise
drown both tools' figures. With a disk directory, every timed run is
preceded by sync and a pause.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy

ROWS, DIM = 50257, 768


def args():
    """The build folder (default build) and the options."""
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?", default="build")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--slow", action="store_true")
    a = p.parse_args()
    return a.build, a.reps, a.slow


def timed(cmd, out, quiet_disk):
    """Runs cmd with its output file absent. On a disk, the previous output's
    trims and dirty pages are flushed first. Inputs stay in the page cache
    for every tool."""
    if os.path.exists(out):
        os.remove(out)
    if quiet_disk:
        subprocess.run(["sync"], check=True)
        time.sleep(2)
        subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    build, reps, slow = args()
    emb = os.path.join(build, "embstore")
    where = os.environ.get("EMBSTORE_BENCH_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else "/tmp")
    d = tempfile.mkdtemp(dir=where)
    quiet_disk = subprocess.run(["stat", "-f", "-c", "%T", d], capture_output=True, text=True).stdout.strip() != "tmpfs"
    try:
        tables = {}
        for name, init in (("normal", []), ("uniform", ["--init", "uniform", "--low", "-0.1", "--high", "0.1"])):
            path = os.path.join(d, name + ".emb")
            subprocess.run([emb, "generate", "--rows", str(ROWS), "--dim", str(DIM), "--seed", "7", *init,
                            "--no-fsync", "-o", path], check=True)
            tables[name] = path
        size = os.path.getsize(tables["normal"])
        levels = [1, 3, 9] + ([19] if slow else [])
        print(f"tables: {ROWS:,} x {DIM} float32, {size:,} bytes each; {os.cpu_count()} cpus; medians of {reps}")
        print(f"files in {where} ({'a disk: sync and a pause before each timed run' if quiet_disk else 'tmpfs'})")
        print("ratio (original / compressed):")
        print(f"  {'level':>5}  {'embstore':>9} {'zstd':>9} {'shuffle+zstd':>13}   (normal)   {'embstore':>9} {'zstd':>9}   (uniform)")
        t19 = None
        for level in levels:
            row = []
            for name in ("normal", "uniform"):
                src = tables[name]
                z = os.path.join(d, "t.embz")
                subprocess.run([emb, "compress", src, "-o", z, "-f", f"-{level}", "--no-fsync"], check=True)
                r_emb = size / os.path.getsize(z)
                subprocess.run(["zstd", "-q", "-f", f"-{level}", "-T2", src, "-o", z + ".zst"], check=True)
                r_zstd = size / os.path.getsize(z + ".zst")
                row += [r_emb, r_zstd]
                if name == "normal":
                    raw = numpy.fromfile(src, dtype=numpy.uint8)
                    shuffled = os.path.join(d, "shuffled.bin")
                    raw.reshape(-1, 4).T.copy().tofile(shuffled)  # byte planes, the usual float filter
                    t = timed(["zstd", "-q", "-f", f"-{level}", "-T2", shuffled, "-o", shuffled + ".zst"],
                              shuffled + ".zst", quiet_disk)
                    if level == 19:
                        t19 = t
                    row.append(size / os.path.getsize(shuffled + ".zst"))
            print(f"  {level:>5}  {row[0]:9.4f} {row[1]:9.4f} {row[2]:13.4f}              {row[3]:9.4f} {row[4]:9.4f}")
        if t19 is not None:
            z = os.path.join(d, "t.embz")
            tc = statistics.median(timed([emb, "compress", tables["normal"], "-o", z, "-T", "2", "--no-fsync"], z,
                                         quiet_disk) for _ in range(reps))
            print(f"on the {size:,}-byte normal table: byte-shuffle + zstd -19 -T2 {t19:.1f} s (shuffling not counted), "
                  f"embstore compress -3 -T2 {tc:.3f} s: {t19 / tc:.0f}x faster")

        # Speed on a 4x wider table (617 MB), so process start-up is noise.
        src = os.path.join(d, "wide.emb")
        subprocess.run([emb, "generate", "--rows", str(ROWS), "--dim", str(4 * DIM), "--seed", "7", "--no-fsync",
                        "-o", src], check=True)
        size = os.path.getsize(src)
        z, zz = os.path.join(d, "s.embz"), os.path.join(d, "s.zst")
        back, zback = os.path.join(d, "back.emb"), os.path.join(d, "back.zst.out")
        copy = os.path.join(d, "copy.emb")
        cmds = {"c": ([emb, "compress", src, "-o", z, "-T", "2", "--no-fsync"], z),
                "zc": (["zstd", "-q", "-3", "-T2", src, "-o", zz], zz),
                "d": ([emb, "decompress", z, "-o", back, "-T", "2", "--no-fsync"], back),
                "zd": (["zstd", "-q", "-d", zz, "-o", zback], zback),
                "cp": (["cp", src, copy], copy)}
        # Each command's runs back to back, after one warm-up run that is not
        # counted: with the tools interleaved, every one of them was erratic
        # on this machine (cp of the same file: 0.36 to 1.33 s).
        runs = {}
        for k, (cmd, out) in cmds.items():
            timed(cmd, out, quiet_disk)
            runs[k] = [timed(cmd, out, quiet_disk) for _ in range(reps)]
        same = open(back, "rb").read() == open(src, "rb").read()
        m = {k: statistics.median(v) for k, v in runs.items()}
        gb = size / 1e9
        print(f"speed on {ROWS:,} x {4 * DIM} ({size:,} bytes), 2 threads, level 3 (process wall time, fresh output, no fsync):")
        print(f"  embstore compress     {m['c']:.3f} s  {gb / m['c']:5.2f} GB/s   (target >= 1 GB/s)")
        print(f"  zstd -3 -T2           {m['zc']:.3f} s  {gb / m['zc']:5.2f} GB/s   embstore {m['zc'] / m['c']:.1f}x faster")
        print(f"  embstore decompress   {m['d']:.3f} s  {gb / m['d']:5.2f} GB/s   (target >= 2 GB/s), byte-identical: {same}")
        print(f"  zstd -d               {m['zd']:.3f} s  {gb / m['zd']:5.2f} GB/s   embstore {m['zd'] / m['d']:.1f}x faster")
        print(f"  cp of the .emb        {m['cp']:.3f} s  {gb / m['cp']:5.2f} GB/s   embstore decompress takes {m['d'] / m['cp']:.2f}x its time")
        out = subprocess.run([os.path.join(build, "tests", "bench", "embz_bench"), "--benchmark_format=json",
                              f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true"],
                             check=True, capture_output=True, text=True, env=dict(os.environ, EMBSTORE_BENCH_DIR=d)).stdout
        med = {b["run_name"]: b for b in json.loads(out)["benchmarks"] if b.get("aggregate_name") == "median"}
        cold = med["BM_EmbzColdRow"]
        print(f"one row from a cold frame: {cold['real_time']:.0f} us median ({cold.get('label', '')}; target <= 200 us)")
        first = med["BM_EmbzFirstRowOfBlock"]
        print(f"one row from a block this reader has not checked yet: {first['real_time']:.0f} us median "
              f"({first.get('label', '')}: every frame of it decoded and hashed)")
        print("raw speed runs:", json.dumps({k: [round(x, 3) for x in v] for k, v in runs.items()}))
    finally:
        subprocess.run(["rm", "-rf", d], check=True)


if __name__ == "__main__":
    main()

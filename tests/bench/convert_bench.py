#!/usr/bin/python3
"""Import and export of a 50,257 x 12,288 .npy (2.47 GB) next to numpy.load +
numpy.save of the same array, in one run.

    /usr/bin/python3 tests/bench/convert_bench.py [BUILD_DIR] [--reps N] [--rows R] [--dim D]

The .npy is written by NumPy (numpy.save of the table's rows). Timed, medians
of N (default 3), no fsync on either side, each run after a sync and a pause
(the disk of this machine is noisy), files in $EMBSTORE_BENCH_DIR (default
/tmp), inputs in the page cache:
  - embstore import t.npy -o t.emb     (checksums every block, and the source)
  - embstore export t.emb -o back.npy
  - numpy.load(t.npy) then numpy.save(np.npy, a), inside one Python process
    (the interpreter's start-up not counted)
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy


def args():
    """The build folder (default build) and the options."""
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?", default="build")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rows", type=int, default=50257)
    p.add_argument("--dim", type=int, default=12288)
    a = p.parse_args()
    return a.build, a.reps, a.rows, a.dim


def quiet():
    subprocess.run(["sync"], check=True)
    time.sleep(2)
    subprocess.run(["sync"], check=True)


def timed(cmd, out):
    if os.path.exists(out):
        os.remove(out)
    quiet()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    build, reps, rows, dim = args()
    emb = os.path.join(build, "embstore")
    d = tempfile.mkdtemp(dir=os.environ.get("EMBSTORE_BENCH_DIR", "/tmp"))
    try:
        src = os.path.join(d, "gen.emb")
        subprocess.run([emb, "generate", "--rows", str(rows), "--dim", str(dim), "--seed", "7", "--no-fsync",
                        "-o", src], check=True)
        npy = os.path.join(d, "t.npy")
        raw = numpy.memmap(src, dtype="<f4", mode="r", offset=os.path.getsize(src) - rows * dim * 4, shape=(rows, dim))
        numpy.save(npy, raw)
        del raw
        os.remove(src)
        size = os.path.getsize(npy)
        emb_out, back, np_out = os.path.join(d, "t.emb"), os.path.join(d, "back.npy"), os.path.join(d, "np.npy")
        runs = {"import": [], "export": [], "load": [], "save": []}
        for _ in range(reps):
            runs["import"].append(timed([emb, "import", npy, "-o", emb_out, "--no-fsync", "-q"], emb_out))
            runs["export"].append(timed([emb, "export", emb_out, "-o", back, "--no-fsync", "-q"], back))
            if os.path.exists(np_out):
                os.remove(np_out)
            quiet()
            code = ("import numpy, time, sys\n"
                    "t = time.perf_counter(); a = numpy.load(sys.argv[1]); l = time.perf_counter() - t\n"
                    "t = time.perf_counter(); numpy.save(sys.argv[2], a); s = time.perf_counter() - t\n"
                    "print(l, s)\n")
            out = subprocess.run([sys.executable, "-c", code, npy, np_out], check=True, capture_output=True,
                                 text=True).stdout.split()
            runs["load"].append(float(out[0]))
            runs["save"].append(float(out[1]))
        same = open(back, "rb").read() == open(np_out, "rb").read()
        m = {k: statistics.median(v) for k, v in runs.items()}
        gb = size / 1e9
        print(f".npy of {rows:,} x {dim:,} float32 ({gb:.2f} GB), medians of {reps}, no fsync:")
        print(f"  embstore import          {m['import']:.3f} s  {gb / m['import']:.2f} GB/s")
        print(f"  numpy.load               {m['load']:.3f} s  {gb / m['load']:.2f} GB/s   import is "
              f"{m['load'] / m['import']:.2f}x its speed")
        print(f"  embstore export (.npy)   {m['export']:.3f} s  {gb / m['export']:.2f} GB/s")
        print(f"  numpy.save               {m['save']:.3f} s  {gb / m['save']:.2f} GB/s   export is "
              f"{m['save'] / m['export']:.2f}x its speed")
        print(f"  round trip: embstore {m['import'] + m['export']:.3f} s, numpy {m['load'] + m['save']:.3f} s "
              f"({(m['load'] + m['save']) / (m['import'] + m['export']):.2f}x); the two exports are byte-identical: {same}")
        print("  raw runs:", {k: [round(x, 3) for x in v] for k, v in runs.items()})
    finally:
        subprocess.run(["rm", "-rf", d], check=True)


if __name__ == "__main__":
    main()

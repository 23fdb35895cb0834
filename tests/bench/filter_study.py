#!/usr/bin/python3
"""The measurements behind the .embz float filter (FORMAT.md, ".embz frames").

    /usr/bin/python3 tests/bench/filter_study.py [BUILD_DIR] [--rows N] [--dim D]

On a table from `embstore generate` (default 50,257 x 768, PyTorch normal
init), compares whole-table ratios (original / compressed) of:
  - plain zstd, and zstd after byte-shuffle and after bit-shuffle (blocks of
    8,192 floats, as the bitshuffle library does);
  - the split filter: the exponent byte of every float entropy-coded, the
    sign and mantissa (24 bits) stored as they are; the exponent stream
    through zstd at several levels and advanced parameters (minimum match
    length, hash and search logs, no matches at all), and through embstore's
    rANS (a real `embstore compress`);
  - the order-0 entropy limit of the split.
Every zstd run is the zstd command line on the stream written by NumPy.
"""

import argparse
import os
import subprocess
import tempfile

import numpy


def args():
    """The build folder (default build) and the options."""
    p = argparse.ArgumentParser()
    p.add_argument("build", nargs="?", default="build")
    p.add_argument("--rows", type=int, default=50257)
    p.add_argument("--dim", type=int, default=768)
    a = p.parse_args()
    return a.build, a.rows, a.dim


def zstd_size(path, *opts):
    out = path + ".zst"
    subprocess.run(["zstd", "-q", "-f", "-T2", *opts, path, "-o", out], check=True)
    size = os.path.getsize(out)
    os.remove(out)
    return size


def main():
    build, rows, dim = args()
    emb = os.path.join(build, "embstore")
    d = tempfile.mkdtemp(dir=os.environ.get("EMBSTORE_BENCH_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"))
    try:
        table = os.path.join(d, "t.emb")
        subprocess.run([emb, "generate", "--rows", str(rows), "--dim", str(dim), "--seed", "7", "--no-fsync",
                        "-o", table], check=True)
        raw = numpy.fromfile(table, dtype=numpy.uint8)
        data_offset = raw.size - rows * dim * 4
        floats = raw[data_offset:]
        n = floats.size
        print(f"table: {rows:,} x {dim} float32 (PyTorch normal init), {n:,} bytes of rows; ratio = original / compressed")

        def dump(name, array):
            path = os.path.join(d, name)
            numpy.ascontiguousarray(array).tofile(path)
            return path

        plain = dump("plain.bin", floats)
        shuffled = dump("shuffle.bin", floats.reshape(-1, 4).T)
        block = 8192
        whole = (n // 4) // block * block
        bits = numpy.unpackbits(floats[:whole * 4].reshape(-1, block, 4), axis=2, bitorder="little")
        bitshuffled = numpy.packbits(bits.transpose(0, 2, 1), axis=2, bitorder="little")
        del bits
        bitshuf = dump("bitshuffle.bin", numpy.concatenate([bitshuffled.ravel(), floats[whole * 4:]]))
        del bitshuffled
        print("whole floats:")
        for label, path in (("zstd", plain), ("byte-shuffle + zstd", shuffled), ("bit-shuffle + zstd", bitshuf)):
            print(f"  {label:24}" + "".join(f"  -{lv}: {n / zstd_size(path, f'-{lv}'):.4f}" for lv in (1, 3, 19)))

        u = floats.view("<u4")
        exps = (u >> 23).astype(numpy.uint8)
        rest = n // 4 * 3  # sign + mantissa, stored raw
        counts = numpy.bincount(exps, minlength=256)
        p = counts[counts > 0] / exps.size
        entropy_bits = float(-(p * numpy.log2(p)).sum())
        sign_mant = numpy.unique((u >> 31).astype(numpy.uint8), return_counts=True)[1] / exps.size
        print(f"split: exponent byte entropy {entropy_bits:.3f} bits (sign+exponent "
              f"{entropy_bits + float(-(sign_mant * numpy.log2(sign_mant)).sum()):.3f}); mantissa bits stored raw")
        print(f"  order-0 limit of the split                  {n / (rest + exps.size * entropy_bits / 8):.4f}")
        e = dump("exps.bin", exps)
        variants = [
            ("zstd -1", ["-1"]),
            ("zstd -3", ["-3"]),
            ("zstd -19", ["-19"]),
            ("zstd -3, minMatch 7", ["-3", "--zstd=mml=7"]),
            ("zstd -19, minMatch 7", ["-19", "--zstd=mml=7"]),
            ("zstd -3, hashLog 12, searchLog 1", ["-3", "--zstd=hlog=12,slog=1"]),
            ("zstd -1, minMatch 7, targetLength 1", ["-1", "--zstd=mml=7,tlen=1"]),
            ("zstd --ultra -22", ["--ultra", "-22"]),
        ]
        for label, opts in variants:
            print(f"  exponents through {label:36} {n / (rest + zstd_size(e, *opts)):.4f}")
        z = os.path.join(d, "t.embz")
        subprocess.run([emb, "compress", table, "-o", z, "--no-fsync"], check=True)
        print(f"  exponents through rANS (embstore compress, whole file) {os.path.getsize(table) / os.path.getsize(z):.4f}")
    finally:
        subprocess.run(["rm", "-rf", d], check=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes tests/golden/torch_vectors.json: PyTorch's own tables, as bits.

    /usr/bin/python3 tests/golden/make_torch_vectors.py > tests/golden/torch_vectors.json

Needs Debian's python3-torch. Each kernel runs in its own child process with
ATEN_CPU_CAPABILITY set before torch loads: "avx2" (what x86-64 PyTorch uses
by default) and "default" (PyTorch's scalar kernel). Small tables are stored
whole; larger ones as SHA-256 plus sampled elements (first, around block and
tail boundaries, last). float16 and bfloat16 cases carry "dtype" and 16-bit
words; the others are float32.
"""

import hashlib
import json
import os
import subprocess
import sys

# (rows, dim, seed, init, a, b): a, b = mean, std or low, high.
CASES = [
    (6, 4, 123, "normal", 0.0, 1.0),
    (1, 1, 5, "normal", 0.0, 1.0),
    (1, 3, 123, "normal", 0.0, 1.0),
    (3, 5, 42, "normal", 0.0, 1.0),
    (1, 15, 7, "normal", 0.0, 1.0),
    (4, 4, 0, "normal", 0.0, 1.0),
    (1, 17, 123, "normal", 0.0, 1.0),
    (5, 7, 2**32 + 123, "normal", 0.0, 1.0),
    (9, 9, -1, "normal", 0.0, 1.0),
    (31, 3, 2024, "normal", 0.5, 0.02),
    (2, 7, 11, "normal", -3.0, 2.5),
    (64, 33, 99, "normal", 1e-05, 3.0),
    (1000, 64, 0, "normal", 0.0, 1.0),
    (257, 3, 123, "normal", 0.0, 1.0),
    (50257, 768, 123, "normal", 0.0, 1.0),
    (4, 1, 123, "uniform", -0.3, 0.3),
    (3, 5, 42, "uniform", 0.0, 1.0),
    (17, 3, 7, "uniform", -1.0, 2.0),
    (100, 100, 2**40 + 5, "uniform", -0.05, 0.05),
    (1, 1, 1, "uniform", 2.0, 2.0),
]
CASES = [c + ("float32",) for c in CASES]
# PyTorch's half paths: the serial path, tails, (mean, std) where its AVX2
# and DEFAULT builds differ for float16, uniform, and a 50257 x 768 table.
for dt in ("float16", "bfloat16"):
    CASES += [
        (6, 4, 123, "normal", 0.0, 1.0, dt),
        (1, 3, 123, "normal", 0.0, 1.0, dt),
        (1, 15, 7, "normal", -3.0, 7.0, dt),
        (1, 17, 123, "normal", 0.0, 1.0, dt),
        (5, 7, 2**32 + 123, "normal", 0.0, 1.0, dt),
        (31, 3, 2024, "normal", 0.5, 0.02, dt),
        (64, 33, 99, "normal", -3.0, 7.0, dt),
        (1000, 64, 0, "normal", 0.0, 1.0, dt),
        (50257, 768, 123, "normal", 0.0, 1.0, dt),
        (4, 1, 123, "uniform", -0.3, 0.3, dt),
        (100, 100, 2**40 + 5, "uniform", -0.05, 0.05, dt),
    ]

CHILD = r"""
import hashlib, json, sys, torch
out = []
for rows, dim, seed, init, a, b, dt in json.loads(sys.argv[1]):
    torch.manual_seed(seed)
    w = torch.empty(rows, dim, dtype=getattr(torch, dt))
    if init == "normal":
        w.normal_(a, b)
    else:
        w.uniform_(a, b)
    if dt == "float32":
        raw = w.contiguous().numpy().astype("<f4").tobytes()
    else:
        raw = w.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    out.append(raw.hex())
print(json.dumps(out))
"""


def words(hexstr, size):
    b = bytes.fromhex(hexstr)
    return [("%0" + str(2 * size) + "x") % int.from_bytes(b[i:i + size], "little") for i in range(0, len(b), size)]


def main():
    results = []
    for kernel, capability in (("avx2", "avx2"), ("scalar", "default")):
        env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
        tables = json.loads(subprocess.run([sys.executable, "-c", CHILD, json.dumps(CASES)], env=env, check=True,
                                           capture_output=True, text=True).stdout)
        for (rows, dim, seed, init, a, b, dt), hexstr in zip(CASES, tables):
            w = words(hexstr, 4 if dt == "float32" else 2)
            n = rows * dim
            entry = {
                "name": f"{kernel} {'' if dt == 'float32' else dt + ' '}{init}({a}, {b}) {rows}x{dim} seed {seed}",
                "rows": rows, "dim": dim, "seed": seed, "seed_u64": seed % 2**64,
                "kernel": kernel, "init": init, "a": a, "b": b,
                "sha256": hashlib.sha256(bytes.fromhex(hexstr)).hexdigest(),
            }
            if dt != "float32":
                entry["dtype"] = dt
            if n <= 4096:
                entry["bits"] = w
                entry["samples"] = {}
            else:
                idx = sorted({0, 1, 7, 8, 15, 16, 17, n // 2, n // 2 + 1, n - 17, n - 16, n - 9, n - 1})
                entry["samples"] = {str(i): w[i] for i in idx}
            results.append(entry)
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

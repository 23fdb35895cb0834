#!/usr/bin/python3
"""PyTorch itself as the oracle: embstore generate vs torch, bit for bit.

Usage: torch_oracle_test.py BUILD/embstore [--sanitized]

float32, float16 and bfloat16 tables (nn.Embedding(..., dtype=), normal_,
uniform_). Runs Debian's python3-torch in child processes with ATEN_CPU_CAPABILITY set
before torch loads: "avx2" for `--torch-kernel avx2` (x86-64 PyTorch's
default) and "default" for `--torch-kernel scalar`. Whole tables are
compared, on several thread counts and on every instruction set embstore
can use here (EMBSTORE_ISA). Exits 77 (skipped) when torch is not installed
(outside CI; in CI that is a failure). A sanitizer build (--sanitized)
leaves out the 50257 x 768 table and runs one thread count beside the
ISAs: the sanitizers look for memory errors, which the small shapes reach
on the same paths (tails, threads, every ISA); the release build checks
the large table and every thread count.
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, run  # noqa: E402

EMB = sys.argv[1]
SANITIZED = "--sanitized" in sys.argv[2:]

# (rows, dim, seed, init, a, b, dtype): tails and no tails, the serial path
# below 16 elements, non-default parameters, negative and >32-bit seeds,
# uniform init, and the 50257 x 768 GPT-2 table; float16 and bfloat16 take
# PyTorch's half paths. Their 50257 x 768 tables (every bfloat16 index pair,
# 2.2 of float16's 4.2 million) are checked against PyTorch's SHA-256 in
# tests/golden/torch_vectors.json by torch_vectors_test; every pair of both
# was checked live when the tables were made (store/torch/torch-rng.md 14).
CASES = [
    (6, 4, 123, "normal", 0.0, 1.0, "float32"),
    (1, 1, 5, "normal", 0.0, 1.0, "float32"),
    (3, 5, 123, "normal", 0.0, 1.0, "float32"),
    (1, 15, 42, "normal", 0.0, 1.0, "float32"),
    (4, 4, 7, "normal", 0.0, 1.0, "float32"),
    (1, 17, 123, "normal", 0.0, 1.0, "float32"),
    (33, 31, 2**32 + 9, "normal", 0.0, 1.0, "float32"),
    (1000, 64, 0, "normal", 0.0, 1.0, "float32"),
    (257, 3, -1, "normal", 0.0, 1.0, "float32"),
    (100, 100, 11, "normal", 0.5, 0.02, "float32"),
    (7, 2, 11, "normal", -3.0, 2.5, "float32"),
    (129, 77, 2024, "normal", 1e-5, 3.0, "float32"),
    (5, 3, 8, "uniform", 0.0, 1.0, "float32"),
    (300, 41, 9, "uniform", -0.3, 0.3, "float32"),
    (2000, 17, 2**33 + 1, "uniform", -1e-3, 5.0, "float32"),
    (50257, 768, 123, "normal", 0.0, 1.0, "float32"),
]
for dt in ("float16", "bfloat16"):
    CASES += [
        (6, 4, 123, "normal", 0.0, 1.0, dt),
        (1, 1, 5, "normal", 0.0, 1.0, dt),
        (3, 5, 123, "normal", 0.0, 1.0, dt),
        (1, 15, 42, "normal", -3.0, 7.0, dt),
        (1, 17, 123, "normal", 0.0, 1.0, dt),
        (33, 31, 2**32 + 9, "normal", 0.0, 1.0, dt),
        (1000, 64, 0, "normal", 0.0, 1.0, dt),
        (100, 100, 11, "normal", 0.5, 0.02, dt),
        (129, 77, 2024, "normal", -3.0, 7.0, dt),
        (64, 64, 3, "normal", 1e-3, 1e4, dt),
        (5, 3, 8, "uniform", 0.0, 1.0, dt),
        (300, 41, 9, "uniform", -0.3, 0.3, dt),
        (2000, 17, 2**33 + 1, "uniform", -1e-3, 5.0, dt),
    ]

if SANITIZED:
    CASES = [c for c in CASES if c[0] * c[1] <= 10**6]
KERNELS = (("avx2", "avx2"), ("scalar", "default"))  # (--torch-kernel, ATEN_CPU_CAPABILITY)
THREADS = (1, 2, 3)

# One child per kernel (ATEN_CPU_CAPABILITY is read when torch loads): it
# writes every case's table to OUT_DIR/N.f32, so torch is imported twice,
# not once per case.
CHILD = r"""
import sys, torch
out_dir = sys.argv[1]
for n, case in enumerate(sys.argv[2:]):
    rows, dim, seed, init, a, b, dt = case.split(",")
    rows, dim, seed, a, b, dt = int(rows), int(dim), int(seed), float(a), float(b), getattr(torch, dt)
    torch.manual_seed(seed)
    if init == "normal" and a == 0.0 and b == 1.0:
        w = torch.nn.Embedding(rows, dim, dtype=dt).weight.detach()
    elif init == "normal":
        w = torch.empty(rows, dim, dtype=dt).normal_(a, b)
    else:
        w = torch.empty(rows, dim, dtype=dt).uniform_(a, b)
    bits = w.contiguous().view(torch.int16 if dt != torch.float32 else torch.int32)
    with open(f"{out_dir}/{n}.raw", "wb") as f:
        f.write(bits.numpy().astype('<i2' if dt != torch.float32 else '<i4').tobytes())
"""


def torch_tables(capability, out_dir):
    """PyTorch's table for every case, in CASES order."""
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    subprocess.run([sys.executable, "-c", CHILD, out_dir,
                    *[",".join((str(r), str(d), str(s), i, repr(a), repr(b), t)) for r, d, s, i, a, b, t in CASES]],
                   check=True, env=env)
    for n in range(len(CASES)):
        with open(os.path.join(out_dir, f"{n}.raw"), "rb") as f:
            yield f.read()


def whole_tables_bit_for_bit():
    isas = ["portable", "avx2", "avx512"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.emb")
        for kernel, capability in KERNELS:
            for (rows, dim, seed, init, a, b, dtype), want in zip(CASES, torch_tables(capability, tmp)):
                params = ["--mean", repr(a), "--std", repr(b)] if init == "normal" else ["--low", repr(a), "--high", repr(b)]
                big = rows * dim > 10**6
                # Every thread count and ISA on small tables; a few on the big one.
                runs = [(t, None) for t in (THREADS if not SANITIZED else THREADS[-1:])] + [(2, isa) for isa in isas]
                if dtype != "float32":
                    # The half kernels' only vector code is the bfloat16 pair
                    # lookup (AVX-512 or portable); threads split the rows.
                    runs = [(1, None), (3, None), (2, "portable")]
                if big:
                    runs = [(1, None), (3, None), (2, "portable")] if dtype == "float32" else [(3, None)]
                for threads, isa in runs:
                    name = (f"{kernel} {dtype} {init}({a}, {b}) {rows}x{dim} seed={seed} threads={threads} "
                            f"isa={isa or 'best'}")
                    run_env = dict(os.environ)
                    if isa:
                        run_env["EMBSTORE_ISA"] = isa
                    subprocess.run([EMB, "generate", "--rows", str(rows), "--dim", str(dim), "--seed", str(seed),
                                    "--init", init, *params, "--torch-kernel", kernel, "--threads", str(threads),
                                    "--dtype", dtype,
                                    "-o", path], check=True, env=run_env)
                    got = subprocess.run([EMB, "get", path, f"0:{rows}", "--raw"], check=True,
                                         capture_output=True).stdout
                    same = got == want
                    w = 4 if dtype == "float32" else 2
                    diff = 0 if same else sum(1 for i in range(0, min(len(got), len(want)), w)
                                              if got[i:i + w] != want[i:i + w])
                    check(name, same, f"{len(got)} vs {len(want)} bytes, {diff} values differ")


def main():
    try:
        subprocess.run([sys.executable, "-c", "import torch"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        if os.environ.get("CI"):
            print("torch_oracle_test: python3-torch is not installed, and CI must run this test")
            return 1
        print("torch_oracle_test: python3-torch is not installed; skipped")
        return 77
    return run("torch_oracle_test", [whole_tables_bit_for_bit])


if __name__ == "__main__":
    sys.exit(main())

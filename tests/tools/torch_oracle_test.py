#!/usr/bin/python3
"""PyTorch itself as the oracle: embstore generate vs torch, bit for bit.

Usage: torch_oracle_test.py BUILD/embstore

Runs Debian's python3-torch with ATEN_CPU_CAPABILITY=default (PyTorch's
scalar kernel, the one `--torch-kernel scalar` matches) in a child process,
so the capability is fixed before torch loads. Exits 77 (skipped) when torch
is not installed (outside CI; in CI that is a failure).
"""

import os
import subprocess
import sys
import tempfile

EMB = sys.argv[1]

# (rows, dim, seed, mean, std): tails and no tails, the serial path below 16
# elements, non-default parameters, negative and >32-bit seeds, the
# 50257 x 768 GPT-2 table.
CASES = [
    (6, 4, 123, 0.0, 1.0),
    (1, 1, 5, 0.0, 1.0),
    (3, 5, 123, 0.0, 1.0),
    (1, 15, 42, 0.0, 1.0),
    (4, 4, 7, 0.0, 1.0),
    (1, 17, 123, 0.0, 1.0),
    (33, 31, 2**32 + 9, 0.0, 1.0),
    (1000, 64, 0, 0.0, 1.0),
    (257, 3, -1, 0.0, 1.0),
    (100, 100, 11, 0.5, 0.02),
    (7, 2, 11, -3.0, 2.5),
    (129, 77, 2024, 1e-5, 3.0),
    (50257, 768, 123, 0.0, 1.0),
]

CHILD = r"""
import sys, torch
rows, dim, seed, mean, std = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
torch.manual_seed(seed)
if mean == 0.0 and std == 1.0:
    w = torch.nn.Embedding(rows, dim).weight.detach()
else:
    w = torch.empty(rows, dim).normal_(mean, std)
sys.stdout.buffer.write(w.contiguous().numpy().astype('<f4').tobytes())
"""


def main():
    try:
        subprocess.run([sys.executable, "-c", "import torch"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        if os.environ.get("CI"):
            print("torch_oracle_test: python3-torch is not installed, and CI must run this test")
            sys.exit(1)
        print("torch_oracle_test: python3-torch is not installed; skipped")
        sys.exit(77)
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.emb")
        for rows, dim, seed, mean, std in CASES:
            name = f"{rows}x{dim} seed={seed} mean={mean} std={std}"
            want = subprocess.run(
                [sys.executable, "-c", CHILD, str(rows), str(dim), str(seed), repr(mean), repr(std)],
                check=True, capture_output=True, env=env).stdout
            subprocess.run([EMB, "generate", "--rows", str(rows), "--dim", str(dim), "--seed", str(seed),
                            "--mean", repr(mean), "--std", repr(std), "-o", path], check=True)
            got = subprocess.run([EMB, "get", path, f"0:{rows}", "--raw"], check=True,
                                 capture_output=True).stdout
            if got == want:
                passed += 1
                print(f"ok   {name}")
            else:
                failed += 1
                diff = sum(1 for i in range(0, min(len(got), len(want)), 4) if got[i:i + 4] != want[i:i + 4])
                print(f"FAIL {name}: {len(got)} vs {len(want)} bytes, {diff} floats differ")
    print(f"\ntorch_oracle_test: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

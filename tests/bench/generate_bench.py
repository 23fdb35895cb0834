#!/usr/bin/python3
"""Generation speed of a GPT-2 x GPT-3 table (50,257 x 12,288 float32,
2.47 GB) against PyTorch and against writing zeros, all in one run.

    /usr/bin/python3 tests/bench/generate_bench.py [BUILD_DIR] [--reps N]

Prints medians of N repetitions (default 5) and the ratios issue 3 names:
  - into warm memory: embstore (build/tests/bench/generate_bench, Google
    Benchmark) vs PyTorch's normal_ on an allocated, touched tensor, and a
    memset of the same bytes (the floor);
  - to a file: `embstore generate` vs writing the same number of zero bytes
    (dd), each with and without fsync, and vs PyTorch generating the table
    and numpy.save-ing it.
Before each file run the page cache is dropped when that is allowed (root),
so runs do not inherit each other's dirty pages. Needs 2 x 2.5 GB free in
$EMBSTORE_BENCH_DIR (default /tmp).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROWS, DIM = 50257, 12288
NBYTES = ROWS * DIM * 4
MIB = NBYTES // (1 << 20)  # 2355.75 -> dd writes whole MiB: add the rest below


def args():
    build, reps = "build", 5
    rest = sys.argv[1:]
    while rest:
        a = rest.pop(0)
        if a == "--reps":
            reps = int(rest.pop(0))
        else:
            build = a
    return build, reps


def settle():
    """Flush dirty pages, let the disk finish (this machine's ext4 is mounted
    with discard: freeing a 2.5 GB file issues trims that would otherwise land
    in the next timed run), and, where allowed, empty the page cache."""
    subprocess.run(["sync"], check=True)
    time.sleep(3)
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def timed(cmd, env=None):
    settle()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def write_zeros(path, fsync):
    """dd of exactly NBYTES zero bytes, 1 MiB blocks."""
    flags = ["conv=fsync"] if fsync else []
    settle()
    t = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={MIB}", "status=none", *flags], check=True)
    with open(path, "ab") as f:
        f.write(b"\0" * (NBYTES - MIB * (1 << 20)))
        if fsync:
            os.fsync(f.fileno())
    return time.perf_counter() - t


TORCH_WARM = r"""
import sys, time, torch
w = torch.empty(%d, %d); w.zero_()
out = []
for _ in range(int(sys.argv[1])):
    torch.manual_seed(123)
    t = time.perf_counter(); w.normal_(); out.append(time.perf_counter() - t)
print(out)
""" % (ROWS, DIM)

TORCH_SAVE = r"""
import sys, time, numpy, torch
t = time.perf_counter()
torch.manual_seed(123)
w = torch.nn.Embedding(%d, %d).weight.detach()
numpy.save(sys.argv[1], w.numpy())
print(time.perf_counter() - t)
""" % (ROWS, DIM)


def main():
    build, reps = args()
    emb = os.path.join(build, "embstore")
    gbench = os.path.join(build, "tests", "bench", "generate_bench")
    py = "/usr/bin/python3"
    results = {}

    # Warm memory: Google Benchmark (medians of its repetitions).
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([gbench, f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true",
                        f"--benchmark_out={out.name}", "--benchmark_out_format=json"], check=True,
                       stdout=subprocess.DEVNULL)
        data = json.load(open(out.name))
    # Times in seconds (the benchmarks report milliseconds).
    med = {b["run_name"]: b["real_time"] / 1e3 for b in data["benchmarks"] if b.get("aggregate_name") == "median"}
    ctx = data["context"]
    torch_warm = json.loads(subprocess.run([py, "-c", TORCH_WARM, str(reps)], check=True, capture_output=True,
                                           text=True).stdout.replace("'", '"'))
    results["torch normal_ (warm tensor)"] = statistics.median(torch_warm)

    # Files.
    d = os.environ.get("EMBSTORE_BENCH_DIR", "/tmp")
    f = os.path.join(d, "embstore-genbench.emb")
    z = os.path.join(d, "embstore-genbench.zero")
    n = os.path.join(d, "embstore-genbench.npy")
    runs = {k: [] for k in ("gen", "zero", "gen_sync", "zero_sync", "torch_save")}
    try:
        for _ in range(reps):
            runs["gen"].append(timed([emb, "generate", "--rows", str(ROWS), "--dim", str(DIM), "--seed", "123",
                                      "--no-fsync", "-o", f]))
            os.remove(f)
            runs["zero"].append(write_zeros(z, False))
            os.remove(z)
            runs["gen_sync"].append(timed([emb, "generate", "--rows", str(ROWS), "--dim", str(DIM), "--seed", "123",
                                           "-o", f]))
            os.remove(f)
            runs["zero_sync"].append(write_zeros(z, True))
            os.remove(z)
            settle()
            runs["torch_save"].append(float(subprocess.run([py, "-c", TORCH_SAVE, n], check=True, capture_output=True,
                                                           text=True).stdout))
            os.remove(n)
    finally:
        for p in (f, z, n):
            if os.path.exists(p):
                os.remove(p)
    m = {k: statistics.median(v) for k, v in runs.items()}

    gen1 = med["BM_GenerateWarm/1/0/real_time"]
    gen2 = med["BM_GenerateWarm/2/0/real_time"]
    scal2 = med["BM_GenerateWarm/2/1/real_time"]
    memset = med["BM_MemsetFloor/real_time"]
    tw = results["torch normal_ (warm tensor)"]
    print(f"machine: {ctx['num_cpus']} cpus @ {ctx['mhz_per_cpu']} MHz; 50,257 x 12,288 float32; medians of {reps}")
    print("into warm memory:")
    print(f"  PyTorch normal_, AVX2 kernel        {tw:7.3f} s")
    print(f"  embstore, AVX2 kernel, 1 thread     {gen1:7.3f} s   {tw / gen1:5.1f}x PyTorch")
    print(f"  embstore, AVX2 kernel, 2 threads    {gen2:7.3f} s   {tw / gen2:5.1f}x PyTorch (target >= 8x)")
    print(f"  embstore, scalar kernel, 2 threads  {scal2:7.3f} s")
    print(f"  memset of the same bytes (floor)    {memset:7.3f} s   embstore = {gen2 / memset:.2f}x the floor")
    print("to a file (ext4, page cache dropped before each run):")
    print(f"  embstore generate --no-fsync        {m['gen']:7.3f} s   {m['gen'] / m['zero']:.2f}x zeros (target <= 1.2x)")
    print(f"  dd of as many zero bytes            {m['zero']:7.3f} s")
    print(f"  embstore generate (fsync)           {m['gen_sync']:7.3f} s   {m['gen_sync'] / m['zero_sync']:.2f}x zeros")
    print(f"  dd of zero bytes + fsync            {m['zero_sync']:7.3f} s")
    print(f"  PyTorch Embedding + numpy.save      {m['torch_save']:7.3f} s   "
          f"{m['torch_save'] / m['gen']:.1f}x embstore --no-fsync, {m['torch_save'] / m['gen_sync']:.1f}x with fsync (target >= 2x)")
    print("raw runs:", json.dumps({k: [round(x, 3) for x in v] for k, v in runs.items()}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Resource bounds on hostile and on legitimate but extreme input (run by ctest):
    bounds_test.py EMBSTORE GOLDEN_DIR

Every file in GOLDEN_DIR/bad (tables, keyed tables, .embz, .npy, safetensors,
word vectors), and worst
cases made here (a .embz whose header claims 2^40 frames of 64 MiB; a
safetensors header of 99 MB holding a million tensors; a .npy claiming a
petabyte), goes through the command that reads it. Each must finish within
10 seconds (no loop without progress) and peak below the documented bound
(README, "Security"): beyond what a process of this build needs at rest,
68 MiB + 1.25 F, where F is the decoded frame size of the .embz read (0
when none is), plus 6x the header for a safetensors header (mapped, and
parsed into a list of tensors), which is itself at most 100 MB.

Then a .embz with the largest frames the format allows (64 MiB; a table of
zeros, so that the file itself is a few KB and the peak is the process's
own memory): get of one row and of every row, verify and decompress on 8
threads, export; and compress on 8 threads into such frames, within its own
bound (256 MiB of frames in flight, plus the table it maps). And one with
the smallest (one float per frame, half a million of them): the frame
cache must count what each frame costs it, not only the frame's bytes.
And rows of 4 MiB (2^20 floats): `get` of one row holds one row, not a
buffer of 256.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile
import time

from checks import check, run

EMB, GOLDEN = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
# In a sanitizer build (--sanitized) shadow memory makes every figure
# meaningless: only the time limit (60 s there) and "no crash" are checked,
# and the two inputs that are extreme by count alone (a million tensors,
# half a million frames) are a tenth as large: the sanitizers look for
# memory errors, which the same code paths show at a tenth of the count;
# the release build checks the scale.
SANITIZED = "--sanitized" in sys.argv[3:]
LIMIT = 60 if SANITIZED else 10
SCALE = 10 if SANITIZED else 1

def peak_rss(args):
    """Exit code, peak RSS (bytes), seconds, stderr of one embstore run."""
    t = time.perf_counter()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execv(EMB, [EMB, *args])
    os.close(w)
    deadline = time.time() + LIMIT
    err = b""
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid:
            break
        if time.time() > deadline:
            os.kill(pid, 9)
            _, status, usage = os.wait4(pid, 0)
            return None, usage.ru_maxrss * 1024, float(LIMIT), b"timed out"
        time.sleep(0.01)
    with os.fdopen(r, "rb") as f:
        err = f.read()
    code = os.waitstatus_to_exitcode(status)
    return code, usage.ru_maxrss * 1024, time.perf_counter() - t, err


def measure_all(cases_file):
    """Runs in a fresh, small interpreter: a child's peak RSS counts what its
    parent had at fork time, so the measuring process must stay small."""
    results = []
    for what, args in json.load(open(cases_file)):
        code, rss, secs, err = peak_rss(args)
        results.append([what, code, rss, secs, err.decode(errors="replace")[:200]])
    print(json.dumps(results))


def time_and_memory_bounds():
    d = tempfile.mkdtemp(prefix="embstore-bounds-")
    try:
        # A process at rest: a valid tiny table's info (measured with the rest).
        cases = [("at rest", ["info", os.path.join(GOLDEN, "good", "notebook-6x4-seed123.emb")], 0)]
        bad = os.path.join(GOLDEN, "bad")
        for name in sorted(os.listdir(bad)):
            p = os.path.join(bad, name)
            # Under the sanitizers (ten times slower, there for memory errors),
            # get and the readers of keys run only on the files that open,
            # since a file refused at open takes verify's path.
            opens = "corrupt" in name
            if name.endswith(".emb") or name.endswith(".embz"):
                cases += [(name + ": verify", ["verify", p], 0)]
                if opens or not SANITIZED:
                    cases += [(name + ": get", ["get", p, "0"], 0)]
                if not SANITIZED:  # (under the sanitizers fuzz_table searches hostile tables)
                    cases += [(name + ": nearest", ["nearest", p, "--id", "0", "-k", "1"], 0)]
            if name.startswith("keys-") and (opens or not SANITIZED):  # hostile keys sections: every reader of keys
                cases += [(name + ": keys", ["keys", p], 0), (name + ": get --key", ["get", p, "--key", "king"], 0),
                          (name + ": export word2vec", ["export", p, "-o", os.path.join(d, "w.bin"), "-f"], 0)]
        for name in sorted(os.listdir(os.path.join(bad, "import"))):
            cases.append((name + ": import", ["import", os.path.join(bad, "import", name), "-o",
                                              os.path.join(d, "x.emb"), "-f"], 0))

        # A .embz claiming 2^40 frames of 64 MiB in 200 bytes.
        z = bytearray(open(os.path.join(GOLDEN, "good", "notebook-6x4-seed123-embz1.1.embz"), "rb").read())
        struct.pack_into("<QQ", z, 64, 1 << 20, 1 << 40)
        lie = os.path.join(d, "lie.embz")
        open(lie, "wb").write(z)
        cases.append(("a .embz claiming 2^40 frames", ["verify", lie], 0))
        # A .npy claiming a petabyte of rows.
        h = "{'descr': '<f4', 'fortran_order': False, 'shape': (281474976710656, 1024), }"
        h = h + " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
        npy = os.path.join(d, "pb.npy")
        open(npy, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + b"\0" * 64)
        cases.append(("a .npy claiming a petabyte", ["import", npy, "-o", os.path.join(d, "x.emb")], 0))
        # A 99 MB safetensors header: a million empty tensors, all valid.
        n = 1_000_000 // SCALE
        header = {f"t{i:07d}": {"dtype": "F32", "shape": [0, 4], "data_offsets": [0, 0]} for i in range(n)}
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        big = os.path.join(d, "million.safetensors")
        with open(big, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
        cases.append((f"a safetensors header of {n:,} tensors: --list", ["import", big, "--list"], 6 * len(text)))

        # The largest frames: 3 frames of 16,384 rows x 1,024 floats (64 MiB).
        zeros = os.path.join(d, "zeros.emb")
        subprocess.run([EMB, "generate", "--rows", "49152", "--dim", "1024", "--init", "uniform", "--low", "0",
                        "--high", "0", "-o", zeros, "--no-fsync"], check=True)
        big = os.path.join(d, "big-frames.embz")
        subprocess.run([EMB, "compress", zeros, "-o", big, "--frame-rows", "16384", "--no-fsync", "-q"], check=True)
        frame = 64 << 20
        extra = frame + frame // 4
        out = os.path.join(d, "out")
        cases += [
            ("64 MiB frames: get of one row", ["get", big, "20000"], extra),
            ("64 MiB frames: get of every row", ["get", big, "0:49152", "--raw"], extra),
            ("64 MiB frames: verify -T 8", ["verify", big, "-T", "8"], extra),
            ("64 MiB frames: decompress -T 8", ["decompress", big, "-o", out + ".emb", "-T", "8", "--no-fsync", "-q"],
             extra),
            ("64 MiB frames: export", ["export", big, "-o", out + ".npy", "--no-fsync", "-q"], extra),
            # compress maps its source (192 MiB, every page read): that is the table's own mapping.
            ("64 MiB frames: compress -T 8", ["compress", zeros, "-o", out + ".embz", "--frame-rows", "16384", "-T", "8",
                                              "--no-fsync", "-q"], (256 << 20) + os.path.getsize(zeros) - (68 << 20)),
        ]

        # The widest rows: 40 rows of 2^20 floats (4 MiB a row). `get` of one
        # row reads one row: it held a buffer of 256 rows (1 GiB) whatever
        # it was asked for.
        wide = os.path.join(d, "wide.emb")
        subprocess.run([EMB, "generate", "--rows", "40", "--dim", str(1 << 20), "--init", "uniform", "--low", "0",
                        "--high", "0", "-o", wide, "--no-fsync"], check=True)
        widez = os.path.join(d, "wide.embz")
        subprocess.run([EMB, "compress", wide, "-o", widez, "--no-fsync", "-q"], check=True)
        os.unlink(wide)
        row = 4 << 20
        # Within: one row's buffer, its 4 MiB frame decoded (1.25 F), and room.
        cases.append(("4 MiB rows: get of one row", ["get", widez, "7", "--raw"], 4 * row))

        # The smallest frames: one float each (2 MiB of rows, 500,000 frames).
        # The cache counts each frame's bookkeeping, not only its 4 bytes.
        ones = os.path.join(d, "ones.emb")
        rows = 500_000 // SCALE
        subprocess.run([EMB, "generate", "--rows", str(rows), "--dim", "1", "-o", ones, "--no-fsync"], check=True)
        tiny = os.path.join(d, "tiny-frames.embz")
        subprocess.run([EMB, "compress", ones, "-o", tiny, "--frame-rows", "1", "--no-fsync", "-q"], check=True)
        mapped = os.path.getsize(tiny)  # the file's own mapping, every page of which these read
        cases += [
            ("one-float frames: get of every row", ["get", tiny, f"0:{rows}", "--raw"], mapped),
            ("one-float frames: export", ["export", tiny, "-o", out + "-tiny.npy", "--no-fsync", "-q"], mapped),
            ("one-float frames: verify", ["verify", tiny], mapped),
        ]

        cases_file = os.path.join(d, "cases.json")
        json.dump([[what, args] for what, args, _ in cases], open(cases_file, "w"))
        out = subprocess.run([sys.executable, __file__, EMB, "--measure", cases_file] + sys.argv[3:], check=True,
                             capture_output=True, text=True).stdout
        results = {r[0]: r[1:] for r in json.loads(out)}
        base = results["at rest"][1]
        bound = base + (68 << 20)
        print(f"note: at rest {base / 2**20:.1f} MiB; bound {bound / 2**20:.1f} MiB", flush=True)
        for what, args, extra in cases:
            code, rss, secs, err = results[what]
            err = err.encode()
            check(what + f": ends within {LIMIT} s", code is not None, err.decode()[:200])
            check(what + ": no crash", code is not None and code >= 0, f"exit {code}: {err.decode()[:200]}")
            check(what + ": peak memory within the bound", SANITIZED or rss <= bound + extra,
                  f"{rss / 2**20:.1f} MiB > {(bound + extra) / 2**20:.1f} MiB")
        print(f"note: {len(cases)} hostile inputs", flush=True)
    finally:
        subprocess.run(["rm", "-rf", d])


def main():
    if sys.argv[2] == "--measure":
        measure_all(sys.argv[3])
        return 0
    return run("bounds_test", [time_and_memory_bounds])


if __name__ == "__main__":
    sys.exit(main())

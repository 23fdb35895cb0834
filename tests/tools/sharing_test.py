#!/usr/bin/python3
"""One table, many processes: run by ctest as
    sharing_test.py EMBSTORE TABLE_WORKER [--sanitized]

- Eight worker processes (tests/tools/table_worker.cc) each gather every row
  of one 268 MB table in a random order; the sum of their PSS
  (/proc/PID/smaps_rollup) must stay <= 1.1x the table's size, for a file
  and for a shared-memory table (`embstore share`). Eight workers that each
  load a private copy must use about 8x (>= 7.5x). The PSS of the table's
  own mapping (/proc/PID/smaps) is checked too; in a sanitizer build
  (--sanitized), whose every process carries megabytes of shadow memory,
  only that one.
- A table replaced many times under live readers: readers that hold the old
  mapping keep verifying it whole, and every reader that opens during the
  replacements reads one whole version, never a mixture. The same for a
  shared table replaced with `share -f` and removed with `unshare` while
  held.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import threading

from checks import check, run as run_tests
from procmem import mapping_pss_bytes, pss_bytes

EMB, WORKER = sys.argv[1], sys.argv[2]
SANITIZED = "--sanitized" in sys.argv[3:]
def run(*args, **kw):
    return subprocess.run([EMB, *args], check=True, capture_output=True, **kw)


def pool_pss(mode, table, n=8, path=None):
    """Starts n workers, waits until each has read every row; returns the
    sum of their PSS, and of the PSS of their mappings of `path`."""
    procs = [subprocess.Popen([WORKER, mode, table], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    try:
        ready = [p.stdout.readline().split() for p in procs]
        if not all(r and r[0] == "ready" for r in ready):
            raise RuntimeError(f"workers did not start: {ready}")
        if len({r[1] for r in ready}) != 1:
            raise RuntimeError(f"workers read different rows: {ready}")
        return (sum(pss_bytes(p.pid) for p in procs),
                sum(mapping_pss_bytes(path or table, p.pid) for p in procs))
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def one_copy_and_replacement():
    d = tempfile.mkdtemp(prefix="embstore-sharing-")
    name = f"sharing-test-{os.getpid()}"
    try:
        # --- PSS: one copy for eight processes --------------------------------
        table = os.path.join(d, "big.emb")
        run("generate", "--rows", "16384", "--dim", "4096", "--seed", "5", "--no-fsync", "-o", table)
        size = os.path.getsize(table)
        def shared_ok(what, pss, mapped):
            check(what + " (the table's mappings)", mapped <= 1.1 * size, f"{mapped / size:.3f}x")
            if not SANITIZED:
                check(what + " (whole processes)", pss <= 1.1 * size,
                      f"PSS sum {pss / 1e6:.1f} MB = {pss / size:.3f}x the {size / 1e6:.1f} MB table")

        shared_ok("8 processes mapping one file share it", *pool_pss("gather", table))
        shm = os.environ.get("EMBSTORE_SHM_DIR", "/dev/shm")
        st = os.statvfs(shm) if os.path.isdir(shm) else None
        if st is None or st.f_bavail * st.f_frsize < 2 * size:
            # A container's small /dev/shm: segments go to a scratch folder,
            # which exercises the same code on page-cache pages.
            print(f"note: {shm} has no room for the {size / 1e6:.0f} MB table; using {d}/shm", flush=True)
            os.environ["EMBSTORE_SHM_DIR"] = os.path.join(d, "shm")
            os.mkdir(os.environ["EMBSTORE_SHM_DIR"])
        run("share", table, "--name", name)
        try:
            shm_path = os.path.join(os.environ.get("EMBSTORE_SHM_DIR", "/dev/shm"), "embstore-" + name)
            shared_ok("8 processes mapping one shared-memory table share it",
                      *pool_pss("gather", "shm:" + name, path=shm_path))
        finally:
            run("unshare", name)
        pss, _ = pool_pss("private", table)
        check("8 processes with private copies use 8x", pss >= 7.5 * size, f"PSS sum {pss / size:.2f}x")
        os.remove(table)

        # --- replacement under live readers: a file ---------------------------
        t = os.path.join(d, "t.emb")
        versions = {}
        for seed in (1, 2):
            run("generate", "--rows", "2000", "--dim", "256", "--seed", str(seed), "--no-fsync", "-o", t)
            versions[sha(run("get", t, "0:2000", "--raw").stdout)] = seed
        holders = [subprocess.Popen([WORKER, "hold", t], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                   for _ in range(3)]
        for h in holders:
            h.stdout.readline()
        seen, torn, stop = set(), [], threading.Event()

        def reader():
            while not stop.is_set():
                r = subprocess.run([EMB, "get", t, "0:2000", "--raw"], capture_output=True)
                h = sha(r.stdout) if r.returncode == 0 else "error: " + r.stderr.decode()
                (seen.add(versions[h]) if h in versions else torn.append(h))

        readers = [threading.Thread(target=reader) for _ in range(2)]
        for r in readers:
            r.start()
        late = []
        for i in range(40):
            run("generate", "--rows", "2000", "--dim", "256", "--seed", str(1 + i % 2), "--no-fsync", "-o", t)
            if i == 20:  # holders that open in the middle of it all
                late = [subprocess.Popen([WORKER, "hold", t], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True) for _ in range(2)]
                for h in late:
                    h.stdout.readline()
        stop.set()
        for r in readers:
            r.join()
        results = []
        for h in holders + late:
            h.stdin.close()
            results.append((h.wait(), h.stdout.read().strip()))
        check("a file replaced 40 times: readers that opened meanwhile read whole versions",
              not torn and seen == {1, 2}, f"versions seen {sorted(seen)}, torn or failed reads {torn[:3]}")
        check("a file replaced 40 times: live mappings keep the old table, whole",
              all(rc == 0 and out.startswith("passes") for rc, out in results), str(results))
        check("no temporary files left beside it", sorted(os.listdir(d)) == ["t.emb"], str(os.listdir(d)))

        # --- replacement and removal under live readers: shared memory --------
        a, b = os.path.join(d, "a.emb"), os.path.join(d, "b.emb")
        run("generate", "--rows", "2000", "--dim", "256", "--seed", "1", "--no-fsync", "-o", a)
        run("generate", "--rows", "2000", "--dim", "256", "--seed", "2", "--no-fsync", "-o", b)
        run("share", a, "--name", name)
        holders = [subprocess.Popen([WORKER, "hold", "shm:" + name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True) for _ in range(3)]
        for h in holders:
            h.stdout.readline()
        reads = []
        for i in range(30):
            run("share", (b, a)[i % 2], "--name", name, "-f")
            reads.append(sha(run("get", "shm:" + name, "0:2000", "--raw").stdout))
        run("unshare", name)
        results = []
        for h in holders:
            h.stdin.close()
            results.append((h.wait(), h.stdout.read().strip()))
        check("a shared table replaced 30 times reads whole versions", all(r in versions for r in reads))
        check("live mappings survive share -f and unshare",
              all(rc == 0 and out.startswith("passes") for rc, out in results), str(results))
        gone = subprocess.run([EMB, "get", "shm:" + name, "0"], capture_output=True, text=True)
        check("after unshare the name is gone", gone.returncode == 1 and "no shared table" in gone.stderr,
              gone.stderr.strip())
    finally:
        subprocess.run([EMB, "unshare", name], capture_output=True)
        subprocess.run(["rm", "-rf", d])


def main():
    return run_tests("sharing_test", [one_copy_and_replacement])


if __name__ == "__main__":
    sys.exit(main())

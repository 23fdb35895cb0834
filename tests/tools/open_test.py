#!/usr/bin/python3
"""Opening what is not a plain, settled table file (run by ctest):
    open_test.py EMBSTORE [--sanitized] MODULE_DIR

with MODULE_DIR the build's python/ folder (the module under test).

- A FIFO given as input never hangs: every command that reads a table
  (info, get, verify, export, share, compress, decompress, import, import of
  raw floats) exits 1 within 20 seconds, says "is a FIFO, not a regular
  file" and writes nothing; the same through a symlink to the FIFO. From
  Python, open, info, get and verify raise StorageError (an OSError) with
  that message; each runs in a subprocess with a timeout, so that a hang
  fails the check instead of hanging the test.
- A path that flips between a .emb and a .embz (compress and decompress
  onto it with -f, over and over, for about 4 seconds) is read whole: reader
  processes that open it and read row 7, its metadata and its length as
  fast as they can see no error and no wrong row, and so does a loop of
  `embstore get P 7 --json`. (Before the fix the format was decided by one
  open and the file read by another, and readers met "bad magic".)

A sanitizer build (--sanitized) runs the command-line loop 200 times
instead of 600: each of its processes starts slower there, and the
sanitizers look for memory errors, not for the race, which the release
build's 600 runs look for.

Shared-memory tables go to a scratch folder (EMBSTORE_SHM_DIR), never
/dev/shm.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, run as run_tests  # noqa: E402

SANITIZED = "--sanitized" in sys.argv
EMB, MODULE_DIR = [a for a in sys.argv[1:] if a != "--sanitized"][:2]
NAME = "open_test"
TIMEOUT = 20     # seconds: longer is a hang
FLIP_SECONDS = 4
MIN_READS = 2000  # module reads during the flips, below which the check means little
CLI_READS = 200 if SANITIZED else 600

# Runs one module call on a path in a child process; prints what happened
# as one line of JSON.
PY_CALL = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import embstore
call, path = sys.argv[2], sys.argv[3]
try:
    {"open": lambda: embstore.open(path), "info": lambda: embstore.info(path),
     "get": lambda: embstore.get(path, [0]), "verify": lambda: embstore.verify(path)}[call]()
    print(json.dumps({"raised": None}))
except Exception as e:
    print(json.dumps({"raised": type(e).__name__, "error": isinstance(e, embstore.Error),
                      "storage": isinstance(e, embstore.StorageError), "oserror": isinstance(e, OSError),
                      "message": str(e)}))
"""

# Opens PATH and reads row 7, the metadata and the length until the
# deadline; prints counts as one line of JSON.
PY_READER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import embstore
path, seconds = sys.argv[2], float(sys.argv[3])
with open(sys.argv[4], "rb") as f:
    row = f.read()
with open(sys.argv[5]) as f:
    metadata = json.load(f)
reads = errors = wrong = packed = 0
first = ""
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    reads += 1
    try:
        t = embstore.open(path)
        ok = t[7].tobytes() == row and t.metadata == metadata and len(t) == 4000
        packed += bool(getattr(t, "compressed", False))
        t.close()
        wrong += not ok
    except Exception as e:
        errors += 1
        first = first or f"{type(e).__name__}: {e}"
print(json.dumps({"reads": reads, "errors": errors, "wrong": wrong, "compressed": packed, "first_error": first}))
"""

# Turns PATH into a .emb and a .embz in turn until STOP exists (or a
# deadline); prints the number of flips and of failed commands.
PY_WRITER = r"""
import json, os, subprocess, sys, time
emb, plain, packed, path, stop = sys.argv[1:6]
flips = failures = 0
first = ""
deadline = time.monotonic() + float(sys.argv[6])
while not os.path.exists(stop) and time.monotonic() < deadline:
    for argv in (["compress", plain], ["decompress", packed]):
        r = subprocess.run([emb, *argv, "-o", path, "-f", "--no-fsync", "-q"], capture_output=True)
        flips += 1
        if r.returncode != 0:
            failures += 1
            first = first or r.stderr.decode()
print(json.dumps({"flips": flips, "failures": failures, "first_error": first}))
"""


def run(*args, env, timeout=TIMEOUT):
    """(exit code, stderr) of one embstore run; None for the code after a timeout."""
    try:
        r = subprocess.run([EMB, *args], capture_output=True, env=env, timeout=timeout)
        return r.returncode, r.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, f"no exit within {timeout} s"


def py_call(call, path, env):
    """What the module did for one call (a dict), or None after a timeout."""
    try:
        r = subprocess.run([sys.executable, "-c", PY_CALL, MODULE_DIR, call, path], capture_output=True, env=env,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    lines = r.stdout.decode().strip().splitlines()
    if r.returncode != 0 or not lines:
        return {"raised": "child failed", "message": r.stderr.decode()[-300:]}
    return json.loads(lines[-1])


def fifo_checks(d, env):
    fifo = os.path.join(d, "F")
    os.mkfifo(fifo)
    link = os.path.join(d, "link")
    os.symlink(fifo, link)
    out = os.path.join(d, "out")
    os.mkdir(out)
    shm = env["EMBSTORE_SHM_DIR"]
    for kind, src in (("a FIFO", fifo), ("a symlink to a FIFO", link)):
        commands = [
            ["info", src], ["get", src, "0"], ["verify", src],
            ["export", src, "-o", os.path.join(out, "out.npy")],
            ["share", src, "--name", "x"],
            ["compress", src, "-o", os.path.join(out, "out.embz")],
            ["decompress", src, "-o", os.path.join(out, "out.emb")],
            ["import", src, "-o", os.path.join(out, "out.emb")],
            ["import", src, "--rows", "2", "--dim", "2", "-o", os.path.join(out, "out.emb")],
        ]
        for argv in commands:
            what = " ".join(a if a != src else os.path.basename(src) for a in argv)
            t = time.monotonic()
            code, err = run(*argv, env=env)
            took = time.monotonic() - t
            check(f"{kind}: `{what}` exits 1 at once, saying it is a FIFO",
                  code == 1 and "is a FIFO, not a regular file" in err,
                  f"exit {code} after {took:.1f} s: {err.strip()[:300]}")
            left = os.listdir(out) + os.listdir(shm)
            check(f"{kind}: `{what}` writes nothing", not left, f"left: {left}")
            for p in left:
                os.remove(os.path.join(out, p) if p in os.listdir(out) else os.path.join(shm, p))
        for call in ("open", "info", "get", "verify"):
            r = py_call(call, src, env)
            check(f"{kind}: embstore.{call}() raises StorageError (an OSError) at once, saying it is a FIFO",
                  r is not None and r["raised"] == "StorageError" and r["error"] and r["storage"] and r["oserror"]
                  and "is a FIFO, not a regular file" in r["message"],
                  f"no return within {TIMEOUT} s" if r is None else str(r)[:300])


def flip_checks(d, env):
    plain, packed, path = (os.path.join(d, n) for n in ("t.emb", "t.embz", "P"))
    subprocess.run([EMB, "generate", "--rows", "4000", "--dim", "64", "--seed", "3", "--no-fsync", "-o", plain],
                   check=True, capture_output=True, env=env)
    subprocess.run([EMB, "compress", plain, "-o", packed, "--no-fsync", "-q"], check=True, capture_output=True,
                   env=env)
    subprocess.run([EMB, "decompress", packed, "-o", path, "--no-fsync", "-q"], check=True, capture_output=True,
                   env=env)
    # The expected row, metadata and --json output, from the original table.
    import embstore  # after EMBSTORE_SHM_DIR is set, from MODULE_DIR
    t = embstore.open(plain)
    row_file, meta_file = os.path.join(d, "row7"), os.path.join(d, "metadata.json")
    with open(row_file, "wb") as f:
        f.write(t[7].tobytes())
    with open(meta_file, "w") as f:
        json.dump(t.metadata, f)
    t.close()
    expected_json = subprocess.run([EMB, "get", plain, "7", "--json"], check=True, capture_output=True,
                                   env=env).stdout

    def writer(stop, seconds):
        return subprocess.Popen([sys.executable, "-c", PY_WRITER, EMB, plain, packed, path, stop, str(seconds)],
                                stdout=subprocess.PIPE, text=True, env=env)

    # Module readers: two processes, as fast as they can, while P flips.
    stop = os.path.join(d, "stop-1")
    w = writer(stop, FLIP_SECONDS + 10)
    readers = [subprocess.Popen([sys.executable, "-c", PY_READER, MODULE_DIR, path, str(FLIP_SECONDS), row_file,
                                 meta_file], stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = []
    for r in readers:
        out, _ = r.communicate(timeout=FLIP_SECONDS + 60)
        results.append(json.loads(out.strip().splitlines()[-1]) if r.returncode == 0 and out.strip() else
                       {"reads": 0, "errors": 1, "wrong": 0, "compressed": 0, "first_error": f"exit {r.returncode}"})
    open(stop, "w").close()
    flips = json.loads(w.communicate(timeout=60)[0])
    reads = sum(r["reads"] for r in results)
    errors = sum(r["errors"] for r in results)
    wrong = sum(r["wrong"] for r in results)
    compressed = sum(r["compressed"] for r in results)
    print(f"note: {reads} module reads ({compressed} of a .embz) while P flipped {flips['flips']} times", flush=True)
    check("the writer flipped P between .emb and .embz without a failure",
          flips["failures"] == 0 and flips["flips"] >= 20, str(flips)[:300])
    check(f"module readers of a flipping path made at least {MIN_READS} reads, of both kinds",
          reads >= MIN_READS and 0 < compressed < reads - errors, f"{reads} reads, {compressed} of a .embz")
    check("module readers of a flipping path: no error", errors == 0,
          f"{errors} errors in {reads} reads; first: {[r['first_error'] for r in results if r['first_error']]}")
    check("module readers of a flipping path: every row, metadata and length right", wrong == 0,
          f"{wrong} wrong in {reads} reads")

    # The command: `get P 7 --json`, one process each, while P flips.
    stop = os.path.join(d, "stop-2")
    w = writer(stop, 120)
    failures, first = 0, ""
    try:
        for _ in range(CLI_READS):
            try:
                r = subprocess.run([EMB, "get", path, "7", "--json"], capture_output=True, env=env, timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                failures += 1
                first = first or "timed out"
                continue
            if r.returncode != 0 or r.stdout != expected_json:
                failures += 1
                first = first or f"exit {r.returncode}: {r.stderr.decode().strip()[:300]}"
    finally:
        open(stop, "w").close()
        flips = json.loads(w.communicate(timeout=60)[0])
    print(f"note: {CLI_READS} `get P 7 --json` runs while P flipped {flips['flips']} times", flush=True)
    check("the writer flipped P during the command's reads without a failure",
          flips["failures"] == 0 and flips["flips"] >= 20, str(flips)[:300])
    check(f"`embstore get P 7 --json` x{CLI_READS} on a flipping path: every run exits 0 with row 7",
          failures == 0, f"{failures} failed; first: {first}")


def main():
    d = tempfile.mkdtemp(prefix="embstore-open-")
    try:
        shm = os.path.join(d, "shm")
        os.mkdir(shm)
        os.environ["EMBSTORE_SHM_DIR"] = shm  # before the module is imported, and for every child
        sys.path.insert(0, MODULE_DIR)
        env = dict(os.environ)
        return run_tests(NAME, [("fifo", lambda: fifo_checks(d, env)), ("flip", lambda: flip_checks(d, env))])
    finally:
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    sys.exit(main())

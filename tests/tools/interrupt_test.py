#!/usr/bin/python3
"""Ctrl-C and SIGTERM during long work (run by ctest):
    interrupt_test.py EMBSTORE [--sanitized] MODULE_DIR
(EMBSTORE_INTERRUPTS: signals per command and front end, default 4; 2 in
a sanitizer build, from Python for generate and share only)

For every long command (generate, compress, decompress, verify, import,
export, share), started from the command line and from Python, on two
worker threads, a signal at random points (one in each sixth of the span
from 10% to 70% of the command's own run time, the shorter of two runs):
- it stops within half a second of the signal (two seconds in a sanitizer
  build): the command says "interrupted by SIGINT" and, clean, ends by the
  signal itself (the shell's $? is 130 for SIGINT, 143 for SIGTERM); Python raises KeyboardInterrupt with a note that
  the work was stopped (and a Python SIGTERM handler that exits runs, as for
  any signal). A command whose work had finished exits 0 with the new file;
  one signalled before its handlers were in place dies by the signal
  without a word.
- A shell loop of commands stops at Ctrl-C (the shell sees its child die by
  SIGINT); a command started with SIGINT ignored (`cmd &` in a shell
  without job control) ignores it and finishes.
- nothing is left behind: the destination is the previous file, whole (or,
  when the command had finished before the signal, the new one), and there
  is no other file beside it, hidden or not, with unnamed temporary files or
  named ones (EMBSTORE_NAMED_TEMP=1); a shared table is the previous one;
- the signals found the work running: at least one for each command and
  front end, and 60% of them in all (else the test says little about
  interrupting it; on a loaded machine some come after the work); in a
  sanitizer build, 40% of them in all.
"""

import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from checks import check, run as run_tests

SANITIZED = "--sanitized" in sys.argv[1:]
ARGS = [a for a in sys.argv[1:] if a != "--sanitized"]
EMB, MODULE_DIR = ARGS[0], ARGS[-1]
# A sanitizer build looks for memory errors on the paths a stop takes; two
# signals per command reach them (and each sanitized run is slower).
PER_COMMAND = int(os.environ.get("EMBSTORE_INTERRUPTS", "2" if SANITIZED else "4"))
ROWS = 10000 if SANITIZED else 40000
DIM = 1024
LIMIT = 2.0 if SANITIZED else 0.5  # seconds from the signal to the exit


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(*args, env=None, **kw):
    return subprocess.run([EMB, *args], capture_output=True, env=env, **kw)


# The Python side: the verb, with the same arguments as the command.
PY_CHILD = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import embstore
verb, args, kwargs = eval(sys.argv[2])
if os.environ.get("SIGTERM_HANDLER"):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
print("ready", flush=True)
try:
    getattr(embstore, verb)(*args, **kwargs)
except BaseException as e:  # KeyboardInterrupt, or SystemExit from the SIGTERM handler
    print(type(e).__name__, *getattr(e, "__notes__", []), flush=True)
    if isinstance(e, KeyboardInterrupt):
        sys.exit(7)
    raise
print("done", flush=True)
"""


def shell_loop_and_ignored(d, env):
    out = os.path.join(d, "loop")
    os.mkdir(out)
    gen = f"{EMB} generate --rows {ROWS} --dim {DIM} --no-fsync -T 2"
    # A loop in a shell without job control, Ctrl-C sent to the whole
    # process group (as a terminal does) while one of them runs.
    # (Forty commands: still running when the signal comes, however fast.)
    p = subprocess.Popen(["bash", "-c", f"for i in $(seq 40); do {gen} -o {out}/$i.emb; echo next; done"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(0.1)
    os.killpg(p.pid, signal.SIGINT)
    o, e = p.communicate()
    # The commands that finished before it each wrote their table and said
    # "next"; no other one started after it. The one it stopped wrote
    # nothing, unless the signal came in the instant after its work was
    # done: then its table is there, whole.
    done = o.count(b"next")
    left = sorted(os.listdir(out))
    finished = sorted(f"{i}.emb" for i in range(1, done + 1))
    whole = all(run("verify", os.path.join(out, f), env=env).returncode == 0 for f in left)
    check("a shell loop of commands stops at Ctrl-C (the shell sees its child die by SIGINT)",
          p.returncode == -signal.SIGINT and done < 40 and whole and
          left in (finished, sorted(finished + [f"{done + 1}.emb"])),
          f"exit {p.returncode}, stdout {o!r}, stderr {e[-300:]!r}, left {left}")
    for f in os.listdir(out):
        os.unlink(os.path.join(out, f))
    # Started with SIGINT ignored: it stays ignored (a table four times the
    # size, still being made when the signal comes).
    big = f"{EMB} generate --rows {4 * ROWS} --dim {DIM} --no-fsync -T 2"
    p = subprocess.Popen(big.split() + ["-o", os.path.join(out, "ignored.emb")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    time.sleep(0.05 if not SANITIZED else 0.2)
    p.send_signal(signal.SIGINT)
    o, e = p.communicate()
    check("a command started with SIGINT ignored ignores it and finishes",
          p.returncode == 0 and os.listdir(out) == ["ignored.emb"], f"exit {p.returncode}, {e[-300:]!r}")


def main():
    d = tempfile.mkdtemp(prefix="embstore-interrupt-")
    shm = os.path.join(d, "shm")
    os.mkdir(shm)
    env = dict(os.environ, EMBSTORE_SHM_DIR=shm)
    rng = random.Random(11)
    src = {}
    for v, seed in (("old", "1"), ("new", "2")):
        p = os.path.join(d, f"{v}.emb")
        run("generate", "--rows", str(ROWS), "--dim", str(DIM), "--seed", seed, "--no-fsync", "-o", p, check=True)
        run("compress", p, "-o", os.path.join(d, f"{v}.embz"), "--no-fsync", "-q", check=True)
        run("export", p, "-o", os.path.join(d, f"{v}.npy"), "--no-fsync", "-q", check=True)
        src[v] = p
    out = os.path.join(d, "out")
    os.mkdir(out)
    j = os.path.join

    # name: (command argv for version v, python (verb, args, kwargs) for v, destination or None)
    commands = {
        "generate": (lambda v: ["generate", "--rows", str(ROWS), "--dim", str(DIM), "--seed", "1" if v == "old" else "2",
                                "--no-fsync", "-T", "2", "-o", j(out, "t.emb")],
                     lambda v: ("generate", [ROWS, DIM, 1 if v == "old" else 2],
                                {"path": j(out, "t.emb"), "fsync": False, "threads": 2}),
                     j(out, "t.emb")),
        "compress": (lambda v: ["compress", src[v], "-o", j(out, "t.embz"), "-f", "-q", "--no-fsync", "-T", "2"],
                     lambda v: ("compress", [src[v], j(out, "t.embz")], {"force": True, "fsync": False, "threads": 2}),
                     j(out, "t.embz")),
        "decompress": (lambda v: ["decompress", j(d, f"{v}.embz"), "-o", j(out, "d.emb"), "-f", "-q", "--no-fsync",
                                  "-T", "2"],
                       lambda v: ("decompress", [j(d, f"{v}.embz"), j(out, "d.emb")],
                                  {"force": True, "fsync": False, "threads": 2}),
                       j(out, "d.emb")),
        "verify": (lambda v: ["verify", j(d, f"{v}.embz"), "-T", "2"],
                   lambda v: ("verify", [j(d, f"{v}.embz")], {"threads": 2}),
                   None),
        "import": (lambda v: ["import", j(d, f"{v}.npy"), "-o", j(out, "i.emb"), "-f", "-q", "--no-fsync"],
                   lambda v: ("import_table", [j(d, f"{v}.npy"), j(out, "i.emb")], {"force": True, "fsync": False}),
                   j(out, "i.emb")),
        "export": (lambda v: ["export", j(d, f"{v}.embz"), "-o", j(out, "e.npy"), "-f", "-q", "--no-fsync"],
                   lambda v: ("export_table", [j(d, f"{v}.embz"), j(out, "e.npy")], {"force": True, "fsync": False}),
                   j(out, "e.npy")),
        "share": (lambda v: ["share", j(d, f"{v}.embz"), "--name", "t", "-f", "-q", "-T", "2"],
                  lambda v: ("share", [j(d, f"{v}.embz"), "t"], {"force": True, "threads": 2}),
                  j(shm, "embstore-t")),
    }

    def start(front, argv, pyargs, e):
        if front == "cli":
            return subprocess.Popen([EMB, *argv], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p = subprocess.Popen([sys.executable, "-c", PY_CHILD, MODULE_DIR, repr(pyargs)], env=e,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline()
        assert line == b"ready\n", line + p.stderr.read()
        return p

    stops, total = [], 0
    try:
        for name, (argv, pyargs, dest) in commands.items():
            folder = os.path.dirname(dest) if dest else out
            # The module's signal handling is the same for every verb: a
            # sanitizer build tries it on two.
            fronts = ("cli", "python") if not SANITIZED or name in ("generate", "share") else ("cli",)
            for front in fronts:
                # The new version's bytes, then the old one in place, timed.
                hashes, took = {}, 1e9
                for v in ("new", "old"):
                    t0 = time.perf_counter()
                    p = start(front, argv(v), pyargs(v), env)
                    if front == "python":
                        t0 = time.perf_counter()  # from "ready": the work itself
                    o, e = p.communicate()
                    took = min(took, time.perf_counter() - t0)
                    assert p.returncode == 0, (name, front, o, e)
                    if dest:
                        hashes[v] = digest(dest)
                before = sorted(os.listdir(folder))
                interrupted, finished, early = 0, 0, 0
                # Stratified: one point in each slot, so that most points
                # fall inside the work however the draws go.
                points = [0.1 + 0.6 * (k + rng.random()) / PER_COMMAND for k in range(PER_COMMAND)]
                rng.shuffle(points)

                failures = []
                fail = failures.append
                for k in range(PER_COMMAND):
                    sig = (signal.SIGINT, signal.SIGTERM)[k % 2]
                    named = k % 4 >= 2
                    e = dict(env, EMBSTORE_NAMED_TEMP="1") if named else dict(env)
                    if front == "python" and sig == signal.SIGTERM:
                        e["SIGTERM_HANDLER"] = "1"  # Python's default for SIGTERM is to die at once
                    p = start(front, argv("new"), pyargs("new"), e)
                    delay = points[k] * took
                    time.sleep(delay)
                    sent = time.perf_counter()
                    p.send_signal(sig)
                    o, err = p.communicate()
                    stop = time.perf_counter() - sent
                    o, err = o.decode(errors="replace"), err.decode(errors="replace")
                    what = f"{front} {name}, {signal.Signals(sig).name}{', named temporary files' if named else ''}"
                    before_work = False
                    if front == "cli":
                        done = p.returncode == 0
                        said = f"interrupted by {signal.Signals(sig).name}; nothing was written" in err
                        stopped = p.returncode == -sig and said
                        # Killed by the signal's default action, without a
                        # word: before the work's handlers were in place, or
                        # after they were taken down (the work done).
                        before_work = p.returncode == -sig and not err
                    else:
                        raised = "KeyboardInterrupt" if sig == signal.SIGINT else "SystemExit"
                        code = 7 if sig == signal.SIGINT else 143
                        stopped = p.returncode == code and o.startswith(raised) and "stopped; nothing was written" in o
                        # the work had finished when the signal reached Python's handler
                        done = (p.returncode in (0, -sig) and o.endswith("done\n")) or (
                            p.returncode == code and o.strip() == raised)
                    if not (done or stopped or before_work):
                        fail(f"{what}: exit {p.returncode}, stdout {o[-300:]!r}, stderr {err[-500:]!r}")
                    if stopped:
                        interrupted += 1
                        stops.append(stop)
                        if stop > LIMIT:
                            fail(f"{what}: stopped {stop:.3f} s after the signal")
                    elif done:
                        finished += 1
                        # The work took less than `delay` this time (the
                        # machine was busier when it was timed).
                        took = min(took, delay)
                    else:
                        early += 1
                    left = sorted(os.listdir(folder))
                    if left != before:
                        fail(f"{what}: left {sorted(set(left) - set(before))} (before: {before}, after: {left})")
                    now = digest(dest) if dest and os.path.exists(dest) else None
                    if dest:
                        # Stopped work leaves the old file; finished work the
                        # new one; a kill by the default action either.
                        want = {hashes["new"]} if done else {hashes["old"]}
                        if before_work:
                            want = {hashes["old"], hashes["new"]}
                        if now not in want:
                            fail(f"{what}: exit {p.returncode}: the destination is not the "
                                 f"{'new' if done else 'old'} file, whole")
                    if dest and now != hashes["old"]:
                        restore = start(front, argv("old"), pyargs("old"), env)
                        restore.communicate()
                check(f"{front} {name}: {PER_COMMAND} signals (SIGINT, SIGTERM) stop it within {LIMIT} s, and "
                      f"leave the old destination whole and nothing beside it", not failures,
                      "; ".join(failures))
                # (Not asked of each command in a sanitizer build: two
                # signals, and start-up times that vary more.)
                check(f"{front} {name}: signals found it running ({interrupted} stopped it, {finished} came "
                      f"after the work, {early} before it or after)", interrupted >= 1 or SANITIZED, "")
                total += PER_COMMAND
        share = 0.4 if SANITIZED else 0.6
        check(f"{len(stops)} of {total} signals stopped the work (at least {share:.0%})", len(stops) >= share * total, "")
        stops.sort()
        shell_loop_and_ignored(d, env)
        if stops:
            print(f"note: {len(stops)} stops; median {1e3 * stops[len(stops) // 2]:.1f} ms, "
                  f"slowest {1e3 * stops[-1]:.1f} ms after the signal", flush=True)
    finally:
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    sys.exit(run_tests("interrupt_test", [("interrupt", main)]))

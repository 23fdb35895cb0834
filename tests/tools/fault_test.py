#!/usr/bin/python3
"""Crashes, full disks and file-size limits (run by ctest):
    fault_test.py EMBSTORE [KILLS_PER_COMMAND] [--sanitized]

For every command that writes (generate, compress, decompress, import,
export, share):
- SIGKILL at random points (uniform over 1.2x the command's own run time):
  afterwards the destination is the previous complete file or the new
  complete one, and it verifies. Beside it there may be a hidden
  ".embstore-tmp-<16 hex>" file and nothing else: with unnamed temporary
  files (O_TMPFILE) only when the kill fell between naming the new file and
  renaming it over the old one; with named ones (EMBSTORE_NAMED_TEMP=1, as
  on filesystems without O_TMPFILE) at any point. The next run of the
  command removes it.
- A writer's temporary file is never removed by another writer while the
  first is alive, even from another PID namespace (unshare -p: its process
  id means nothing here). Staleness is decided by the writer's lock.
- RLIMIT_FSIZE of 1 MB: exit 1, a message naming the limit, the previous
  destination untouched.
- A 1 MB tmpfs (when this machine lets us mount one): exit 1, "no space
  left on device", nothing left.

A sanitizer build (--sanitized) writes tables of 5,000 rows instead of
20,000 (still 20 MB, past every 1 MB limit here): each sanitized run is
slower, and the sanitizers look for memory errors on the paths a kill
takes, which the smaller table reaches too.
"""

import hashlib
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time

from checks import check, run as run_tests

EMB = sys.argv[1]
KILLS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
ROWS = "5000" if "--sanitized" in sys.argv[3:] else "20000"
TEMP = re.compile(r"^\.embstore-tmp-[0-9a-f]{16}$")

def run(*args, env=None, **kw):
    return subprocess.run([EMB, *args], capture_output=True, env=env, **kw)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def free_pid():
    """A process id that no process has here, away from the ones in use."""
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    used = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    last = int(open("/proc/sys/kernel/ns_last_pid").read())  # new processes here take the ids after it
    free = [pid for pid in range(1000, pid_max) if pid not in used and not 0 <= pid - last < 5000]
    if not free:
        raise RuntimeError("no free pid")
    return random.Random(os.getpid()).choice(free)


def live_writer_in_another_pid_namespace(d, out, env):
    """A slow writer with named temporary files runs in a new PID namespace
    under a process id that is free in ours; writers here, into the same
    folder, must not take its temporary file for a dead process's.
    (Judging by kill(pid, 0) they did: the writer lost its file and failed
    after all its work.)"""
    if os.geteuid() != 0 or subprocess.run(["unshare", "-p", "-f", "true"], capture_output=True).returncode != 0:
        print("note: cannot make a PID namespace here; the other-namespace case is not run", flush=True)
        return
    pid = free_pid()
    e = dict(env, EMBSTORE_NAMED_TEMP="1")
    slow = os.path.join(out, "slow.emb")
    # In the new namespace sh is pid 1; ns_last_pid makes its child (the
    # writer) take `pid`, which no process has in ours.
    script = (f"echo {pid - 1} > /proc/sys/kernel/ns_last_pid && "
              f"{EMB} generate --rows 200000 --dim 256 --threads 1 -o {slow} --no-fsync; echo exit=$?")
    p = subprocess.Popen(["unshare", "-p", "-f", "--mount-proc", "sh", "-c", script], env=e,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = False
    deadline = time.monotonic() + 30
    while p.poll() is None and time.monotonic() < deadline:
        temps = [f for f in os.listdir(out) if TEMP.match(f)]
        seen = seen or bool(temps)
        # Other writers in the same folder, from this namespace.
        run("generate", "--rows", "10", "--dim", "4", "-o", os.path.join(out, "quick.emb"), "--no-fsync", env=e)
        time.sleep(0.01)
    stdout, stderr = p.communicate(timeout=60)
    check("a writer in another PID namespace has a temporary file while it works", seen, "never saw one")
    check("its temporary file is not taken for a dead writer's: it finishes",
          b"exit=0" in stdout and os.path.exists(slow), (stdout + stderr).decode()[-500:])
    if os.path.exists(slow):
        r = run("verify", slow)
        check("and what it wrote verifies", r.returncode == 0, r.stderr.decode())
    for f in ("slow.emb", "quick.emb"):
        if os.path.exists(os.path.join(out, f)):
            os.unlink(os.path.join(out, f))


def kills_limits_and_full_disks():
    d = tempfile.mkdtemp(prefix="embstore-fault-")
    env = dict(os.environ, EMBSTORE_SHM_DIR=os.path.join(d, "shm"))
    os.mkdir(env["EMBSTORE_SHM_DIR"])
    rng = random.Random(7)
    try:
        # Inputs, and two versions of every output: "old" is in place before
        # the killed runs, "new" is what a finished run writes.
        src = {}
        for v, seed in (("old", "1"), ("new", "2")):
            p = os.path.join(d, f"{v}.emb")
            run("generate", "--rows", ROWS, "--dim", "1024", "--seed", seed, "--no-fsync", "-o", p, check=True)
            run("compress", p, "-o", os.path.join(d, f"{v}.embz"), "--no-fsync", check=True)
            run("export", p, "-o", os.path.join(d, f"{v}.npy"), "--no-fsync", check=True)
            src[v] = p
        out = os.path.join(d, "out")
        os.mkdir(out)
        shm_file = os.path.join(env["EMBSTORE_SHM_DIR"], "embstore-crash")
        commands = {
            # name: (argv for version v, destination, how to check it)
            "generate": (lambda v: ["generate", "--rows", ROWS, "--dim", "1024", "--seed", "1" if v == "old" else "2",
                                    "--no-fsync", "-o", os.path.join(out, "t.emb")], os.path.join(out, "t.emb"), "emb"),
            "compress": (lambda v: ["compress", src[v], "-o", os.path.join(out, "t.embz"), "-f", "--no-fsync"],
                         os.path.join(out, "t.embz"), "emb"),
            "decompress": (lambda v: ["decompress", os.path.join(d, f"{v}.embz"), "-o", os.path.join(out, "d.emb"), "-f",
                                      "--no-fsync"], os.path.join(out, "d.emb"), "emb"),
            "import": (lambda v: ["import", os.path.join(d, f"{v}.npy"), "-o", os.path.join(out, "i.emb"), "-f", "-q",
                                  "--no-fsync"], os.path.join(out, "i.emb"), "emb"),
            "export": (lambda v: ["export", src[v], "-o", os.path.join(out, "e.npy"), "-f", "-q", "--no-fsync"],
                       os.path.join(out, "e.npy"), "npy"),
            "share": (lambda v: ["share", src[v], "--name", "crash", "-f", "-q"], shm_file, "shm"),
        }

        def state_ok(name, dest, kind, allowed, temps_allowed=False):
            folder = os.path.dirname(dest)
            left = sorted(os.listdir(folder))
            expected = sorted({os.path.basename(p) for p in allowed_files(folder)})
            if not os.path.exists(dest):
                return False, f"{dest} is gone"
            h = digest(dest)
            if h not in allowed:
                return False, "the destination is neither the old file nor the new one"
            if kind in ("emb",):
                r = run("verify", dest, env=env)
                if r.returncode != 0:
                    return False, r.stdout.decode() + r.stderr.decode()
            if kind == "shm":
                r = run("verify", "shm:crash", env=env)
                if r.returncode != 0:
                    return False, r.stderr.decode()
            extra = [f for f in left if f not in expected]
            if temps_allowed:
                extra = [f for f in extra if not TEMP.match(f)]
            return not extra and all(f in left for f in expected), f"files beside it: {left}"

        files = {}

        def allowed_files(folder):
            return [p for p in files.values() if os.path.dirname(p) == folder]

        for name, (argv, dest, kind) in commands.items():
            files[name] = dest
            # The previous file, and the hashes of both versions.
            run(*argv("new"), env=env, check=True)
            new_hash = digest(dest)
            t0 = time.perf_counter()
            run(*argv("old"), env=env, check=True)
            took = time.perf_counter() - t0
            old_hash = digest(dest)
            for named in (False, True):
                e = dict(env, EMBSTORE_NAMED_TEMP="1") if named else env
                worst = ""
                left_temp = 0
                for _ in range(KILLS):
                    p = subprocess.Popen([EMB, *argv("new")], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(rng.uniform(0, 1.2 * took))
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    ok, detail = state_ok(name, dest, kind, (old_hash, new_hash), temps_allowed=True)
                    if not ok:
                        worst = detail
                    left_temp += any(TEMP.match(f) for f in os.listdir(os.path.dirname(dest)))
                    # back to the old file for the next kill; that run removes any temporary left
                    run(*argv("old"), env=e, check=True)
                    ok, detail = state_ok(name, dest, kind, (old_hash,))
                    if not ok:
                        worst = "the next run did not remove what the killed one left: " + detail
                kind_of_temp = "named temporary files" if named else "unnamed temporary files"
                check(f"{name}: {KILLS} kills with {kind_of_temp} leave the old or the new file, whole, and at "
                      f"most a hidden temporary file that the next run removes", not worst, worst)
                print(f"note: {name}, {kind_of_temp}: {left_temp} of {KILLS} kills left a hidden temporary file",
                      flush=True)

            # A file-size limit below the output's size.
            def limit():
                resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
            r = subprocess.run([EMB, *argv("new")], env=env, capture_output=True, preexec_fn=limit)
            check(f"{name}: a file-size limit is a clear error", r.returncode == 1 and b"file-size limit" in r.stderr,
                  f"exit {r.returncode}: {r.stderr.decode()[:300]}")
            ok, detail = state_ok(name, dest, kind, (old_hash,))
            check(f"{name}: a file-size limit leaves the old file alone", ok, detail)

        live_writer_in_another_pid_namespace(d, out, env)

        # A full disk: a 1 MB tmpfs.
        full = os.path.join(d, "full")
        os.mkdir(full)
        if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", full],
                                               capture_output=True).returncode == 0:
            try:
                fenv = dict(env, EMBSTORE_SHM_DIR=full)
                cases = {
                    "generate": ["generate", "--rows", ROWS, "--dim", "1024", "-o", os.path.join(full, "t.emb")],
                    "compress": ["compress", src["old"], "-o", os.path.join(full, "t.embz")],
                    "decompress": ["decompress", os.path.join(d, "old.embz"), "-o", os.path.join(full, "t.emb")],
                    "import": ["import", os.path.join(d, "old.npy"), "-o", os.path.join(full, "t.emb")],
                    "export": ["export", src["old"], "-o", os.path.join(full, "t.npy")],
                    "share": ["share", src["old"], "--name", "full"],
                }
                for name, argv in cases.items():
                    r = run(*argv, env=fenv)
                    check(f"{name}: a full disk is a clear error", r.returncode == 1 and b"no space left on device" in r.stderr,
                          f"exit {r.returncode}: {r.stderr.decode()[:300]}")
                    check(f"{name}: a full disk leaves nothing", os.listdir(full) == [], str(os.listdir(full)))
            finally:
                subprocess.run(["umount", full])
        else:
            print("note: cannot mount a tmpfs here; the full-disk cases are not run", flush=True)
    finally:
        subprocess.run(["rm", "-rf", d])


def main():
    return run_tests("fault_test", [kills_limits_and_full_disks])


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""What is at the destination, and what appears there meanwhile:
    destination_test.py EMBSTORE MODULE_DIR

- A destination that exists and is not a regular file is never replaced:
  generate, compress, decompress, import and export (without -f, and with
  -f where the command has it) into a FIFO, a character device (root
  only), a symlink to a FIFO and a symlink to a character device exit 1
  with "is a FIFO, not a regular file" / "is a character device, not a
  regular file", never hang, leave the node (and the symlink) as it was
  and nothing else in the folder. The same for the Python functions
  generate, compress, decompress, import_table and export_table (force=True
  where they take it): embstore.StorageError, the node left alone.
- /dev/null itself, in a private mount namespace over a tmpfs /dev (root
  only): generate refuses it and it stays a character device.
- No-overwrite is atomic: compress, decompress, import and export without
  -f, stopped (SIGSTOP) once their temporary file exists (unnamed, and
  named with EMBSTORE_NAMED_TEMP=1), while a file is created at the
  destination, then continued: exit 1, "already exists", that file
  unchanged, no temporary left. The same for embstore.compress(force=False)
  in a Python process. A destination there from the start is refused at
  once without -f and replaced with -f.
- A name too long for its folder fails before any work, giving its length
  in bytes, and leaves nothing.
"""

import faulthandler
import os
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, run as run_tests  # noqa: E402

EMB, MODULE_DIR = sys.argv[1], os.path.abspath(sys.argv[2])
sys.path.insert(0, MODULE_DIR)
import embstore  # noqa: E402

TIMEOUT = 30  # seconds for any one command; a FIFO must never make one wait
ROOT = os.geteuid() == 0
TYPE_TEXT = {"fifo": "is a FIFO, not a regular file", "chardev": "is a character device, not a regular file"}


def run(argv, env=None):
    """(exit code, stderr); exit code None when the command hung."""
    try:
        r = subprocess.run(argv, capture_output=True, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"no answer after {TIMEOUT} s"
    return r.returncode, r.stderr.decode(errors="replace")


def emb(*args, env=None):
    return run([EMB, *args], env=env)


# ---- nodes that are not regular files ------------------------------------------

def node_kinds():
    kinds = ["fifo", "link-fifo"]
    if ROOT:
        kinds += ["chardev", "link-chardev"]
    else:
        print("SKIPPED character devices: mknod needs root", flush=True)
    return kinds


def make_node(folder, name, kind):
    """Makes `name` in a new `folder`: a FIFO or a character device (1, 3),
    or a symlink to one made beside it. Returns its path."""
    os.mkdir(folder)
    path = os.path.join(folder, name)
    node = os.path.join(folder, "target") if kind.startswith("link-") else path
    if kind.endswith("fifo"):
        os.mkfifo(node)
    else:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    if node != path:
        os.symlink("target", path)
    return path


def snapshot(folder):
    """Every entry of the folder: its type, inode, device number, link text."""
    out = {}
    for name in sorted(os.listdir(folder)):
        st = os.lstat(os.path.join(folder, name))
        link = os.readlink(os.path.join(folder, name)) if stat.S_ISLNK(st.st_mode) else None
        out[name] = (stat.S_IFMT(st.st_mode), st.st_ino, st.st_rdev, link)
    return out


def still_there(path, kind, before):
    """The node (through the symlink) is still what it was, and the folder
    holds nothing new."""
    folder = os.path.dirname(path)
    after = snapshot(folder)
    try:
        st = os.stat(path)
    except OSError as e:
        return False, f"{path}: {e}"
    is_type = stat.S_ISFIFO(st.st_mode) if kind.endswith("fifo") else stat.S_ISCHR(st.st_mode)
    return is_type and after == before, f"before {before}, after {after}"


def cli_writers(small):
    """name: (argv for a destination, has -f, the destination's file name)."""
    return {
        "generate": (lambda d: ["generate", "--rows", "6", "--dim", "4", "-o", d], False, "x.emb"),
        "compress": (lambda d: ["compress", small["emb"], "-o", d, "-q"], True, "x.embz"),
        "decompress": (lambda d: ["decompress", small["embz"], "-o", d, "-q"], True, "x.emb"),
        "import": (lambda d: ["import", small["npy"], "-o", d, "-q"], True, "x.emb"),
        "export": (lambda d: ["export", small["emb"], "-o", d, "-q"], True, "x.npy"),
    }


def test_nodes_cli(d, small, kinds):
    n = 0
    for kind in kinds:
        for name, (argv, has_force, file_name) in cli_writers(small).items():
            for force in ([False, True] if has_force else [False]):
                n += 1
                path = make_node(os.path.join(d, f"node{n}"), file_name, kind)
                before = snapshot(os.path.dirname(path))
                code, err = emb(*argv(path), *(["-f"] if force else []))
                what = f"{name}{' -f' if force else ''} into a {kind}"
                check(f"{what}: exit 1, '{TYPE_TEXT[kind.split('-')[-1]]}'",
                      code == 1 and TYPE_TEXT[kind.split("-")[-1]] in err, f"exit {code}: {err[:300]}")
                ok, detail = still_there(path, kind, before)
                check(f"{what}: left as it was, nothing beside it", ok, detail)


def python_writers(small):
    return {
        "generate": lambda d: embstore.generate(6, 4, path=d, fsync=False),
        "compress": lambda d: embstore.compress(small["emb"], d, force=True, fsync=False),
        "decompress": lambda d: embstore.decompress(small["embz"], d, force=True, fsync=False),
        "import_table": lambda d: embstore.import_table(small["npy"], d, force=True, fsync=False),
        "export_table": lambda d: embstore.export_table(small["emb"], d, force=True, fsync=False),
    }


def test_nodes_python(d, small, kinds):
    n = 0
    for kind in kinds:
        for name, call in python_writers(small).items():
            n += 1
            path = make_node(os.path.join(d, f"py{n}"), "x.npy" if name == "export_table" else "x.emb", kind)
            before = snapshot(os.path.dirname(path))
            try:
                call(path)
                raised = None
            except Exception as e:  # noqa: BLE001 - the type is what is checked
                raised = e
            text = TYPE_TEXT[kind.split("-")[-1]]
            check(f"python {name} into a {kind}: embstore.StorageError (an OSError), '{text}'",
                  isinstance(raised, embstore.StorageError) and isinstance(raised, embstore.Error) and
                  isinstance(raised, OSError) and text in str(raised), repr(raised))
            ok, detail = still_there(path, kind, before)
            check(f"python {name} into a {kind}: left as it was, nothing beside it", ok, detail)


def test_dev_null():
    if not ROOT:
        print("SKIPPED /dev/null in a private mount namespace: needs root", flush=True)
        return
    script = (f"mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 && "
              f"{shlex.quote(EMB)} generate --rows 6 --dim 4 -o /dev/null; echo \"exit=$?\"; stat -c %F /dev/null")
    code, out = None, ""
    try:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                           timeout=TIMEOUT)
        code, out, err = r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        check("generate -o /dev/null answers", False, f"no answer after {TIMEOUT} s")
        return
    except OSError as e:
        code, err = None, str(e)
    lines = out.splitlines()
    if code != 0 or not lines or not lines[0].startswith("exit="):
        print(f"SKIPPED /dev/null in a private mount namespace: unshare/mount failed: {err.strip()[:200]}", flush=True)
        return
    check("generate -o /dev/null: exit 1, 'is a character device'",
          lines[0] == "exit=1" and TYPE_TEXT["chardev"] in err, f"{out!r} {err[:300]!r}")
    check("generate -o /dev/null: /dev/null is still a character device",
          lines[1:2] == ["character special file"], repr(out))


# ---- a file that appears while the command runs --------------------------------

def wait_stopped(pid):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in "TtZX":
            return
        time.sleep(0.001)


def stop_when_writing(p, folder):
    """Polls the process's descriptors about every millisecond until one is
    in `folder` (its temporary file), then stops the process there. Returns
    that descriptor's link text, or None if the process ended first."""
    fd_dir, prefix = f"/proc/{p.pid}/fd", folder + "/"
    deadline = time.monotonic() + TIMEOUT
    while p.poll() is None and time.monotonic() < deadline:
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            break
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith(prefix):
                os.kill(p.pid, signal.SIGSTOP)
                wait_stopped(p.pid)
                return target
        time.sleep(0.001)
    return None


def race(argv, dst, env=None, attempts=5):
    """Runs argv, stops it once its temporary file is in dst's folder, puts
    b"precious\\n" at dst, lets it go on. Returns (exit code, stderr, the
    temporary's link text), or a reason it could not be stopped in time."""
    folder = os.path.dirname(dst)
    why = ""
    for _ in range(attempts):
        if os.path.lexists(dst):
            os.unlink(dst)
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            temp = stop_when_writing(p, folder)
            placed = False
            if temp is not None:
                try:
                    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    os.write(fd, b"precious\n")
                    os.close(fd)
                    placed = True
                except FileExistsError:
                    why = "the command had put its file in place before it was stopped"
            else:
                why = "the command ended before its temporary file was seen"
            if temp is not None:
                os.kill(p.pid, signal.SIGCONT)
            _, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return None, f"no answer after {TIMEOUT} s", ""
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait()
        if placed:
            return p.returncode, err.decode(errors="replace"), temp
        print(f"note: {os.path.basename(argv[0])} {argv[1]}: {why}; again", flush=True)
    return None, f"never stopped in time in {attempts} attempts: {why}", ""


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        return repr(e)


def race_result_ok(code, err, temp, dst, named):
    folder = os.path.dirname(dst)
    temp_kind_ok = (os.path.basename(temp).startswith(".embstore-tmp-") if named else temp.endswith("(deleted)"))
    left = sorted(os.listdir(folder))
    ok = (code == 1 and "already exists" in err and read(dst) == b"precious\n" and temp_kind_ok and
          left == [os.path.basename(dst)])
    return ok, f"exit {code}, temp {temp!r}, content {read(dst)[:40]!r}, folder {left}: {err[:300]}"


def test_race(d, big):
    out = os.path.join(d, "race")
    os.mkdir(out)
    commands = {
        "compress": lambda dst: ["compress", big["emb"], "-o", dst],
        "decompress": lambda dst: ["decompress", big["embz"], "-o", dst],
        "import": lambda dst: ["import", big["npy"], "-o", dst],
        "export": lambda dst: ["export", big["emb"], "-o", dst],
    }
    plain = {k: v for k, v in os.environ.items() if k != "EMBSTORE_NAMED_TEMP"}
    for named in (False, True):
        env = dict(plain, EMBSTORE_NAMED_TEMP="1") if named else plain
        temps = "named temporary files" if named else "unnamed temporary files"
        for name, argv in commands.items():
            dst = os.path.join(out, "r.npy" if name == "export" else "r.emb")
            code, err, temp = race([EMB, *argv(dst), "--no-fsync", "-q"], dst, env=env)
            ok, detail = race_result_ok(code, err, temp, dst, named)
            check(f"{name} without -f, {temps}: a file that appears meanwhile is kept, exit 1 'already exists'",
                  ok, detail)
            if os.path.lexists(dst):
                os.unlink(dst)

    dst = os.path.join(out, "p.embz")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import embstore; "
            "embstore.compress(sys.argv[2], sys.argv[3], fsync=False)")
    rc, err, temp = race([sys.executable, "-c", code, MODULE_DIR, big["emb"], dst], dst, env=plain)
    # A Python error exits 1, as the command does.
    ok, detail = race_result_ok(rc, err, temp, dst, False)
    check("python compress(force=False): a file that appears meanwhile is kept, AlreadyExistsError",
          ok and "AlreadyExistsError" in err, detail)


def test_existing(d, small):
    out = os.path.join(d, "existing")
    os.mkdir(out)
    for name, (argv, has_force, file_name) in cli_writers(small).items():
        if not has_force:
            continue
        dst = os.path.join(out, file_name)
        with open(dst, "wb") as f:
            f.write(b"precious\n")
        code, err = emb(*argv(dst))
        check(f"{name} without -f: an existing file is refused at once, 'already exists; use -f'",
              code == 1 and "already exists; use -f" in err and read(dst) == b"precious\n",
              f"exit {code}, content {read(dst)[:40]!r}: {err[:300]}")
        code, err = emb(*argv(dst), "-f")
        check(f"{name} -f: an existing file is replaced",
              code == 0 and read(dst) not in (b"precious\n", b"") and sorted(os.listdir(out)) == [file_name],
              f"exit {code}, content {read(dst)[:40]!r}, folder {os.listdir(out)}: {err[:300]}")
        os.unlink(dst)


def test_long_name(d):
    folder = os.path.join(d, "long")
    os.mkdir(folder)
    code, err = emb("generate", "--rows", "200000", "--dim", "1024", "--no-fsync",
                    "-o", os.path.join(folder, "a" * 256 + ".emb"))
    check("generate into a 260-byte name: fails before the work, 'the name is 260 bytes'",
          code not in (0, None) and "the name is 260 bytes" in err, f"exit {code}: {err[:300]}")
    check("generate into a 260-byte name: nothing left", os.listdir(folder) == [], str(os.listdir(folder)))


def make_inputs(d):
    small = {"emb": os.path.join(d, "in", "t.emb"), "embz": os.path.join(d, "in", "t.embz"),
             "npy": os.path.join(d, "in", "t.npy")}
    big = {"emb": os.path.join(d, "in", "big.emb"), "embz": os.path.join(d, "in", "big.embz"),
           "npy": os.path.join(d, "in", "big.npy")}
    os.mkdir(os.path.join(d, "in"))
    for files, rows, dim in ((small, "6", "4"), (big, "20000", "1024")):
        for argv in (["generate", "--rows", rows, "--dim", dim, "--no-fsync", "-o", files["emb"]],
                     ["compress", files["emb"], "-o", files["embz"], "--no-fsync", "-q"],
                     ["export", files["emb"], "-o", files["npy"], "--no-fsync", "-q"]):
            code, err = emb(*argv)
            if code != 0:
                raise RuntimeError(f"{argv}: exit {code}: {err}")
    return small, big


def main():
    # The Python functions run in this process: a hang there ends the test.
    faulthandler.dump_traceback_later(300, exit=True)
    t0 = time.monotonic()
    d = tempfile.mkdtemp(prefix="embstore-destination-")
    try:
        small, big = make_inputs(d)
        kinds = node_kinds()
        return run_tests("destination_test", [
            ("nodes_cli", lambda: test_nodes_cli(d, small, kinds)),
            ("nodes_python", lambda: test_nodes_python(d, small, kinds)),
            ("dev_null", test_dev_null),
            ("race", lambda: test_race(d, big)),
            ("existing", lambda: test_existing(d, small)),
            ("long_name", lambda: test_long_name(d)),
        ])
    finally:
        subprocess.run(["rm", "-rf", d])
        faulthandler.cancel_dump_traceback_later()
        print(f"destination_test: {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())

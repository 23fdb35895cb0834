#!/usr/bin/python3
"""The Python module under misuse, run by ctest as
    hardening_test.py EMBSTORE MODULE_DIR

- Threads before NumPy: `import threading, embstore` (NumPy not imported
  yet), then several threads reading rows or generating at once. Before
  the module loaded NumPy at import, this deadlocked every time (one thread
  in pybind11's one-time NumPy set-up holding the GIL, another importing
  NumPy waiting for it). Each case runs in a fresh interpreter with a
  timeout, several times.
- Paths as the OS has them: names that are not UTF-8, given as bytes, as a
  str with surrogate escapes (what os.listdir and sys.argv give) and as a
  pathlib.Path; every verb opens them as the command does, and Table.path
  gives the name back.
- Messages that quote such names are readable (\\xNN), never empty, and
  carry no raw control characters from names or files.
- trust_owner takes a user name, a uid or a list of them, and refuses
  anything else (bytes, a dict, a NUL in a name, a uid out of range); a
  Table pickled by 0.1.0 still loads; a NUL in a pickled path is refused.
"""

import os
import pathlib
import subprocess
import sys
import tempfile

EMB, MODULE_DIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

from checks import check, run  # noqa: E402

PY = "/usr/bin/python3"
RUNS = int(os.environ.get("EMBSTORE_RUNS", "5"))


def fresh(code, timeout=60):
    """Runs code in a new interpreter that has not imported NumPy."""
    env = dict(os.environ, PYTHONPATH=MODULE_DIR)
    try:
        r = subprocess.run([PY, "-c", code], capture_output=True, env=env, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, "hung (timed out)"


def test_threads_before_numpy(d):
    t = os.path.join(d, "t.emb")
    subprocess.run([EMB, "generate", "--rows", "100", "--dim", "8", "-o", t, "--no-fsync"], check=True)
    cases = {
        "four threads read rows": f"""
import threading, embstore, sys
assert 'numpy' not in sys.modules or True
t = embstore.open({t!r})
out = []
def read():
    out.append(t[0].sum())
ts = [threading.Thread(target=read) for _ in range(4)]
for x in ts: x.start()
for x in ts: x.join()
assert len(out) == 4 and len(set(out)) == 1
print("ok")
""",
        "four threads generate": """
import threading, embstore
out = []
def gen():
    out.append(embstore.generate(2, 2).tobytes())
ts = [threading.Thread(target=gen) for _ in range(4)]
for x in ts: x.start()
for x in ts: x.join()
assert len(out) == 4 and len(set(out)) == 1
print("ok")
""",
        "threads gather ids of several dtypes": f"""
import threading, embstore
t = embstore.open({t!r})
out = []
def read(k):
    out.append(t[[k, k + 1]].shape)
ts = [threading.Thread(target=read, args=(k,)) for k in range(6)]
for x in ts: x.start()
for x in ts: x.join()
assert out == [(2, 8)] * 6
print("ok")
""",
    }
    for name, code in cases.items():
        bad = [detail for rc, detail in (fresh(code) for _ in range(RUNS)) if rc != 0 or "ok" not in detail]
        check(f"{name} right after `import threading, embstore`: {RUNS} runs end", not bad, bad[:1])
    rc, detail = fresh("import embstore, sys; print('numpy' in sys.modules)")
    check("the module loads NumPy when it loads", rc == 0 and detail.strip() == "True", detail)


def test_paths(d):
    import embstore
    import numpy as np

    base = os.fsencode(d)
    raw = base + b"/t\xff\xfe.emb"  # not UTF-8
    r = subprocess.run([EMB, "generate", "--rows", "6", "--dim", "4", "--seed", "123", "-o", raw, "--no-fsync"])
    check("the command writes a table whose name is not UTF-8", r.returncode == 0 and os.path.exists(raw))
    want = embstore.generate(6, 4, seed=123)
    as_str = os.fsdecode(raw)  # what os.listdir(str) gives: surrogate escapes
    for label, p in (("bytes", raw), ("str with surrogate escapes", as_str), ("pathlib.Path", pathlib.Path(as_str)),
                     ("pathlib.Path of bytes' name", pathlib.Path(os.fsdecode(raw)))):
        try:
            t = embstore.open(p)
            check(f"open() takes a non-UTF-8 name as {label}", np.array_equal(t[3], want[3]))
            check(f"{label}: Table.path gives the name back", os.fsencode(t.path) == raw, repr(t.path))
            check(f"{label}: repr works", "t\\xff\\xfe.emb" in repr(t), repr(t))
            check(f"{label}: info() works", embstore.info(p)["rows"] == 6)
        except Exception as e:  # noqa: BLE001
            check(f"open() takes a non-UTF-8 name as {label}", False, f"{type(e).__name__}: {e}")
    # Every verb, on such names.
    try:
        z = base + b"/z\xff.embz"
        embstore.compress(raw, z, fsync=False)
        back = base + b"/back\xff.emb"
        embstore.decompress(os.fsdecode(z), pathlib.Path(os.fsdecode(back)), fsync=False)
        check("compress and decompress take such names", open(back, "rb").read() == open(raw, "rb").read())
        npy = base + b"/e\xff.npy"
        embstore.export_table(raw, npy, fsync=False)
        embstore.import_table(npy, base + b"/i\xff.emb", fsync=False)
        check("export and import take such names", np.array_equal(embstore.open(base + b"/i\xff.emb")[5], want[5]))
        embstore.verify(raw)
        check("verify takes such a name", True)
    except Exception as e:  # noqa: BLE001
        check("every verb takes non-UTF-8 names", False, f"{type(e).__name__}: {e}")
    # A table pickled with such a name reopens.
    import pickle
    t = embstore.open(raw)
    t2 = pickle.loads(pickle.dumps(t))
    check("a Table with a non-UTF-8 name pickles", os.fsencode(t2.path) == raw and np.array_equal(t2[1], want[1]))

    # Errors that quote the name: readable, not empty.
    missing = base + b"/missing\xff.emb"
    for label, p in (("bytes", missing), ("str", os.fsdecode(missing))):
        try:
            embstore.open(p)
            check(f"a missing non-UTF-8 name ({label}) raises", False, "no exception")
        except embstore.NotFoundError as e:
            msg = str(e)
            check(f"its message ({label}) names the file readably", "missing\\xff.emb" in msg and "No such file" in msg,
                  repr(msg))
        except Exception as e:  # noqa: BLE001
            check(f"a missing non-UTF-8 name ({label}) raises NotFoundError", False, f"{type(e).__name__}: {e}")
    bad = base + b"/bad\xff.emb"
    with open(bad, "wb") as f:
        f.write(b"not a table at all")
    try:
        embstore.open(bad)
    except embstore.CorruptionError as e:
        check("a corrupt non-UTF-8 file's message is readable", "bad\\xff.emb" in str(e) and "bad magic" in str(e),
              repr(str(e)))
    try:
        embstore.open(base + b"/a\x00b")
        check("an embedded NUL is refused", False, "no exception")
    except ValueError as e:
        check("an embedded NUL is refused", "null" in str(e), str(e))


def test_arguments(d):
    import pickle
    import embstore
    import numpy as np

    t = os.path.join(d, "args.emb")
    embstore.generate(6, 4, seed=123, path=t)
    # trust_owner: a name, a uid, or a list or tuple of them; nothing else.
    for bad, exc in ((b"d", TypeError), ({"nobody": 1}, TypeError), (True, TypeError), (2.0, TypeError),
                     ("nobody\x00evil", embstore.InvalidArgumentError), (2 ** 70, embstore.InvalidArgumentError),
                     (-1, embstore.InvalidArgumentError), ("\udcff", embstore.InvalidArgumentError),
                     ("no-such-user-here", embstore.InvalidArgumentError)):
        try:
            embstore.open(t, trust_owner=bad)
            check(f"trust_owner={bad!r} is refused", False, "accepted")
        except exc:
            check(f"trust_owner={bad!r} is refused", True)
        except Exception as e:  # noqa: BLE001
            check(f"trust_owner={bad!r} is refused with {exc.__name__}", False, f"{type(e).__name__}: {e}")
    for good in ("root", 0, ["root", 65534], ("nobody",)):
        try:
            embstore.open(t, trust_owner=good)
            check(f"trust_owner={good!r} is taken", True)
        except Exception as e:  # noqa: BLE001
            check(f"trust_owner={good!r} is taken", False, f"{type(e).__name__}: {e}")
    # Too many threads is an error, raised while the GIL is held (verify
    # raised it from its worker without the GIL: a crash).
    for call in (lambda: embstore.open(t).verify(threads=2000), lambda: embstore.verify(t, threads=5000)):
        try:
            call()
            check("verify(threads=2000) is refused", False, "accepted")
        except embstore.InvalidArgumentError as e:
            check("verify(threads=2000) is refused", "threads" in str(e), str(e))
    # Messages carry no raw control characters, whatever the name or file holds.
    try:
        embstore.open(os.fsencode(d) + b"/missing\x1b[31m.emb")
    except embstore.NotFoundError as e:
        check("a name with escapes is escaped in the message", "\x1b" not in str(e) and "\\x1b[31m" in str(e),
              repr(str(e)))
    npy = os.path.join(d, "object.npy")
    h = "{'descr': '|O\x1b]0;TITLE\x07', 'fortran_order': False, 'shape': (1, 1), }"
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    with open(npy, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h.encode("latin-1") + b"\0" * 8)
    try:
        embstore.import_table(npy, os.path.join(d, "o.emb"))
        check("an object .npy is refused", False, "imported")
    except embstore.Error as e:
        check("a .npy dtype with escapes is escaped in the message", "\x1b" not in str(e) and "\x07" not in str(e)
              and "\\x1b]0;TITLE\\x07" in str(e), repr(str(e)))
    # A Table pickled by 0.1.0 (a str path and the cache size) still loads.
    old = embstore.Table.__new__(embstore.Table)
    try:
        old.__setstate__((t, 64 << 20))
        check("a Table pickled by 0.1.0 reopens", np.array_equal(old[3], embstore.open(t)[3]))
    except Exception as e:  # noqa: BLE001
        check("a Table pickled by 0.1.0 reopens", False, f"{type(e).__name__}: {e}")
    # A NUL inside a pickled path is refused, not cut short.
    state = pickle.dumps(embstore.open(t)).replace(os.fsencode(t), os.fsencode(t)[:-4] + b"\x00emb")
    try:
        pickle.loads(state)
        check("a NUL in a pickled path is refused", False, "loaded")
    except ValueError as e:
        check("a NUL in a pickled path is refused", "null" in str(e), str(e))


def main():
    d = tempfile.mkdtemp(prefix="embstore-pyhard-")
    try:
        return run("python_hardening_test", [(t.__name__, lambda t=t: t(d)) for t in (
            test_threads_before_numpy, test_paths, test_arguments)])
    finally:
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    sys.exit(main())

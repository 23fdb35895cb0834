#!/usr/bin/python3
"""The command line at its edges (run by ctest):
    cli_edge_test.py EMBSTORE GOLDEN_DIR

- Ids: a range whose end is 2^64 - 1 is out of range (it once read as "to
  the end" and printed every row).
- stdout that fails (/dev/full) stops the formatting at the first failed
  write: measured as CPU time against the same command into /dev/null.
- compress's zstd-style -N: "--level -1" is a bad level (not --level=1),
  and "-o -1" writes a file named -1.
- What a terminal shows is safe: bytes from a file (a .npy's dtype or an
  unknown key, a safetensors tensor name, a metadata value, a file name)
  are printed with control characters escaped, by import, import --list,
  info and error messages alike.
- Import decides by what was asked: --rows/--dim mean raw float32 even when
  the bytes look like a safetensors file; a .npy dimension NumPy would not
  read ("03") is refused; a (N, 0) array's error names the file.
- Export refuses a corrupt table (a .npy has no checksums, so a re-import
  would launder the damage); compress and export name a bad destination
  before they check the source.
- get --json that fails part way leaves no closed array behind.
"""

import json
import os
import resource
import struct
import subprocess
import sys
import tempfile

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, run  # noqa: E402

EMB = os.path.abspath(sys.argv[1])
GOLDEN = sys.argv[2]
ESC = b"\x1b"


def emb(*args, stdout=None):
    if stdout is None:
        return subprocess.run([EMB, *args], capture_output=True, timeout=120)
    return subprocess.run([EMB, *args], stdout=stdout, stderr=subprocess.PIPE, timeout=120)


def npy(path, header, data=b""):
    """A .npy 1.0 whose header dict is `header` (text, padded as NumPy pads)."""
    h = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h.encode("latin-1"))) + h.encode("latin-1") + data)


def safetensors(path, tensors):
    """tensors: name -> float32 2-D array."""
    header, data = {}, b""
    for name, a in tensors.items():
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def test_ids(d):
    t = os.path.join(d, "t.emb")
    emb("generate", "--rows", "10", "--dim", "3", "-o", t, "--no-fsync")
    r = emb("get", t, "0:18446744073709551615")
    check("get 0:2^64-1 is out of range", r.returncode == 1 and b"out of range" in r.stderr and not r.stdout,
          f"exit {r.returncode}, {len(r.stdout)} bytes out, {r.stderr.decode()}")
    r = emb("get", t, "18446744073709551615")
    check("get 2^64-1 is out of range", r.returncode == 1 and b"out of range" in r.stderr, r.stderr.decode())
    r = emb("get", t, "5:")
    check("get 5: still runs to the end", r.returncode == 0 and r.stdout.count(b"\n") == 5, r.stderr.decode())
    r = emb("get", t, "0:10")
    check("get 0:10 is the whole table", r.returncode == 0 and r.stdout.count(b"\n") == 10, r.stderr.decode())


def cpu_seconds(args, stdout_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(stdout_path, "wb") as out:
        r = subprocess.run([EMB, *args], stdout=out, stderr=subprocess.PIPE, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_full_stdout(d):
    if not os.path.exists("/dev/full"):
        print("note: no /dev/full here; the failed-stdout case is not run", flush=True)
        return
    t = os.path.join(d, "big.emb")
    emb("generate", "--rows", "400000", "--dim", "16", "-o", t, "--no-fsync")
    for mode in ([], ["--json"]):
        r_null, null_cpu = cpu_seconds(["get", t, "0:400000", *mode], "/dev/null")
        r_full, full_cpu = cpu_seconds(["get", t, "0:400000", *mode], "/dev/full")
        label = "get " + (" ".join(mode) or "(text)")
        check(f"{label} into /dev/full fails with the error", r_full.returncode == 1 and b"No space" in r_full.stderr,
              f"exit {r_full.returncode}: {r_full.stderr.decode()}")
        # Formatting 400,000 rows takes a good fraction of a second; stopping
        # at the first failed megabyte takes almost nothing.
        check(f"{label} into /dev/full stops at the first failed write",
              r_null.returncode == 0 and full_cpu < 0.25 * null_cpu,
              f"{full_cpu:.3f} s of CPU into /dev/full vs {null_cpu:.3f} s into /dev/null")


def test_level_flags(d):
    t = os.path.join(d, "t.emb")
    r = emb("compress", t, "-o", os.path.join(d, "x.embz"), "--level", "-1")
    check("--level -1 is a bad level, named as given", r.returncode == 2 and b"--level: '-1'" in r.stderr,
          r.stderr.decode())
    r = emb("compress", t, "-o", os.path.join(d, "y.embz"), "-3", "--no-fsync")
    check("-3 still means --level 3", r.returncode == 0, r.stderr.decode())
    cwd = os.getcwd()
    os.chdir(d)
    try:
        r = emb("compress", t, "-o", "-1", "--no-fsync")
        check("-o -1 writes a file named -1", r.returncode == 0 and os.path.exists(os.path.join(d, "-1")),
              r.stderr.decode())
    finally:
        os.chdir(cwd)


def no_escape(what, r):
    out = r.stdout + r.stderr
    check(f"{what}: no raw control characters reach the terminal", ESC not in out and b"\x9b" not in out, repr(out[:300]))


def test_terminal(d):
    p = os.path.join(d, "descr.npy")
    npy(p, "{'descr': '<f4\x1b[2J\x1b[31m', 'fortran_order': False, 'shape': (1, 1), }", b"\0" * 4)
    r = emb("import", p, "-o", os.path.join(d, "x.emb"))
    no_escape("a .npy dtype with escapes", r)
    check("a .npy dtype with escapes is shown escaped", b"\\x1b[2J" in r.stderr, r.stderr.decode())
    p = os.path.join(d, "key.npy")
    npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), '\x1b]0;pwned\x07': 1, }", b"\0" * 4)
    r = emb("import", p, "-o", os.path.join(d, "x.emb"))
    no_escape("an unknown .npy key with escapes", r)
    check("an unknown .npy key is refused and shown escaped", r.returncode == 1 and b"\\x1b]0;pwned\\x07" in r.stderr,
          r.stderr.decode())
    st = os.path.join(d, "names.safetensors")
    safetensors(st, {"wte\x1b[31m\u009b2J": numpy.ones((3, 2), "f4"), "bias": numpy.ones((2,), "f4")})
    r = emb("import", st, "--list")
    no_escape("import --list of a tensor name with escapes", r)
    check("import --list shows the name escaped", r.returncode == 0 and b"wte\\x1b[31m" in r.stdout, r.stdout.decode())
    r = emb("import", st, "--tensor", "nope", "-o", os.path.join(d, "x.emb"))
    no_escape("an error listing tensor names with escapes", r)
    out = os.path.join(d, "from-st.emb")
    r = emb("import", st, "-o", out)
    check("the tensor imports", r.returncode == 0, r.stderr.decode())
    r = emb("info", out)
    no_escape("info of a table whose metadata holds escapes", r)
    evil = os.path.join(d, "evil\x1b[2J.emb")
    emb("generate", "--rows", "2", "--dim", "2", "-o", evil, "--no-fsync")
    for args in (["info", evil], ["verify", evil], ["get", evil, "7"]):
        no_escape(f"{args[0]} of a file whose name holds escapes", emb(*args))
    r = emb("info", os.path.join(d, "missing\x1b[2J.emb"))
    no_escape("the error for a missing file whose name holds escapes", r)


def test_import_decisions(d):
    # Raw float32 whose first bytes look like a safetensors header: 8 bytes
    # of a small length, then '{'.
    rows, dim = 1000, 4
    a = numpy.arange(rows * dim, dtype="<f4").reshape(rows, dim)
    raw = bytearray(a.tobytes())
    struct.pack_into("<Q", raw, 0, 2)
    raw[8] = ord("{")
    p = os.path.join(d, "looks.f32")
    open(p, "wb").write(raw)
    out = os.path.join(d, "raw.emb")
    r = emb("import", p, "--rows", str(rows), "--dim", str(dim), "-o", out)
    got = emb("get", out, "0:1000", "--raw").stdout if r.returncode == 0 else b""
    check("--rows/--dim mean raw float32, whatever the bytes look like", got == bytes(raw), r.stderr.decode())
    r = emb("import", p, "--format", "safetensors", "--rows", "1000", "--dim", "4", "-o", os.path.join(d, "y.emb"))
    check("--rows with --format safetensors is a usage error", r.returncode == 2 and b"raw" in r.stderr,
          r.stderr.decode())
    p = os.path.join(d, "lead.npy")
    npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (03, 4), }", b"\0" * 48)
    r = emb("import", p, "-o", os.path.join(d, "z.emb"))
    check("a .npy dimension written 03 is refused, as NumPy refuses it",
          r.returncode == 1 and b"leading zero" in r.stderr, r.stderr.decode())
    try:
        numpy.load(p)
        check("NumPy itself refuses it", False, "numpy.load read it")
    except Exception:  # noqa: BLE001
        check("NumPy itself refuses it", True)
    p = os.path.join(d, "empty-rows.npy")
    numpy.save(p, numpy.zeros((5, 0), "f4"))
    r = emb("import", p, "-o", os.path.join(d, "e.emb"))
    check("a (5, 0) array's error names the file", r.returncode != 0 and p.encode() in r.stderr, r.stderr.decode())


def test_export_refuses_corruption(d):
    t = os.path.join(d, "c.emb")
    emb("generate", "--rows", "300", "--dim", "16", "-o", t, "--no-fsync")
    b = bytearray(open(t, "rb").read())
    b[-7] ^= 0x40
    open(t, "wb").write(b)
    for out in ("c.npy", "c.safetensors"):
        r = emb("export", t, "-o", os.path.join(d, out))
        check(f"export of a corrupt table to {out} is refused",
              r.returncode == 1 and b"fails verification" in r.stderr and not os.path.exists(os.path.join(d, out)),
              r.stderr.decode())
    # The destination is checked before the (long) check of the source.
    long_name = os.path.join(d, "x" * 300)
    for args in (["compress", t, "-o", long_name + ".embz"], ["export", t, "-o", long_name + ".npy"],
                 ["compress", t, "-o", os.path.join(d, "no", "such", "folder.embz")]):
        r = emb(*args)
        check(f"{args[0]} names a bad destination before checking the source",
              r.returncode != 0 and b"fails verification" not in r.stderr and
              (b"the name is" in r.stderr or b"cannot open folder" in r.stderr), r.stderr.decode())


def test_json_on_error(golden):
    spliced = os.path.join(golden, "bad", "spliced-frame1.embz")
    r = emb("get", spliced, "0:6", "--json")
    try:
        json.loads(r.stdout)
        parsed = True
    except ValueError:
        parsed = False
    check("get --json that fails leaves no well-formed array to mistake for the answer",
          r.returncode == 1 and not parsed and b"does not match the table's checksum" in r.stderr,
          f"exit {r.returncode}: {r.stdout!r}")


def main():
    d = tempfile.mkdtemp(prefix="embstore-edge-")
    try:
        return run("cli_edge_test", [(t.__name__, lambda t=t: t(d)) for t in (
            test_ids, test_full_stdout, test_level_flags, test_terminal, test_import_decisions,
            test_export_refuses_corruption)] + [("json_on_error", lambda: test_json_on_error(GOLDEN))])
    finally:
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    sys.exit(main())

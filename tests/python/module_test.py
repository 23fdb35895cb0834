#!/usr/bin/python3
"""The Python module, run by ctest as
    module_test.py EMBSTORE GOLDEN_DIR MODULE_DIR

with MODULE_DIR (the build's python/ folder) first on sys.path, so the module
under test is the one just built. PyTorch and NumPy are the oracles; the
embstore command is the reference for bytes and messages (the module is a
thin layer over the same library, so both must agree exactly).

Covers: the API (shape, dtype, metadata, info, array, indexing, gather,
verify, pickling), zero copy (the array lies inside the file's mapping,
torch.from_numpy shares it), nn.Embedding.from_pretrained against t[ids],
every verb as a function, errors as exceptions with the library's message
(every golden bad file), .embz and shm: tables, threads, and lifetime (the
array outlives the Table; the file replaced or deleted under a live array;
mappings and descriptors released when the last array goes).
"""

import gc
import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings

EMB, GOLDEN, MODULE_DIR = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import embstore  # noqa: E402
from checks import check, raises, run  # noqa: E402
from procmem import mapping_ranges  # noqa: E402

# torch.from_numpy warns that the (read-only) mapping is not writable.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")


def cli(*args, ok=True):
    r = subprocess.run([EMB, *map(str, args)], capture_output=True)
    if ok and r.returncode != 0:
        raise RuntimeError(f"embstore {args}: {r.stderr.decode()}")
    return r



def bits_equal(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def torch_table(rows, dim, seed):
    torch.manual_seed(seed)
    return torch.nn.Embedding(rows, dim).weight.detach().numpy()


def test_import():
    # The package build/python/embstore, whose __init__ is the extension.
    check("the module under test is the build's", os.path.dirname(os.path.abspath(embstore.__file__)) ==
          os.path.join(os.path.abspath(MODULE_DIR), "embstore"), embstore.__file__)
    check("it is a package with its stubs and py.typed",
          embstore.__path__ == [os.path.dirname(embstore.__file__)] and
          all(os.path.exists(os.path.join(MODULE_DIR, "embstore", f)) for f in ("__init__.pyi", "py.typed")),
          os.listdir(os.path.join(MODULE_DIR, "embstore")))
    check("__version__", embstore.__version__ == cli("--version").stdout.decode().split()[-1],
          embstore.__version__)
    for name, base in [("InvalidArgumentError", ValueError), ("OutOfRangeError", IndexError),
                       ("NotFoundError", FileNotFoundError), ("AlreadyExistsError", FileExistsError),
                       ("StorageError", OSError), ("CorruptionError", embstore.Error),
                       ("NotSupportedError", embstore.Error)]:
        cls = getattr(embstore, name)
        check(f"{name} is an embstore.Error and a {base.__name__}",
              issubclass(cls, embstore.Error) and issubclass(cls, base))


def test_generate(d):
    # The notebook's table, without PyTorch, bit for bit.
    a = embstore.generate(6, 4, seed=123)
    check("generate(6, 4, seed=123) is torch.nn.Embedding(6, 4) after manual_seed(123)",
          bits_equal(a, torch_table(6, 4, 123)))
    check("generate returns a writable float32 C array", a.dtype == np.float32 and a.flags.c_contiguous and
          a.flags.writeable and a.flags.owndata)
    big = embstore.generate(1000, 300, seed=7, threads=2)
    check("generate(1000, 300, seed=7) is torch's", bits_equal(big, torch_table(1000, 300, 7)))
    torch.manual_seed(9)
    u = torch.empty(50, 17).uniform_(-0.5, 2.0).numpy()
    check("init='uniform' is uniform_(low, high)",
          bits_equal(embstore.generate(50, 17, 9, init="uniform", low=-0.5, high=2.0), u))
    torch.manual_seed(9)
    n = torch.empty(40, 33).normal_(0.25, 0.02).numpy()
    check("mean, std is normal_(mean, std)", bits_equal(embstore.generate(40, 33, 9, mean=0.25, std=0.02), n))
    torch.manual_seed(2**64 - 1)
    check("a seed of -1 is torch's -1", bits_equal(embstore.generate(3, 5, -1), torch.randn(3, 5).numpy()))
    raises("a seed of 2**64 is refused", lambda: embstore.generate(2, 2, 2**64), embstore.InvalidArgumentError,
           "[-2^63, 2^64)")
    raises("rows=0 is refused with the library's message", lambda: embstore.generate(0, 4), ValueError,
           "must be at least 1")
    raises("std < 0 is refused", lambda: embstore.generate(2, 2, std=-1.0), ValueError, "std must be >= 0")
    raises("an unknown init is refused", lambda: embstore.generate(2, 2, init="xavier"), ValueError, "xavier")
    raises("an unknown kernel is refused", lambda: embstore.generate(2, 2, torch_kernel="avx9"), ValueError,
           "avx9")

    # To a file: the same bytes the command writes.
    p, q = os.path.join(d, "py.emb"), os.path.join(d, "cli.emb")
    check("generate(path=...) returns None", embstore.generate(1000, 300, 7, path=p, fsync=False) is None)
    cli("generate", "--rows", 1000, "--dim", 300, "--seed", 7, "--no-fsync", "-o", q)
    check("generate(path=...) writes the command's bytes", open(p, "rb").read() == open(q, "rb").read())
    embstore.generate(20, 8, 3, path=pathlib.Path(p), torch_kernel="scalar")
    cli("generate", "--rows", 20, "--dim", 8, "--seed", 3, "--torch-kernel", "scalar", "-o", q)
    check("a pathlib.Path works; torch_kernel='scalar' is the command's", open(p, "rb").read() == open(q, "rb").read())
    raises("mean with init='uniform' is refused, as the command does",
           lambda: embstore.generate(2, 2, init="uniform", mean=1.0), ValueError, "mean and std apply")
    raises("low with the normal init is refused", lambda: embstore.generate(2, 2, low=-1.0), ValueError, "low and high")
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        embstore.generate(30, 8, 3, path=p)
        cli("generate", "--rows", 30, "--dim", 8, "--seed", 3, "-o", q)
        check("SOURCE_DATE_EPOCH: generate(path=...) still writes the command's bytes",
              open(p, "rb").read() == open(q, "rb").read())
        check("... with the creation time", embstore.open(p).metadata.get("created") == "2023-11-14T22:13:20Z")
        os.environ["SOURCE_DATE_EPOCH"] = "soon"
        raises("a bad SOURCE_DATE_EPOCH is named", lambda: embstore.generate(2, 2, path=p), ValueError,
               "SOURCE_DATE_EPOCH")
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    raises("a path with a NUL byte is refused", lambda: embstore.generate(2, 2, path=p + "\0x"), ValueError, "null")
    e = raises("generate into a missing folder: an OSError naming it",
               lambda: embstore.generate(2, 2, path=os.path.join(d, "no", "such", "t.emb")), OSError, "no/such")


def test_table(d):
    p = os.path.join(d, "t.emb")
    embstore.generate(1000, 300, 7, path=p)
    ref = torch_table(1000, 300, 7)
    t = embstore.open(p)
    check("shape", t.shape == (1000, 300), t.shape)
    check("dtype", t.dtype == "float32", t.dtype)
    check("len", len(t) == 1000)
    check("path and compressed", t.path == p and t.compressed is False and t.closed is False)
    info = json.loads(cli("info", p, "--json").stdout)
    check("metadata is the file's", t.metadata == info["metadata"], f"{t.metadata} vs {info['metadata']}")
    check("info() is `embstore info --json`", t.info() == info and embstore.info(p) == info)
    check("repr", repr(t) == f"<embstore.Table {p}: 1000 x 300 float32>", repr(t))

    # The array: the mapping itself, read-only.
    a = t.array
    check("array is an ndarray of the table's rows", isinstance(a, np.ndarray) and bits_equal(a, ref))
    check("array is float32 (1000, 300), C-contiguous", a.dtype == np.float32 and a.shape == (1000, 300) and
          a.flags.c_contiguous)
    check("array does not own its data and is read-only", not a.flags.owndata and not a.flags.writeable)
    raises("writing to the array raises", lambda: a.__setitem__((0, 0), 1.0), ValueError, "read-only")
    lo = a.ctypes.data
    maps = mapping_ranges(p)
    check("array's memory lies inside the file's mapping (no copy)",
          any(s <= lo and lo + a.nbytes <= e for s, e in maps), f"{lo:#x} not in {maps}")
    check("the same array each time", t.array is a)
    raw = cli("get", p, "0:1000", "--raw").stdout
    check("array bytes are `embstore get --raw`", a.tobytes() == raw)
    check("np.asarray(t) is the array (no copy)", np.asarray(t).ctypes.data == lo)

    # PyTorch on the same memory.
    w = torch.from_numpy(t.array)
    check("torch.from_numpy(t.array) shares memory", w.data_ptr() == lo and w.dtype == torch.float32)
    emb = torch.nn.Embedding.from_pretrained(w, freeze=True)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 1000, size=(7, 5))
    check("nn.Embedding.from_pretrained(...)(ids) == t[ids]",
          bits_equal(emb(torch.from_numpy(ids)).numpy(), t[ids]))
    check("from_pretrained keeps the mapping (no copy)", emb.weight.data_ptr() == lo)

    # Indexing and gather: new arrays.
    check("t[3] is row 3, shape (dim,)", bits_equal(t[3], ref[3]))
    check("t[np.int64(3)]", bits_equal(t[np.int64(3)], ref[3]))
    check("t[[3, 1, 3]]", bits_equal(t[[3, 1, 3]], ref[[3, 1, 3]]))
    check("t[a:b]", bits_equal(t[10:20], ref[10:20]))
    check("t[::-7] (a slice with a negative step)", bits_equal(t[::-7], ref[::-7]))
    check("t[-5:] (negative slice bounds, as Python)", bits_equal(t[-5:], ref[-5:]))
    check("t[ids] of shape (7, 5)", bits_equal(t[ids], ref[ids]))
    for dt in (np.int8, np.uint16, np.int32, np.uint32, np.int64, np.uint64):
        check(f"ids as {np.dtype(dt).name}", bits_equal(t[np.array([9, 0, 99], dtype=dt)], ref[[9, 0, 99]]))
    check("ids as a torch tensor", bits_equal(t[torch.tensor([[4], [2]])], ref[[[4], [2]]]))
    check("empty ids give (0, dim)", t[[]].shape == (0, 300) and t[np.zeros((2, 0), np.int64)].shape == (2, 0, 300))
    g = t.gather(ids)
    check("gather(ids) == t[ids], a new writable array", bits_equal(g, ref[ids]) and g.flags.writeable and
          g.flags.owndata)
    out = np.empty((7, 5, 300), np.float32)
    r = t.gather(ids, out=out)
    check("gather(ids, out=) fills out", bits_equal(out, ref[ids]) and np.shares_memory(r, out))
    raises("gather(out=) of the wrong shape", lambda: t.gather(ids, out=np.empty((7, 300), np.float32)), ValueError,
           "shape (7, 5, 300)")
    raises("gather(out=) of the wrong dtype", lambda: t.gather(ids, out=np.empty((7, 5, 300))), ValueError,
           "float32")
    check("t.gather(ids) on a list is embstore.get", bits_equal(embstore.get(p, [5, 6]), ref[[5, 6]]))
    check("iteration gives every row", bits_equal(np.stack(list(t)), ref))

    # Bad ids: named, and nothing copied.
    raises("t[1000] is out of range", lambda: t[1000], embstore.OutOfRangeError,
           "id 1000 out of range: the table has rows [0, 1000)")
    raises("t[-1] is out of range (ids as nn.Embedding takes them)", lambda: t[-1], IndexError,
           "id -1 out of range: the table has rows [0, 1000)")
    sentinel = np.full((3, 300), 7.0, np.float32)
    raises("one bad id among good ones", lambda: t.gather([1, 2, 5000], out=sentinel), IndexError, "id 5000")
    check("a gather that fails writes nothing", (sentinel == 7.0).all())
    raises("float ids", lambda: t[[1.0]], TypeError, "integers")
    raises("bool ids", lambda: t[True], TypeError, "bool")
    raises("bool array ids", lambda: t[np.array([True])], TypeError, "integers")
    raises("a tuple index", lambda: t[1, 2], TypeError, "t.array")
    raises("a string is a key, and this table has none", lambda: t["3"], KeyError)
    raises("ragged ids: NumPy's own error", lambda: t[[[1, 2], [3]]], ValueError)

    # Ids are copied before the copy of rows starts: out= overlapping them
    # cannot turn rows into ids.
    buf = np.zeros(4 * 300, np.float32)
    ids_view = buf[:8].view(np.int64)
    ids_view[:] = [7, 999, 0, 500]
    want = ref[[7, 999, 0, 500]]
    t.gather(ids_view, out=buf.reshape(4, 300))
    check("out= overlapping the ids gets the rows of the ids as given", bits_equal(buf.reshape(4, 300), want))

    # A close() from another thread while gathers run: each gather either
    # returns right rows or raises ValueError (closed); nothing crashes.
    tc = embstore.open(p)
    outcomes = {"rows": 0, "closed": 0, "wrong": 0}
    def gatherer():
        r = np.random.default_rng(5)
        for _ in range(200):
            i = r.integers(0, 1000, size=300)
            try:
                rows = tc[i]
            except ValueError:
                outcomes["closed"] += 1
                continue
            outcomes["rows" if bits_equal(rows, ref[i]) else "wrong"] += 1
    ths = [threading.Thread(target=gatherer) for _ in range(3)]
    for x in ths:
        x.start()
    tc.close()
    for x in ths:
        x.join()
    check("close() during gathers on other threads: no wrong rows", outcomes["wrong"] == 0 and
          outcomes["closed"] > 0, outcomes)
    try:
        t[2**70]
        check("a huge id is refused", False, "no exception")
    except (IndexError, TypeError, OverflowError):
        check("a huge id is refused", True)

    # Verify.
    rep = t.verify()
    check("verify() reports ok", rep["ok"] and rep["blocks_checked"] >= 1 and rep["bad"] == [], rep)
    check("embstore.verify(path)", embstore.verify(p, threads=1)["ok"])

    # Pickle: reopens by path.
    t2 = pickle.loads(pickle.dumps(t))
    check("a pickled Table reopens the same table", bits_equal(t2.array, ref) and t2.path == os.path.abspath(p))

    # Context manager and close.
    with embstore.open(p) as t3:
        arr3 = t3.array
    check("closed after with", t3.closed)
    check("its array still reads after close()", bits_equal(arr3, ref))
    raises("a closed table refuses work", lambda: t3[0], ValueError, "closed")
    raises("a closed table refuses pickling", lambda: pickle.dumps(t3), ValueError, "closed")
    check("repr of a closed table", repr(t3) == f"<embstore.Table {p} (closed)>", repr(t3))
    t.close()
    t2.close()


def test_errors(d):
    raises("a missing file: NotFoundError (FileNotFoundError)", lambda: embstore.open(os.path.join(d, "nope.emb")),
           FileNotFoundError, "No such file or directory")
    raises("a folder: StorageError (OSError)", lambda: embstore.open(d), OSError, "not a regular file")
    raises("a missing shared table", lambda: embstore.open("shm:no-such-table-here"), embstore.NotFoundError,
           "no-such-table-here")
    raises("a bad shared name", lambda: embstore.open("shm:../x"), embstore.InvalidArgumentError)
    # Every hostile golden file: the exception carries the command's message.
    bad = os.path.join(GOLDEN, "bad")
    n = 0
    for name in sorted(os.listdir(bad)):
        path = os.path.join(bad, name)
        if not os.path.isfile(path):
            continue
        r = cli("verify", path, ok=False)
        expected = r.stderr.decode().strip().splitlines()[-1]
        prefix = "embstore verify: "
        check(f"{name}: the command refuses it", r.returncode == 1 and expected.startswith(prefix), expected)
        expected = expected[len(prefix):]
        try:
            t = embstore.open(path)
        except embstore.Error as e:
            n += 1
            check(f"{name}: open() raises the library's message", str(e) == expected, f"{e} vs {expected}")
            kind = type(e).__name__
            want = "NotSupportedError" if any(w in name for w in ("newer", "unsupported", "unknown", "big-endian")) \
                else "CorruptionError"
            check(f"{name}: {want}", kind == want, f"{kind}: {e}")
            continue
        try:
            t.verify()
            check(f"{name}: refused", False, "opened and verified")
        except embstore.CorruptionError as e:
            n += 1
            # The command prints the same first line, then lists the blocks.
            check(f"{name}: verify() raises the command's verdict", str(e).startswith(expected), f"{e} vs {expected}")
    check("every golden bad file was tried", n >= 18, n)


def test_corrupt_verify(d):
    p = os.path.join(d, "c.emb")
    embstore.generate(5000, 64, 1, path=p)
    t = embstore.open(p)
    off = t.info()["data_offset"] + 4321 * 64 * 4 + 8
    t.close()
    with open(p, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 1]))
    cli_out = cli("verify", p, ok=False).stdout.decode()
    e = raises("verify() of a damaged table raises CorruptionError", lambda: embstore.open(p).verify(),
               embstore.CorruptionError, "FAILED: 1 of")
    if e is not None:
        rep = e.report
        check("the error carries the report", rep is not None and not rep["ok"] and rep["bad_block_count"] == 1, rep)
        b = rep["bad"][0]
        check("the report names the rows, as the command does",
              f"rows [{b['first_row']}, {b['first_row'] + b['row_count']})" in cli_out and
              b["first_row"] <= 4321 < b["first_row"] + b["row_count"], (b, cli_out))
        check("the message names the rows", f"rows [{b['first_row']}," in str(e), str(e))


def test_embz(d):
    p, z, back = (os.path.join(d, n) for n in ("e.emb", "e.embz", "back.emb"))
    embstore.generate(3000, 96, 11, path=p)
    ref = torch_table(3000, 96, 11)
    embstore.compress(p, z, level=3, frame_rows=100)
    t = embstore.open(z)
    check(".embz opens compressed", t.compressed and t.shape == (3000, 96) and "compressed" in t.info())
    ids = np.random.default_rng(2).integers(0, 3000, size=500)
    check(".embz t[ids]", bits_equal(t[ids], ref[ids]))
    check(".embz slices", bits_equal(t[2990:], ref[2990:]))
    check("np.asarray(.embz) decodes every row", bits_equal(np.asarray(t), ref))
    raises(".embz has no array: NotSupportedError says what to do", lambda: t.array, embstore.NotSupportedError,
           "decompress")
    rep = t.verify()
    check(".embz verify counts frames", rep["ok"] and rep["frames_checked"] == 30, rep)
    raises("compress refuses an existing output", lambda: embstore.compress(p, z), FileExistsError, "force=True")
    embstore.compress(p, z, force=True, level=1)
    raises("compress level 20 is refused", lambda: embstore.compress(p, z, level=20, force=True), ValueError, "[1, 19]")
    embstore.decompress(z, back)
    check("decompress gives the original bytes", open(back, "rb").read() == open(p, "rb").read())
    raises("decompress of a .emb is refused", lambda: embstore.decompress(p, back, force=True), embstore.Error)
    check("decompress that failed kept the old output", open(back, "rb").read() == open(p, "rb").read())
    # Threads at once on one Table (the frame cache is shared).
    errors = []
    def reader(seed):
        r = np.random.default_rng(seed)
        for _ in range(50):
            i = r.integers(0, 3000, size=64)
            if not bits_equal(t[i], ref[i]):
                errors.append(seed)
    th = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    check("four threads read one .embz correctly", not errors, errors)
    damaged = os.path.join(GOLDEN, "bad", "corrupt-frame1.embz")
    e = raises("verify() of a damaged frame", lambda: embstore.open(damaged).verify(), embstore.CorruptionError,
               "frame 1")
    if e is not None:
        check("... with the frame in the report", e.report["bad"][0]["frame"] == 1, e.report)


def test_shared(d):
    name = f"pytest-{os.getpid()}"
    p = os.path.join(d, "s.emb")
    embstore.generate(700, 40, 5, path=p)
    ref = torch_table(700, 40, 5)
    embstore.share(p, name)
    try:
        t = embstore.open("shm:" + name)
        check("shm: table opens", t.shape == (700, 40) and bits_equal(t.array, ref))
        seg = os.path.join(os.environ.get("EMBSTORE_SHM_DIR", "/dev/shm"), "embstore-" + name)
        check("its array lies in the segment's mapping",
              any(s <= t.array.ctypes.data < e for s, e in mapping_ranges(seg)), mapping_ranges(seg))
        listed = [s for s in embstore.shared() if s["name"] == name]
        check("shared() lists it", len(listed) == 1 and listed[0]["rows"] == 700 and listed[0]["mode"] == 0o400,
              listed)
        raises("share refuses a taken name", lambda: embstore.share(p, name), FileExistsError, name)
        check("pickled shm: table reopens by name", pickle.loads(pickle.dumps(t)).path == "shm:" + name)
        arr = t.array
        embstore.unshare("shm:" + name)
        check("unshare removes the name", not any(s["name"] == name for s in embstore.shared()))
        check("an array of an unshared table still reads", bits_equal(arr, ref))
        raises("unshare again: NotFoundError", lambda: embstore.unshare(name), embstore.NotFoundError)
    finally:
        try:
            embstore.unshare(name)
        except embstore.NotFoundError:
            pass


def test_convert(d):
    src = os.path.join(d, "h.npy")
    x = np.random.default_rng(3).standard_normal((123, 45)).astype(np.float16)
    np.save(src, x)
    dst = os.path.join(d, "h.emb")
    embstore.import_table(src, dst)
    t = embstore.open(dst)
    check("import_table of a float16 .npy keeps float16", t.dtype == "float16" and bits_equal(t.array, x))
    embstore.import_table(src, os.path.join(d, "h32.emb"), dtype="float32")
    check("import_table(dtype='float32') widens it exactly",
          bits_equal(embstore.open(os.path.join(d, "h32.emb")).array, x.astype(np.float32)))
    check("its metadata records the source", t.metadata.get("import.format", "").startswith("npy") and
          t.metadata.get("import.source") == "h.npy", t.metadata)
    raises("import_table refuses an existing output", lambda: embstore.import_table(src, dst), embstore.AlreadyExistsError)
    npy = os.path.join(d, "out.npy")
    embstore.export_table(t, npy)
    check("export_table(Table) to .npy: numpy maps it", bits_equal(np.load(npy, mmap_mode="r"), x))
    st = os.path.join(d, "out.safetensors")
    embstore.export_table(dst, st, tensor_name="emb")
    tensors = embstore.list_tensors(st)
    check("export_table to .safetensors; list_tensors", tensors == [{"name": "emb", "dtype": "F16", "shape": (123, 45),
                                                                     "bytes": 123 * 45 * 2}], tensors)
    back = os.path.join(d, "from-safetensors.emb")
    embstore.import_table(st, back, tensor="emb")
    check("import_table from safetensors", bits_equal(embstore.open(back).array, x))
    rawf = os.path.join(d, "r.f32")
    x.astype("<f4").tofile(rawf)
    embstore.import_table(rawf, back, format="raw", rows=123, dim=45, force=True)
    check("import_table raw", bits_equal(embstore.open(back).array, x.astype(np.float32)))
    raises("import_table raw with a wrong shape", lambda: embstore.import_table(rawf, back, format="raw", rows=5,
           dim=45, force=True), embstore.Error)
    bad = os.path.join(GOLDEN, "bad", "import")
    for name in sorted(os.listdir(bad))[:40]:
        path = os.path.join(bad, name)
        r = cli("import", path, "-o", os.path.join(d, "x.emb"), "-f", ok=False)
        try:
            embstore.import_table(path, os.path.join(d, "x.emb"), force=True)
            check(f"import of {name} refused", r.returncode == 0, "accepted by the module, refused by the command")
        except embstore.Error as e:
            check(f"import of {name}: the command's message", str(e) in r.stderr.decode(),
                  f"{e} vs {r.stderr.decode()}")
        check(f"import of {name} left nothing", not os.path.exists(os.path.join(d, "x.emb")) or r.returncode == 0)
        if os.path.exists(os.path.join(d, "x.emb")):
            os.remove(os.path.join(d, "x.emb"))


def test_cold_gather(d):
    """A gather of 1 MiB or more from rows out of the page cache (the path
    that reads ahead) returns the same rows."""
    p = os.path.join(d, "cold.emb")
    embstore.generate(3000, 1024, 21, path=p)
    ref = torch_table(3000, 1024, 21)
    ids = np.random.default_rng(9).integers(0, 3000, size=(40, 50))
    for _ in range(2):
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        with embstore.open(p) as t:
            check("a large gather from dropped pages", bits_equal(t[ids], ref[ids]))


def test_lifetime(d):
    p = os.path.join(d, "life.emb")
    embstore.generate(400, 64, 1, path=p)
    first = torch_table(400, 64, 1)

    # The array outlives its Table.
    t = embstore.open(p)
    a = t.array
    del t
    gc.collect()
    check("the array outlives the Table", bits_equal(a, first))
    w = torch.from_numpy(embstore.open(p).array)
    gc.collect()
    check("a tensor from the array outlives both", bits_equal(w.numpy(), first))

    # Replaced under a live array: the array keeps the old rows, whole.
    t = embstore.open(p)
    a2 = t.array
    embstore.generate(400, 64, 2, path=p)
    second = torch_table(400, 64, 2)
    check("replacing the file leaves a live array on the old rows", bits_equal(a2, first) and bits_equal(a, first))
    check("... and the open Table too", bits_equal(t[0:400], first))
    check("a new open sees the new rows", bits_equal(embstore.open(p).array, second))
    cli("generate", "--rows", 400, "--dim", 64, "--seed", 3, "-o", p)
    check("replaced by the command: the old array still reads", bits_equal(a2, first))
    os.remove(p)
    check("the file deleted: the old array still reads", bits_equal(a2, first) and bits_equal(w.numpy(), first))
    del a, a2, w, t
    gc.collect()

    # The mapping and descriptor go with the last holder; nothing leaks.
    embstore.generate(400, 64, 4, path=p)
    fds = len(os.listdir("/proc/self/fd"))
    held = []
    for i in range(300):
        t = embstore.open(p)
        if i % 3 == 0:
            held.append(t.array)
        t.close()
    check("arrays hold the mapping after close()", len(mapping_ranges(p)) >= 100, len(mapping_ranges(p)))
    del held, t
    gc.collect()
    check("the mappings go with the last array", mapping_ranges(p) == [], len(mapping_ranges(p)))
    check("no descriptors leak", len(os.listdir("/proc/self/fd")) <= fds, f"{fds} -> {len(os.listdir('/proc/self/fd'))}")


def main():
    d = tempfile.mkdtemp(prefix="embstore-python-")
    try:
        os.environ.setdefault("EMBSTORE_SHM_DIR", os.path.join(d, "shm"))
        os.makedirs(os.environ["EMBSTORE_SHM_DIR"], exist_ok=True)
        tests = [test_import] + [(t.__name__, lambda t=t: t(d)) for t in (
            test_generate, test_table, test_errors, test_corrupt_verify, test_embz, test_shared, test_convert,
            test_cold_gather, test_lifetime)]
        return run("module_test", tests)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

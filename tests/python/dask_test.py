#!/usr/bin/python3
"""embstore.dask (tools/python/dask.py): sharded tables worked on by a Dask
cluster, one task per shard. Run by ctest as
    dask_test.py EMBSTORE [--sanitized] MODULE_DIR
on one distributed.LocalCluster of three worker processes (one thread each)
shared by every test:
  * generate: the same bytes as embstore.generate's single table and as
    its own sharded one (every shard file and the manifest), and PyTorch's
    table, for float32, float16, bfloat16, normal with mean and std and
    uniform, with shard boundaries off any block;
  * a worker killed by SIGKILL while it writes a shard (a test task waits
    for its hidden temporary file, then kills its own process): the
    scheduler reruns the task elsewhere, the table is still exactly right,
    no temporary file is left, and generating again into the folder works;
    a task that fails leaves no manifest; a task rerun (retries=) rewrites
    the same bytes;
  * verify: a flipped byte in one shard is named (index, path, rows of the
    whole table), as `embstore verify MANIFEST` names it; a shard of
    another table, a missing shard, a symlink (a loop, or to a real shard)
    are named at first row access and by verify, never raised by it;
    manifests with a gap, an overlap or a path outside the folder fail at
    open;
  * to_dask_array: one chunk per shard, the table's bytes, sums and per-
    chunk digests computed on the cluster, a graph of a few kilobytes,
    deterministic names, zero-copy chunks, float16/bfloat16 types, and a
    replaced manifest refused;
  * compress, decompress, convert: manifests that open and match; the
    decompressed shards are the original files byte for byte.
A sanitizer build (--sanitized) leaves out PyTorch (the oracle tests and
torch_oracle_test compare embstore's bits with it) and kills the worker on
a smaller table.

Skipped (exit 77) without dask and distributed (Debian: python3-dask,
python3-distributed). Worker processes are spawned and import this script
as a module: everything that runs is under __main__.
"""

import filecmp
import hashlib
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SANITIZED = "--sanitized" in sys.argv
EMB, MODULE_DIR = [a for a in sys.argv[1:] if a != "--sanitized"][:2]
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import numpy as np  # noqa: E402

if SANITIZED:
    # Under ASan the C++ it runs is shard_test's and shard_cli_test's (both
    # run there); a cluster of sanitized interpreters only adds minutes.
    print("dask_test: skipped in a sanitizer build (the sharded-table C++ is tested there by shard_test)")
    sys.exit(77)

try:
    import dask  # noqa: E402,F401
    import distributed  # noqa: E402
except ImportError:
    print("dask_test: dask or distributed is not installed (Debian: python3-dask, python3-distributed); skipped")
    sys.exit(77)

import embstore  # noqa: E402
import embstore.dask  # noqa: E402
from checks import check, raises, run  # noqa: E402

TMP = ""  # set in __main__
CLIENT = None


def path(*names):
    return os.path.join(TMP, *names)


def cli(*args):
    return subprocess.run([EMB, *map(str, args)], capture_output=True, timeout=120)


def stored(t):
    """Every row of a table in its stored type, as bytes (bfloat16: the bit
    patterns, through a uint16 out)."""
    ids = np.arange(len(t), dtype=np.int64)
    if t.dtype == "bfloat16":
        out = np.empty((len(t), t.shape[1]), np.uint16)
        t.gather(ids, out=out, dtype="bfloat16")
        return out.tobytes()
    return np.ascontiguousarray(t.gather(ids, dtype=t.dtype)).tobytes()


def torch_bytes(rows, dim, seed, dtype, init, kw):
    import torch
    kinds = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    torch.manual_seed(seed)
    if init == "normal" and not kw:
        w = torch.nn.Embedding(rows, dim, dtype=kinds[dtype]).weight.detach()
    else:
        w = torch.empty(rows, dim, dtype=kinds[dtype])
        w = w.normal_(kw["mean"], kw["std"]) if init == "normal" else w.uniform_(kw["low"], kw["high"])
    w = w.contiguous()
    return (w.view(torch.int16) if w.element_size() == 2 else w).numpy().tobytes()


def temps(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".embstore-tmp-"))


def verify_ok(m):
    try:
        return embstore.dask.verify(CLIENT, m)["ok"]
    except embstore.Error:
        return False


def generation():
    cases = [
        # rows, dim, seed, dtype, init, parameters, shard_rows
        (10007, 33, 11, "float32", "normal", {}, 1000),
        (3001, 17, 2**32 + 5, "bfloat16", "normal", {}, 700),
        (3001, 17, 6, "float16", "normal", {"mean": 0.5, "std": 0.02}, 999),
        (2503, 9, 7, "float32", "uniform", {"low": -0.05, "high": 0.05}, 500),
        (5, 3, 1, "float32", "normal", {}, 8),  # one shard, shorter than shard_rows
    ]
    for rows, dim, seed, dtype, init, kw, shard_rows in cases:
        what = f"{rows}x{dim} {dtype} {init}{tuple(kw.values()) or ''} seed {seed}, shards of {shard_rows}"
        folder = path(f"gen-{dtype}-{init}-{rows}")
        m = embstore.dask.generate(CLIENT, folder, rows, dim, seed, shard_rows=shard_rows, dtype=dtype, init=init,
                                   fsync=False, **kw)
        check(f"{what}: returns folder/manifest.json", m == os.path.join(folder, "manifest.json"), m)
        t = embstore.open(m)
        expect = -(-rows // shard_rows)
        check(f"{what}: {expect} shards of the planned rows",
              [(s["first_row"], s["rows"]) for s in t.shards] ==
              [(i * shard_rows, min(shard_rows, rows - i * shard_rows)) for i in range(expect)], t.shards)
        single = path(f"single-{dtype}-{init}-{rows}.emb")
        embstore.generate(rows, dim, seed, path=single, dtype=dtype, init=init, fsync=False, **kw)
        got = stored(t)
        check(f"{what}: the rows of embstore.generate's single table, bit for bit",
              got == stored(embstore.open(single)) and len(got) == rows * dim * (4 if dtype == "float32" else 2))
        if not SANITIZED:
            check(f"{what}: PyTorch's table, bit for bit", got == torch_bytes(rows, dim, seed, dtype, init, kw))
        # The library's own sharded generation writes the same files.
        own = path(f"own-{dtype}-{init}-{rows}")
        embstore.generate(rows, dim, seed, path=own, shard_rows=shard_rows, dtype=dtype, init=init, fsync=False, **kw)
        names = sorted(os.listdir(own))
        check(f"{what}: the same files as embstore.generate(shard_rows=...), byte for byte (manifest included)",
              sorted(os.listdir(folder)) == names and
              all(filecmp.cmp(os.path.join(own, n), os.path.join(folder, n), shallow=False) for n in names),
              (names, sorted(os.listdir(folder))))
        check(f"{what}: verify passes", embstore.dask.verify(CLIENT, m)["ok"])
    # SOURCE_DATE_EPOCH set on the client alone (the workers started without
    # it, or with another): the shards record the client's, as the manifest.
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        m = embstore.dask.generate(CLIENT, path("epoch"), 3000, 4, 1, shard_rows=1000, fsync=False)
        embstore.generate(3000, 4, 1, path=path("epoch-own"), shard_rows=1000, fsync=False)
    finally:
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before
    names = sorted(os.listdir(path("epoch-own")))
    t = embstore.open(m)
    check("SOURCE_DATE_EPOCH on the client only: the shards are of the manifest's table, and record its time",
          verify_ok(m) and "created" in t.shard(2).metadata and t.shard(2).metadata.get("created") ==
          t.metadata.get("created"), (t.metadata, t.shards))
    check("... the same files as embstore.generate(shard_rows=...) with it",
          sorted(os.listdir(path("epoch"))) == names and
          all(filecmp.cmp(path("epoch", n), path("epoch-own", n), shallow=False) for n in names))


def kill_once_task(marker, victim):
    """A stand-in for embstore.generate_shard: on its first call for shard
    `victim` (marker absent), it writes the shard in a thread with named
    temporary files, waits until the hidden temporary file is there, notes
    it in the marker and SIGKILLs its own worker process, mid-write."""
    def task(folder, index, rows, dim, seed, **kw):
        if index == victim:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                fd = -1
            if fd >= 0:
                os.environ["EMBSTORE_NAMED_TEMP"] = "1"  # this process only: a name to watch
                writer = threading.Thread(target=embstore.generate_shard, args=(folder, index, rows, dim, seed),
                                          kwargs=kw, daemon=True)
                writer.start()
                seen = []
                deadline = time.monotonic() + 60
                while not seen and writer.is_alive() and time.monotonic() < deadline:
                    seen = [n for n in os.listdir(folder) if n.startswith(".embstore-tmp-")]
                    time.sleep(0.0002)
                os.write(fd, json.dumps({"pid": os.getpid(), "temps": seen, "writing": writer.is_alive()}).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return embstore.generate_shard(folder, index, rows, dim, seed, **kw)
    return task


def fail_first_task(markers):
    """Writes its shard, then fails once per shard (marker absent)."""
    def task(folder, index, rows, dim, seed, **kw):
        entry = embstore.generate_shard(folder, index, rows, dim, seed, **kw)
        try:
            os.close(os.open(os.path.join(markers, f"{index}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return entry
        raise OSError(f"shard {index}: a first attempt that fails after writing")
    return task


def broken_task(folder, index, rows, dim, seed, **kw):
    if index == 2:
        raise RuntimeError("shard 2: the task fails")
    return embstore.generate_shard(folder, index, rows, dim, seed, **kw)


def worker_killed():
    rows, dim, shard_rows = (240000, 64, 80000) if SANITIZED else (600000, 64, 200000)
    seed = 3
    folder, marker = path("killed"), path("kill-marker")
    pids = set(CLIENT.run(os.getpid).values())
    m = embstore.dask.generate(CLIENT, folder, rows, dim, seed, shard_rows=shard_rows, fsync=True,
                               _task=kill_once_task(marker, 1))
    note = json.load(open(marker)) if os.path.exists(marker) else {}
    print(f"     the task killed worker process {note.get('pid')} as it wrote {note.get('temps')}")
    check("the test task killed its worker while the shard's temporary file was there",
          note.get("temps") and note.get("writing") and note.get("pid") in pids, note)
    after = set(CLIENT.run(os.getpid).values())
    check("that worker process is gone (the nanny started another)", note.get("pid") not in after, (note, after))
    single = path("killed-single.emb")
    embstore.generate(rows, dim, seed, path=single, fsync=False)
    ref = embstore.open(single).array
    t = embstore.open(m)
    same = all(np.array_equal(np.asarray(t.shard(i)).view(np.uint32),
                              ref[s["first_row"]:s["first_row"] + s["rows"]].view(np.uint32))
               for i, s in enumerate(t.shards))
    check(f"{rows}x{dim} in 3 shards, a worker killed mid-write: every row is embstore.generate's", same)
    check("no hidden temporary file is left in the folder (the killed writer's was removed)",
          temps(folder) == [] and not any(os.path.exists(os.path.join(folder, n)) for n in note.get("temps", [])),
          (temps(folder), note))
    check("embstore.dask.verify passes on it", embstore.dask.verify(CLIENT, m)["ok"])
    r = cli("verify", m)
    check("embstore verify MANIFEST passes on it", r.returncode == 0, r.stdout + r.stderr)
    before = open(m, "rb").read()
    m2 = embstore.dask.generate(CLIENT, folder, rows, dim, seed, shard_rows=shard_rows, fsync=False)
    check("generated again into the same folder: the same manifest, verified, no temporary file",
          m2 == m and open(m, "rb").read() == before and embstore.dask.verify(CLIENT, m)["ok"] and temps(folder) == [])
    del t, ref
    shutil.rmtree(folder)
    os.remove(single)

    # A task that fails for good: the error on the client, no manifest.
    folder = path("broken")
    e = raises("a task that fails: its exception raised on the client",
               lambda: embstore.dask.generate(CLIENT, folder, 5000, 8, 1, shard_rows=1000, fsync=False,
                                              _task=broken_task), RuntimeError, "shard 2: the task fails")
    check("... and no manifest is written", e is not None and not os.path.exists(os.path.join(folder, "manifest.json")),
          os.listdir(folder) if os.path.isdir(folder) else None)
    # Tasks rerun (retries=1) after they wrote their shard: the same bytes.
    folder, markers = path("retried"), path("retry-markers")
    os.makedirs(markers)
    m = embstore.dask.generate(CLIENT, folder, 5000, 8, 1, shard_rows=1000, fsync=False, retries=1,
                               _task=fail_first_task(markers))
    own = path("retried-own")
    embstore.generate(5000, 8, 1, path=own, shard_rows=1000, fsync=False)
    check("every task failed once after writing its shard, and was rerun (retries=1)",
          sorted(os.listdir(markers)) == [str(i) for i in range(5)], os.listdir(markers))
    check("... the table is the same files as embstore.generate's, byte for byte",
          all(filecmp.cmp(os.path.join(own, n), os.path.join(folder, n), shallow=False) for n in os.listdir(own)) and
          sorted(os.listdir(own)) == sorted(os.listdir(folder)))


def flip(file, offset):
    with open(file, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x10]))


def corrupt_shard():
    rows, dim = 10007, 33
    m = embstore.dask.generate(CLIENT, path("corrupt"), rows, dim, 21, shard_rows=1000, fsync=False)
    t = embstore.open(m)
    shard = t.shard(3)
    info = shard.info()
    victim = 3517  # row 517 of shard 3
    flip(os.path.join(path("corrupt"), "shard-000003.emb"), info["data_offset"] + 517 * info["row_stride"] + 5)
    del shard, t
    r = embstore.dask.verify(CLIENT, m)
    bad = r["bad_shards"]
    print("     embstore.dask.verify:", bad)
    check("verify: not ok, 11 shards checked, 1 bad block", not r["ok"] and r["shards"] == 11 and
          r["shards_checked"] == 11 and r["bad_block_count"] == 1 and len(bad) == 1, r)
    b = bad[0] if bad else {}
    check("verify names the shard: index 3, shard-000003.emb, rows [3000, 4000)",
          (b.get("index"), b.get("path"), b.get("first_row"), b.get("rows")) == (3, "shard-000003.emb", 3000, 1000), b)
    blocks = b.get("bad", [])
    check("its bad block holds row 3517, in the whole table's numbering, inside the shard",
          len(blocks) == 1 and blocks[0]["first_row"] <= victim < blocks[0]["first_row"] + blocks[0]["row_count"] and
          3000 <= blocks[0]["first_row"] and blocks[0]["first_row"] + blocks[0]["row_count"] <= 4000, blocks)
    check("... with its checksums; its rows were checked, so no error message", blocks and
          blocks[0]["stored"] != blocks[0]["computed"] and b.get("checked") and b.get("error") is None, b)
    rows_text = f"rows [{blocks[0]['first_row']}, {blocks[0]['first_row'] + blocks[0]['row_count']})" if blocks else "?"
    e = raises("Table.verify() on the sharded table raises CorruptionError", lambda: embstore.open(m).verify(),
               embstore.CorruptionError, "shard-000003.emb")
    check("... naming the same rows", e is not None and rows_text in str(e) and
          [(x["first_row"], x["row_count"]) for x in e.report["bad"]] ==
          [(x["first_row"], x["row_count"]) for x in blocks], (str(e), getattr(e, "report", None)))
    cmd = cli("verify", m)
    out = (cmd.stdout + cmd.stderr).decode()
    print("     embstore verify:", out.strip().replace("\n", "\n     "))
    check("embstore verify MANIFEST: exit 1, naming shard-000003.emb and the same rows",
          cmd.returncode == 1 and "shard-000003.emb" in out and rows_text in out, out)
    check("the other shards read", np.array_equal(embstore.open(m)[[0, 2999, 4000, 10006]],
                                                  embstore.generate(10007, 33, 21)[[0, 2999, 4000, 10006]]))


def bad_shards():
    rows, dim = 2500, 5
    a = embstore.dask.generate(CLIENT, path("A"), rows, dim, 7, shard_rows=1000, fsync=False)
    embstore.dask.generate(CLIENT, path("B"), rows, dim, 8, shard_rows=1000, fsync=False)

    def copy(name):
        shutil.copytree(path("A"), path(name))
        return path(name, "manifest.json")

    def shard_error(what, m, index, exc, words, row):
        """A shard whose file is wrong: open works (lazy); its rows raise
        exc naming it; the other shards read; dask's verify reports it."""
        t = embstore.open(m)
        other = 0 if index else 1500
        check(f"{what}: the manifest opens, and another shard's rows read",
              np.array_equal(t[other], embstore.open(a)[other]))
        e = raises(f"{what}: its rows raise {exc.__name__}", lambda: t[row], exc)
        msg = str(e) if e is not None else ""
        print(f"     {what}: {type(e).__name__}: {msg}")
        check(f"{what}: the message names shard {index}, its rows and says {words!r}",
              isinstance(e, embstore.Error) and f"shard {index} (" in msg and
              f"rows [{index * 1000}, {min(rows, index * 1000 + 1000)})" in msg and all(w in msg for w in words), msg)
        raises(f"{what}: t.shard({index}) raises it too", lambda: t.shard(index), exc, words[0])
        r = embstore.dask.verify(CLIENT, m)
        bad = r["bad_shards"]
        check(f"{what}: embstore.dask.verify reports it, without raising: shard {index} alone, its message",
              not r["ok"] and [b["index"] for b in bad] == [index] and not bad[0]["checked"] and
              bad[0]["path"] == embstore.open(m).shards[index]["path"] and words[0] in bad[0]["error"] and
              r["shards_checked"] == 2, r)
        cmd = cli("verify", m)
        out = (cmd.stdout + cmd.stderr).decode()
        check(f"{what}: embstore verify: exit 1, naming it", cmd.returncode == 1 and words[0] in out, out)

    m = copy("foreign")
    shutil.copyfile(path("B", "shard-000002.emb"), path("foreign", "shard-000002.emb"))
    shard_error("a shard of another table in place of shard 2", m, 2, embstore.CorruptionError,
                ["belongs to another table", "shard-000002.emb"], 2100)
    m = copy("missing")
    os.remove(path("missing", "shard-000001.emb"))
    shard_error("shard 1 missing", m, 1, embstore.NotFoundError, ["is missing", "shard-000001.emb"], 1500)

    def edit(name, fn):
        m = copy(name)
        doc = json.load(open(m))
        fn(doc)
        with open(m, "w") as f:
            json.dump(doc, f)
        return m

    m = edit("loop", lambda d: d["shards"][0].update(path="loop.emb"))
    os.symlink("loop.emb", path("loop", "loop.emb"))
    shard_error("shard 0 a symlink to itself (a loop)", m, 0, embstore.CorruptionError,
                ["is a symbolic link", "loop.emb"], 10)
    m = edit("link", lambda d: d["shards"][0].update(path="link.emb"))
    os.symlink("shard-000000.emb", path("link", "link.emb"))
    shard_error("shard 0 a symlink to a good shard", m, 0, embstore.CorruptionError,
                ["is a symbolic link", "link.emb"], 10)

    # Manifests that are wrong fail at open, and so every dask function.
    cases = [
        ("a gap (shard 1 starting at 1001)", lambda d: d["shards"][1].update(first_row=1001),
         ["rows [1000, 1001) are in no shard (a gap)", "shard 1"]),
        ("an overlap (shard 1 starting at 999)", lambda d: d["shards"][1].update(first_row=999),
         ["rows [999, 1000) are in two shards (an overlap)", "shard 1"]),
    ]
    for p in ("../x.emb", "/abs/x.emb", "sub/x.emb"):
        cases.append((f"a shard path {p!r}", lambda d, p=p: d["shards"][2].update(path=p),
                      [f"'{p}' is not a file name in the manifest's folder"]))
    for i, (what, fn, words) in enumerate(cases):
        m = edit(f"manifest-{i}", fn)
        e = raises(f"{what}: embstore.open raises CorruptionError", lambda: embstore.open(m),
                   embstore.CorruptionError, words[0])
        print(f"     {what}: {e}")
        check(f"{what}: the message says so, naming the manifest", e is not None and
              all(w in str(e) for w in words) and m in str(e), str(e))
        raises(f"{what}: embstore.dask.verify raises it", lambda: embstore.dask.verify(CLIENT, m),
               embstore.CorruptionError, words[0])
        raises(f"{what}: embstore.dask.to_dask_array raises it", lambda: embstore.dask.to_dask_array(m),
               embstore.CorruptionError, words[0])
    raises("to_dask_array of a table that is not sharded", lambda: embstore.dask.to_dask_array(
        path("single-float32-normal-10007.emb")), embstore.InvalidArgumentError, "not a sharded table")


def _digest(block):
    """A chunk's bytes as a (1, 1) array of its 64-bit digest."""
    d = hashlib.blake2b(np.ascontiguousarray(block).tobytes(), digest_size=8).digest()
    return np.array([[int.from_bytes(d, "little")]], dtype=np.uint64)


def dask_array():
    m = path("gen-float32-normal-10007", "manifest.json")
    ref = embstore.open(path("single-float32-normal-10007.emb")).array
    x = embstore.dask.to_dask_array(m)
    t = embstore.open(m)
    check("one chunk per shard: the shards' rows, one column chunk",
          x.shape == (10007, 33) and x.dtype == np.float32 and x.chunks == (tuple(s["rows"] for s in t.shards), (33,)),
          x.chunks)
    got = x.compute()
    check("compute() is the table, bit for bit", np.array_equal(got.view(np.uint32), ref.view(np.uint32)))
    digests = x.map_blocks(_digest, dtype=np.uint64, chunks=((1,) * len(t.shards), (1,))).compute()
    want = [_digest(ref[s["first_row"]:s["first_row"] + s["rows"]])[0, 0] for s in t.shards]
    check("each chunk's digest, computed on the workers, is the table's rows'", digests[:, 0].tolist() == want)
    total = float(x.sum(dtype=np.float64).compute())
    exact = float(ref.astype(np.float64).sum())
    check("sum() on the cluster is NumPy's (float64, to the order of summation)",
          abs(total - exact) <= 1e-9 * np.abs(ref).sum(dtype=np.float64), (total, exact))
    col = x.mean(axis=0).compute()
    check("mean(axis=0) on the cluster is NumPy's", np.allclose(col, ref.mean(axis=0, dtype=np.float64), rtol=1e-5,
                                                                 atol=1e-6))
    graph = pickle.dumps(dict(x.__dask_graph__()))
    check(f"the graph holds no rows: {len(graph)} bytes pickled for a {ref.nbytes:,}-byte table",
          len(graph) < 8000 and m.encode() in graph, len(graph))
    y = embstore.dask.to_dask_array(m)
    check("the same table gives the same names (deterministic keys)", y.name == x.name and
          x.name.startswith("embstore-" + t.info()["sharded"]["table_id"] + "-float32"), (x.name, y.name))
    z = embstore.dask.to_dask_array(m, "float16")
    check("another dtype another name", z.name != x.name and z.dtype == np.float16, z.name)
    check("dtype='float16' from float32: rounded as gather(dtype='float16') rounds",
          np.array_equal(z.compute().view(np.uint16),
                         embstore.open(path("single-float32-normal-10007.emb"))
                         .gather(np.arange(10007), dtype="float16").view(np.uint16)))
    chunk = embstore.dask._read_shard(m, 4, "float32", t.shards[4]["checksum"])
    check("a chunk of a .emb shard is a read-only view over the mapping (its base holds the mapping), no copy",
          not chunk.flags.owndata and not chunk.flags.writeable and type(chunk.base).__name__ == "PyCapsule" and
          np.array_equal(chunk, ref[4000:5000]), (chunk.flags, type(chunk.base)))
    # The half types.
    mh = path("gen-float16-normal-3001", "manifest.json")
    h = embstore.dask.to_dask_array(mh)
    check("a float16 table: float16 chunks, the stored values",
          h.dtype == np.float16 and h.compute().tobytes() == stored(embstore.open(mh)))
    mb = path("gen-bfloat16-normal-3001", "manifest.json")
    b = embstore.dask.to_dask_array(mb)
    check("a bfloat16 table: float32 chunks, the values exactly (t[:])",
          b.dtype == np.float32 and np.array_equal(b.compute(), embstore.open(mb)[0:3001]))
    raises("dtype='bfloat16' is refused (NumPy has none)", lambda: embstore.dask.to_dask_array(mb, "bfloat16"),
           embstore.InvalidArgumentError, "NumPy has no bfloat16")
    # The table replaced under the array's feet: refused, not wrong rows.
    folder = path("replaced")
    mr = embstore.dask.generate(CLIENT, folder, 3000, 4, 1, shard_rows=1000, fsync=False)
    old = embstore.dask.to_dask_array(mr)
    embstore.dask.generate(CLIENT, folder, 3000, 4, 2, shard_rows=1000, fsync=False)
    raises("an array of a manifest since replaced by another table's: CorruptionError on compute",
           lambda: old.compute(), embstore.CorruptionError, "the manifest was replaced")


def shard_ops():
    m = path("gen-float32-normal-10007", "manifest.json")
    src = embstore.open(m)
    z = embstore.dask.compress(CLIENT, m, path("ops-z"), level=3)
    tz = embstore.open(z)
    check("compress: a manifest of .embz shards with the source's rows and checksums",
          [s["path"] for s in tz.shards] == [s["path"].replace(".emb", ".embz") for s in src.shards] and
          [(s["first_row"], s["rows"], s["checksum"]) for s in tz.shards] ==
          [(s["first_row"], s["rows"], s["checksum"]) for s in src.shards] and tz.shard(0).compressed, tz.shards)
    check("compress: the rows read", stored(tz) == stored(src))
    r = embstore.dask.verify(CLIENT, z)
    check("compress: embstore.dask.verify checks its frames", r["ok"] and r["frames_checked"] > 0, r)
    d = embstore.dask.decompress(CLIENT, z, path("ops-d"))
    names = sorted(os.listdir(path("gen-float32-normal-10007")))
    check("decompress: every shard the original file byte for byte, and the manifest too",
          d == path("ops-d", "manifest.json") and sorted(os.listdir(path("ops-d"))) == names and
          all(filecmp.cmp(path("ops-d", n), path("gen-float32-normal-10007", n), shallow=False) for n in names),
          sorted(os.listdir(path("ops-d"))))
    raises("decompress of .emb shards: the task's error raised", lambda: embstore.dask.decompress(
        CLIENT, m, path("ops-bad")), embstore.InvalidArgumentError, "is not compressed")
    check("... and no manifest written", not os.path.exists(path("ops-bad", "manifest.json")))
    c = embstore.dask.convert(CLIENT, m, path("ops-c"), "float16")
    tc = embstore.open(c)
    single = path("single-float32-normal-10007.emb")
    embstore.convert(single, path("single-f16.emb"), dtype="float16", fsync=False)
    check("convert float16: a float16 sharded table, the rows embstore.convert makes of the single table",
          tc.dtype == "float16" and tc.shape == src.shape and
          stored(tc) == stored(embstore.open(path("single-f16.emb"))))
    check("convert: embstore.dask.verify passes, under a new table id", embstore.dask.verify(CLIENT, c)["ok"] and
          tc.info()["sharded"]["table_id"] != src.info()["sharded"]["table_id"])
    raises("convert into the source's own folder is refused",
           lambda: embstore.dask.convert(CLIENT, m, path("gen-float32-normal-10007"), "float16"),
           embstore.InvalidArgumentError, "another folder")
    check("... and the source is untouched",
          embstore.dask.verify(CLIENT, m)["ok"] and embstore.open(m).dtype == "float32")


if __name__ == "__main__":
    t0 = time.time()
    TMP = tempfile.mkdtemp(prefix="embstore-dask-")
    code = 1
    try:
        # A worker's temporary files in this test's folders are its own business.
        os.environ.pop("EMBSTORE_NAMED_TEMP", None)
        with distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=logging.CRITICAL) as cluster, \
                distributed.Client(cluster) as client:
            CLIENT = client
            print(f"dask_test: a LocalCluster of 3 worker processes in {time.time() - t0:.1f} s")
            code = run("dask_test", [generation, worker_killed, corrupt_shard, bad_shards, dask_array, shard_ops])
            CLIENT = None
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"dask_test: {time.time() - t0:.1f} s")
    sys.exit(code)

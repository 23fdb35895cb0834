#!/usr/bin/python3
"""Sharded tables from the command line (run by ctest):
    shard_cli_test.py EMBSTORE

- generate --shard-rows writes a folder (manifest.json and shards) whose
  rows are the single-file table's, byte for byte (`get --raw`); info, text
  and --json, describes it from the manifest or its folder; get, export and
  nearest read it as one table.
- verify names the corrupt shard and the rows of the whole table (exit 1),
  and a missing shard; compress, decompress and convert work shard by shard
  into another folder (decompress gives back every byte; convert refuses
  the source's own folder).
- append adds a table as a new shard, and refuses (exit 2) another dim or
  dtype, a sharded table as the source, a table file as the manifest, and a
  symlink where the new shard goes (its target untouched); two appends
  racing on one manifest both land.
- Refusals: --shard-rows 0, -o a file, more rows than a table file takes
  without --shard-rows (pointing at it, generating nothing), share of a
  sharded table; hostile manifests (a FIFO, /dev/zero, JSON nested a million
  deep, a key twice, a manifest listing itself) end at once with a clear
  message.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, run  # noqa: E402

EMB = os.path.abspath(sys.argv[1])
TIMEOUT = 60  # seconds for any one command: longer is a hang

ROWS, DIM, SHARD_ROWS = 1003, 7, 250  # 5 shards, the last of 3 rows


def emb(*args, env=None, timeout=TIMEOUT):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([EMB, *args], capture_output=True, timeout=timeout, env=e)


def err(r):
    return r.stderr.decode(errors="replace")


def make_sharded(d, name="t", seed="5", shard_rows=SHARD_ROWS, rows=ROWS):
    folder = os.path.join(d, name)
    r = emb("generate", "--rows", str(rows), "--dim", str(DIM), "--seed", seed, "--shard-rows", str(shard_rows),
            "-o", folder, "--no-fsync")
    check(f"generate --shard-rows into {name}", r.returncode == 0, err(r))
    return folder


def make_table(d, name, rows, dim=DIM, seed="3", *extra):
    path = os.path.join(d, name)
    r = emb("generate", "--rows", str(rows), "--dim", str(dim), "--seed", seed, "-o", path, "--no-fsync", *extra)
    check(f"generate {name}", r.returncode == 0, err(r))
    return path


def raw(spec, rows=ROWS):
    r = emb("get", spec, f"0:{rows}", "--raw")
    check(f"get --raw {os.path.basename(spec)}", r.returncode == 0, err(r))
    return r.stdout


def test_generate_and_read(d):
    t = make_sharded(d)
    names = sorted(os.listdir(t))
    check("the folder holds the manifest and 5 shards",
          names == ["manifest.json"] + [f"shard-{i:06d}.emb" for i in range(5)], names)
    single = make_table(d, "single.emb", ROWS, DIM, "5")
    whole = raw(single)
    check("the rows are the single-file table's, byte for byte",
          raw(t) == whole and raw(os.path.join(t, "manifest.json")) == whole and len(whole) == ROWS * DIM * 4)
    # The same command writes the same bytes.
    again = make_sharded(d, "again")
    check("generating again writes the same files",
          all(open(os.path.join(t, n), "rb").read() == open(os.path.join(again, n), "rb").read() for n in names))

    for spec in (t, os.path.join(t, "manifest.json")):
        r = emb("info", spec)
        out = r.stdout.decode()
        check(f"info {os.path.relpath(spec, d)}",
              r.returncode == 0 and "embstore sharded table 1.0: a manifest and 5 shards" in out and
              f"shape        {ROWS} x {DIM} float32" in out and
              "shard 2      rows [500, 750)  shard-000002.emb" in out and
              "torch.nn.Embedding(1003, 7)" in out, out + err(r))
        r = emb("info", spec, "--json")
        try:
            j = json.loads(r.stdout)
        except ValueError:
            j = {}
        shards = j.get("sharded", {}).get("shards", [])
        check(f"info --json {os.path.relpath(spec, d)}",
              r.returncode == 0 and j.get("rows") == ROWS and j.get("dim") == DIM and j.get("dtype") == "float32" and
              len(shards) == 5 and shards[4] == {**shards[4], "path": "shard-000004.emb", "first_row": 1000, "rows": 3}
              and len(j["sharded"]["table_id"]) == 32, r.stdout.decode() + err(r))

    # get: rows across shards, and out of range.
    r1, r2 = emb("get", t, "248:252", "1002", "--json"), emb("get", single, "248:252", "1002", "--json")
    check("get across shard boundaries", r1.returncode == 0 and r1.stdout == r2.stdout, err(r1))
    r = emb("get", t, "1003")
    check("get past the last row is out of range", r.returncode == 1 and "out of range" in err(r), err(r))
    # export: the whole table as one .npy.
    npy = os.path.join(d, "t.npy")
    r = emb("export", t, "-o", npy, "--no-fsync")
    ok = r.returncode == 0 and os.path.exists(npy)
    a = numpy.load(npy) if ok else None
    check("export of a sharded table", ok and a.shape == (ROWS, DIM) and a.tobytes() == whole, err(r))
    # nearest: the same answers as the single file's.
    for q in (["--id", "5"], ["--id", "999", "--metric", "l2"]):
        r1, r2 = emb("nearest", t, *q, "-k", "7"), emb("nearest", single, *q, "-k", "7")
        check(f"nearest {' '.join(q)}", r1.returncode == 0 and r1.stdout == r2.stdout and r1.stdout.count(b"\n") == 8,
              err(r1))


def test_verify(d):
    t = make_sharded(d, "v")
    r = emb("verify", t)
    check("verify of a sound sharded table", r.returncode == 0 and b"ok: 1003 rows" in r.stdout and b"5 shards" in r.stdout,
          r.stdout.decode() + err(r))
    # One byte of shard 2's rows: its row 10, the table's row 510.
    shard2 = os.path.join(t, "shard-000002.emb")
    info = json.loads(emb("info", shard2, "--json").stdout)
    offset = info["data_offset"] + 10 * info["row_stride"] + 1
    with open(shard2, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x10]))
    r = emb("verify", t, "--threads", "1")
    out = r.stdout.decode()
    check("verify names the corrupt shard and the table's rows",
          r.returncode == 1 and "corrupt shard shard-000002.emb: block 0: rows [500, 750)" in out and
          "shard shard-000002.emb rows [500, 750)" in err(r), out + err(r))
    os.remove(os.path.join(t, "shard-000004.emb"))
    r = emb("verify", t)
    check("verify names a missing shard",
          r.returncode == 1 and "bad shard 4 (shard-000004.emb, rows [1000, 1003)) is missing" in r.stdout.decode(),
          r.stdout.decode() + err(r))
    r = emb("get", t, "3")
    check("rows of the other shards still read", r.returncode == 0, err(r))
    r = emb("get", t, "1001")
    check("a row of the missing shard is an error naming it",
          r.returncode == 1 and "shard 4 (shard-000004.emb, rows [1000, 1003)) is missing" in err(r), err(r))


def test_compress_decompress_convert(d):
    t = make_sharded(d, "c")
    whole = raw(t)
    z, back, bf = (os.path.join(d, n) for n in ("cz", "cback", "cbf"))
    r = emb("compress", os.path.join(t, "manifest.json"), "-o", z, "--no-fsync")
    check("compress a manifest into another folder",
          r.returncode == 0 and sorted(os.listdir(z)) == ["manifest.json"] + [f"shard-{i:06d}.embz" for i in range(5)],
          err(r))
    check("the compressed table reads the same rows", raw(z) == whole)
    r = emb("verify", z)
    check("the compressed table verifies", r.returncode == 0 and b"frames" in r.stdout, r.stdout.decode() + err(r))
    r = emb("decompress", z, "-o", back, "--no-fsync")
    check("decompress it into a third folder", r.returncode == 0, err(r))
    same = all(open(os.path.join(t, n), "rb").read() == open(os.path.join(back, n), "rb").read() for n in os.listdir(t))
    check("decompressed: every file byte for byte, the manifest too", same and sorted(os.listdir(back)) == sorted(os.listdir(t)))
    r = emb("compress", t, "-o", z)
    check("compress over an existing manifest needs -f",
          r.returncode == 1 and "exists (replacing it was not asked for)" in err(r), err(r))
    r = emb("compress", t, "-o", z, "-f", "--no-fsync")
    check("... and does it with -f", r.returncode == 0, err(r))
    r = emb("decompress", t, "-o", os.path.join(d, "cnot"))
    check("decompress of shards that are not compressed", r.returncode == 2 and "is not compressed" in err(r), err(r))
    r = emb("convert", t, "-o", bf, "--dtype", "bfloat16", "--no-fsync")
    check("convert into another folder", r.returncode == 0, err(r))
    info = json.loads(emb("info", bf, "--json").stdout or b"{}")
    check("the converted table is bfloat16 with its own id",
          info.get("dtype") == "bfloat16" and info.get("rows") == ROWS and
          info["sharded"]["table_id"] != json.loads(emb("info", t, "--json").stdout)["sharded"]["table_id"], info)
    r = emb("verify", bf)
    check("the converted table verifies", r.returncode == 0, r.stdout.decode() + err(r))
    before = open(os.path.join(t, "manifest.json"), "rb").read()
    for same_folder in (t, t + "/", os.path.join(t, ".")):
        r = emb("convert", t, "-o", same_folder, "--dtype", "float16")
        check(f"convert into the source's folder ({os.path.relpath(same_folder, d)}) is refused",
              r.returncode == 2 and "would replace the source's" in err(r), err(r))
    check("the source is untouched", open(os.path.join(t, "manifest.json"), "rb").read() == before and raw(t) == whole)


def test_append(d):
    t = make_sharded(d, "a")
    manifest = os.path.join(t, "manifest.json")
    src = make_table(d, "src.emb", 100, DIM, "9")
    before_rows = raw(t)
    r = emb("append", t, src, "--no-fsync")
    check("append a table", r.returncode == 0 and b"added shard-000005.emb: rows [1003, 1103)" in r.stdout,
          r.stdout.decode() + err(r))
    check("its rows come after the table's", raw(t, ROWS + 100) == before_rows + raw(src, 100))
    r = emb("verify", t)
    check("the table verifies after the append", r.returncode == 0 and b"6 shards" in r.stdout, err(r))
    m = json.load(open(manifest))
    check("the manifest lists the new shard", m["rows"] == ROWS + 100 and m["shards"][-1]["path"] == "shard-000005.emb" and
          m["shards"][-1]["first_row"] == ROWS, m)

    before = open(manifest, "rb").read()
    d8 = make_table(d, "d8.emb", 10, 8)
    half = make_table(d, "half.emb", 10, DIM, "3", "--dtype", "float16")
    other = make_sharded(d, "other", "7")
    cases = [
        ("another dim", [t, d8], 2, "7-dimensional float32"),
        ("another dtype", [t, half], 2, "embstore convert --dtype"),
        ("a sharded table as the source", [t, other], 2, "is a sharded table"),
        ("a table file as the manifest", [src, d8], 2, "is a table file, not a sharded table's manifest"),
        ("a missing source", [t, os.path.join(d, "nothing.emb")], 1, "No such file"),
        ("a missing manifest", [os.path.join(d, "nothing"), src], 1, "No such file"),
    ]
    for what, args, code, message in cases:
        r = emb("append", *args, "--no-fsync")
        check(f"append refuses {what} (exit {code})", r.returncode == code and message in err(r),
              f"exit {r.returncode}: {err(r)}")
    check("refused appends leave the manifest as it was", open(manifest, "rb").read() == before)
    r = emb("append", t)
    check("append without a table is a usage error", r.returncode == 2, err(r))

    # A symlink where the next shard goes: kept, its target untouched, and
    # the next name taken.
    outside = make_table(d, "outside.emb", 5)
    outside_bytes = open(outside, "rb").read()
    os.symlink("../outside.emb", os.path.join(t, "shard-000006.emb"))
    r = emb("append", t, src, "--no-fsync")
    check("append keeps a symlink where its shard would go, and takes the next name",
          r.returncode == 0 and b"added shard-000007.emb" in r.stdout and
          os.path.islink(os.path.join(t, "shard-000006.emb")), err(r))
    check("... and writes nothing through it", open(outside, "rb").read() == outside_bytes)
    # A file no manifest lists but not this table's (another manifest in the
    # folder may list it) is kept too.
    shutil.copy(d8, os.path.join(t, "shard-000008.emb"))
    r = emb("append", t, src, "--no-fsync")
    check("an unlisted file of another table is kept: the next name is taken",
          r.returncode == 0 and b"added shard-000009.emb" in r.stdout and
          open(os.path.join(t, "shard-000008.emb"), "rb").read() == open(d8, "rb").read(), err(r))
    r = emb("verify", t)
    check("and the table verifies", r.returncode == 0, r.stdout.decode() + err(r))


def test_regenerate_other_table(d):
    out = os.path.join(d, "regen")
    r = emb("generate", "--rows", "50", "--dim", "4", "--seed", "1", "--shard-rows", "20", "-o", out, "--no-fsync")
    check("a sharded table", r.returncode == 0, err(r))
    r = emb("generate", "--rows", "50", "--dim", "4", "--seed", "2", "--shard-rows", "20", "-o", out, "--no-fsync")
    r2 = emb("verify", out)
    check("another table generated into its folder replaces it whole (verify ok, seed 2's rows)",
          r.returncode == 0 and r2.returncode == 0 and
          raw(out, 50) == raw(make_table(d, "regen-single.emb", 50, 4, "2"), 50),
          err(r) + err(r2))


def test_killed_append(d):
    t = make_sharded(d, "k")
    manifest = os.path.join(t, "manifest.json")
    n = 2000000  # 56 MB: an append takes long enough to be killed part way
    big = make_table(d, "big.emb", n, DIM, "11")
    start = time.monotonic()
    r = emb("append", t, big, "--no-fsync")
    took = time.monotonic() - start
    check("an append of 2M rows", r.returncode == 0, err(r))
    rows, kept = ROWS + n, 0
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8, 0.95):
        p = subprocess.Popen([EMB, "append", t, big, "--no-fsync"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(took * fraction)
        p.kill()
        p.wait(timeout=TIMEOUT)
        m = json.load(open(manifest))
        check(f"append killed at {fraction:.0%} of its time: the old manifest or the new one",
              m["rows"] in (rows, rows + n), m["rows"])
        kept += m["rows"] == rows
        rows = m["rows"]
        leftovers = [x for x in os.listdir(t) if x.startswith(".embstore-tmp-")]
        check(f"append killed at {fraction:.0%}: a temporary file at most", len(leftovers) <= 1, leftovers)
    print(f"note: {kept} of 6 killed appends were killed before their manifest was replaced", flush=True)
    r = emb("verify", t)
    check("the table verifies after the kills", r.returncode == 0, r.stdout.decode() + err(r))
    r = emb("append", t, big, "--no-fsync")
    check("the next append succeeds", r.returncode == 0, err(r))
    m = json.load(open(manifest))
    check("... and lands", m["rows"] == rows + n, m["rows"])
    check("no temporary file is left after it",
          not [x for x in os.listdir(t) if x.startswith(".embstore-tmp-")], os.listdir(t))
    r = emb("get", t, f"{rows + n - 1}")
    check("its last row reads", r.returncode == 0, err(r))


def test_appends_race(d):
    t = make_sharded(d, "race")
    srcs = [make_table(d, f"race{i}.emb", 50 + i, DIM, str(20 + i)) for i in range(2)]
    for attempt in range(3):
        procs = [subprocess.Popen([EMB, "append", t, s, "--no-fsync"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for s in srcs]
        outs = [p.communicate(timeout=TIMEOUT) for p in procs]
        check(f"two appends at once both succeed (round {attempt})", all(p.returncode == 0 for p in procs),
              [o[1].decode() for o in outs])
    m = json.load(open(os.path.join(t, "manifest.json")))
    added = m["shards"][5:]
    check("the manifest lists every new shard", len(m["shards"]) == 11 and
          sorted(s["rows"] for s in added) == [50, 50, 50, 51, 51, 51] and
          [s["path"] for s in added] == [f"shard-{i:06d}.emb" for i in range(5, 11)] and
          m["rows"] == ROWS + 303, m)
    r = emb("verify", t)
    check("verify ok after the racing appends", r.returncode == 0 and b"11 shards" in r.stdout, r.stdout.decode() + err(r))


def test_refusals(d):
    r = emb("generate", "--rows", "10", "--dim", "2", "--shard-rows", "0", "-o", os.path.join(d, "z0"))
    check("--shard-rows 0 is a usage error", r.returncode == 2 and "--shard-rows must be at least 1" in err(r), err(r))
    f = os.path.join(d, "a-file")
    open(f, "w").close()
    r = emb("generate", "--rows", "10", "--dim", "2", "--shard-rows", "3", "-o", f)
    check("--shard-rows into a path that is a file", r.returncode == 1 and "a-file" in err(r) and
          os.path.getsize(f) == 0, err(r))
    t0 = time.monotonic()
    out = os.path.join(d, "x.emb")
    r = emb("generate", "--rows", "5000000000", "--dim", "1", "-o", out)
    check("5e9 rows without --shard-rows is refused, pointing at --shard-rows",
          r.returncode == 2 and "--shard-rows" in err(r) and "4294967296" in err(r) and not os.path.exists(out) and
          time.monotonic() - t0 < 10, err(r))
    r = emb("generate", "--rows", "5000000000", "--dim", "1", "--shard-rows", "100", "-o", os.path.join(d, "many"))
    check("too many shards is refused before any is written",
          r.returncode == 2 and "shards, over the limit of 32768" in err(r) and not os.path.exists(os.path.join(d, "many", "shard-000000.emb")),
          err(r))
    t = make_sharded(d, "r")
    shm = os.path.join(d, "shm")
    os.mkdir(shm)
    r = emb("share", t, "--name", "sharded", env={"EMBSTORE_SHM_DIR": shm})
    check("share of a sharded table is refused before reserving its size",
          r.returncode == 2 and "is a sharded table" in err(r) and os.listdir(shm) == [], err(r))


def hostile(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_hostile_manifests(d):
    t = make_sharded(d, "h")
    manifest = os.path.join(t, "manifest.json")
    good = json.load(open(manifest))
    fifo = os.path.join(d, "fifo.json")
    os.mkfifo(fifo)
    for spec, message in ((fifo, "is a FIFO, not a regular file"), ("/dev/zero", "is a character device")):
        for cmd in (["info"], ["get", "--raw"], ["verify"]):
            args = [cmd[0], spec] + cmd[1:] + (["0"] if cmd[0] == "get" else [])
            r = emb(*args, timeout=20)
            check(f"{cmd[0]} {spec} ends at once", r.returncode == 1 and message in err(r), err(r))
    body = json.dumps(good)
    cases = [
        ("deep.json", body[:-1] + ', "x": ' + "[" * 1000000 + "]" * 1000000 + "}", "more than 16 deep"),
        ("dup.json", body[:-1] + ', "dim": 8}', "key 'dim' appears twice in one object"),
        ("neg.json", body.replace(f'"rows": {ROWS}', '"rows": -1003'), '"rows" is not a whole number >= 0'),
        ("float.json", body.replace(f'"rows": {ROWS}', f'"rows": {ROWS}.0'), '"rows" is not a whole number >= 0'),
        ("huge.json", body.replace(f'"rows": {ROWS}', '"rows": 18446744073709551617'), '"rows" is not a whole number'),
        ("v2.json", body.replace('"version": "1.0"', '"version": "2.0"'), "unsupported manifest version 2.0"),
    ]
    for name, text, message in cases:
        start = time.monotonic()
        r = emb("info", hostile(t, name, text))
        check(f"info of a hostile manifest: {name}", r.returncode == 1 and message in err(r) and
              time.monotonic() - start < 10, err(r))
    # Every command says what is wrong with a manifest that does not open,
    # compress and decompress too (not that it is no table file or .embz).
    dup = os.path.join(t, "dup.json")
    for args in (["info", dup], ["get", dup, "0"], ["verify", dup], ["export", dup, "-o", os.path.join(d, "dup.npy")],
                 ["compress", dup, "-o", os.path.join(d, "dupz")], ["decompress", dup, "-o", os.path.join(d, "dupd")],
                 ["convert", dup, "-o", os.path.join(d, "dupc"), "--dtype", "float16"],
                 ["append", dup, os.path.join(t, "shard-000000.emb")]):
        r = emb(*args)
        check(f"{args[0]} of a manifest with a key twice says so",
              r.returncode == 1 and "key 'dim' appears twice in one object" in err(r), err(r))
    # Shards in the wrong order, and a manifest that lists itself.
    m = dict(good, shards=[good["shards"][1], good["shards"][0]] + good["shards"][2:])
    r = emb("info", hostile(t, "order.json", json.dumps(m)))
    check("shards out of order are a gap", r.returncode == 1 and "are in no shard (a gap)" in err(r), err(r))
    m = json.loads(json.dumps(good))
    m["shards"][1]["path"] = "self.json"
    self_path = hostile(t, "self.json", json.dumps(m))
    r = emb("info", self_path)
    check("a manifest listing itself still describes (from the manifest alone)", r.returncode == 0, err(r))
    r = emb("get", self_path, "300")
    check("a manifest listing itself as a shard: its rows are an error",
          r.returncode == 1 and "a manifest cannot be a shard" in err(r), err(r))
    r = emb("get", self_path, "3")
    check("... the other shards still read", r.returncode == 0, err(r))
    # A 100 MB manifest is refused unread.
    big = os.path.join(t, "big.json")
    with open(big, "w") as f:
        f.write(body[:-1] + ', "x": "')
        f.truncate(100 << 20)
    r = emb("info", big)
    check("a 100 MB manifest is refused by its size", r.returncode == 1 and "this reader reads at most" in err(r), err(r))
    # A shard whose name holds a terminal escape, with damaged padding:
    # what verify and info print is escaped.
    esc = make_sharded(d, "esc")
    name = "s\x1b[31mRED.emb"
    with open(os.path.join(esc, "shard-000001.emb"), "rb") as f:
        b = bytearray(f.read())
    data_offset = json.loads(emb("info", os.path.join(esc, "shard-000001.emb"), "--json").stdout)["data_offset"]
    b[data_offset - 6] ^= 1
    os.remove(os.path.join(esc, "shard-000001.emb"))
    with open(os.path.join(esc, name), "wb") as f:
        f.write(b)
    m = json.load(open(os.path.join(esc, "manifest.json")))
    m["shards"][1]["path"] = name
    json.dump(m, open(os.path.join(esc, "manifest.json"), "w"))
    r = emb("verify", esc)
    check("verify of a shard named with an escape: found, and printed escaped",
          r.returncode == 1 and b"nonzero padding" in r.stdout and b"\x1b" not in r.stdout + r.stderr and
          b"\\x1b[31mRED.emb" in r.stdout, r.stdout + r.stderr)
    r = emb("info", esc)
    check("info of a shard named with an escape prints it escaped",
          r.returncode == 0 and b"\x1b" not in r.stdout + r.stderr and b"\\x1b[31mRED.emb" in r.stdout,
          r.stdout + r.stderr)
    os.rename(os.path.join(esc, name), os.path.join(esc, "gone"))
    r = emb("get", esc, "300")
    check("an error naming a shard named with an escape prints it escaped",
          r.returncode == 1 and b"\x1b" not in r.stderr and b"\\x1b[31mRED.emb" in r.stderr, r.stderr)
    # A shard path that is a FIFO: an error naming it, at once.
    os.remove(os.path.join(t, "shard-000003.emb"))
    os.mkfifo(os.path.join(t, "shard-000003.emb"))
    r = emb("get", t, "800", timeout=20)
    check("a FIFO where a shard should be", r.returncode == 1 and "shard-000003.emb" in err(r) and
          "not a regular file" in err(r), err(r))


def main():
    d = tempfile.mkdtemp(prefix="embstore-shard-cli-")
    try:
        return run("shard_cli_test", [(t.__name__, lambda t=t: t(d)) for t in (
            test_generate_and_read, test_verify, test_compress_decompress_convert, test_append, test_killed_append,
            test_appends_race, test_regenerate_other_table,
            test_refusals, test_hostile_manifests)])
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

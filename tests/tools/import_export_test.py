#!/usr/bin/python3
"""Tables in and out, against NumPy and PyTorch themselves (run by ctest):
    import_export_test.py EMBSTORE GOLDEN_DIR

- .npy files written by NumPy (versions 1.0, 2.0, 3.0; float32, float16,
  float64, both byte orders, C and Fortran order; special values) import to
  exactly the bits of numpy's astype('<f4').
- safetensors files written here by the format's own layout (the Python
  package is not in Debian) with F32, F16, BF16 and F64 tensors import to
  exactly PyTorch's .float(); --tensor picks, --list lists, an ambiguous
  file names its candidates.
- raw float32 with --rows/--dim, its size checked.
- Exports load with numpy.load(mmap_mode='r') (a memmap, no copy) and
  torch.from_numpy, and as safetensors through a reader of the format.
- Every hostile file in GOLDEN_DIR/bad/import fails with its message (exit
  1 or 2, never a signal), and so does a 100 MB+ header.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, run  # noqa: E402

EMB, GOLDEN = sys.argv[1], sys.argv[2]


def emb(*args):
    return subprocess.run([EMB, *args], capture_output=True)


def rows_of(table, rows, dim):
    r = emb("get", table, f"0:{rows}", "--raw")
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode())
    return numpy.frombuffer(r.stdout, dtype="<f4").reshape(rows, dim)


def same_bits(a, b):
    a, b = numpy.ascontiguousarray(a, dtype="<f4"), numpy.ascontiguousarray(b, dtype="<f4")
    return a.shape == b.shape and numpy.array_equal(a.view("<u4"), b.view("<u4"))


def metadata(table):
    return json.loads(emb("info", table, "--json").stdout)["metadata"]


def write_safetensors(path, tensors, meta=None):
    """tensors: name -> (dtype string, shape, raw little-endian bytes)."""
    header, data, at = {}, b"", 0
    if meta:
        header["__metadata__"] = meta
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + len(raw)]}
        data += raw
        at += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def read_safetensors(path):
    """A reader of the format: name -> (dtype, numpy array view), metadata."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        assert t["dtype"] == "F32"
        out[name] = numpy.frombuffer(blob, dtype="<f4", count=(e - b) // 4, offset=8 + n + b).reshape(t["shape"])
    return out, meta, n


def special_values(rows, dim, dtype, rng):
    a = rng.standard_normal((rows, dim)).astype(numpy.float64) * 3
    flat = a.reshape(-1)
    specials = [0.0, -0.0, numpy.inf, -numpy.inf, numpy.nan, 1e-8, -6e-5, 65504.0, 1e-300, 3.4e38, 1e39,
                1.0000000596046448]  # the last rounds to even in float32
    flat[:len(specials)] = specials
    return a.astype(dtype)


def formats_in_and_out():
    d = tempfile.mkdtemp(prefix="embstore-import-")
    rng = numpy.random.default_rng(11)
    try:
        # --- .npy from NumPy ----------------------------------------------------
        n = 0
        for version in ((1, 0), (2, 0), (3, 0)):
            for dtype in ("<f4", ">f4", "<f2", ">f2", "<f8", ">f8"):
                for order in ("C", "F"):
                    rows, dim = 37, 19
                    with numpy.errstate(over="ignore"):
                        a = special_values(rows, dim, dtype, rng)
                    a = numpy.asfortranarray(a) if order == "F" else numpy.ascontiguousarray(a)
                    src = os.path.join(d, f"a{n}.npy")
                    with open(src, "wb") as f:
                        numpy.lib.format.write_array(f, a, version=version)
                    out = os.path.join(d, f"a{n}.emb")
                    # float32 rows, as NumPy's astype makes them (a float16
                    # source keeps its type unless asked: checked below).
                    r = emb("import", src, "-o", out, "--dtype", "float32")
                    what = f".npy {version[0]}.0 {dtype} {order}-order"
                    check(what + " imports", r.returncode == 0, r.stderr.decode())
                    if r.returncode == 0:
                        with numpy.errstate(over="ignore"):
                            want = a.astype("<f4")
                        check(what + " has numpy's float32 bits", same_bits(rows_of(out, rows, dim), want))
                        m = metadata(out)
                        check(what + " records the source", m.get("import.source") == f"a{n}.npy" and
                              m.get("import.format") == f"npy {version[0]}.0" and len(m.get("import.xxh3", "")) == 16,
                              str(m))
                    if dtype.endswith("f2") and version == (1, 0):
                        half = os.path.join(d, f"a{n}-f16.emb")
                        r = emb("import", src, "-o", half)
                        raw = emb("get", half, f"0:{rows}", "--raw").stdout if r.returncode == 0 else b""
                        check(what + " imports as float16 by default, bits kept",
                              raw == numpy.ascontiguousarray(a).astype("<f2").tobytes(), r.stderr.decode())
                    n += 1
        print(f"ok     {n} .npy files from NumPy import bit for bit", flush=True)

        # The same bytes from another container record the same checksum.
        a = rng.standard_normal((64, 32)).astype("<f4")
        numpy.save(os.path.join(d, "c.npy"), a)
        a.tofile(os.path.join(d, "c.bin"))
        emb("import", os.path.join(d, "c.npy"), "-o", os.path.join(d, "c1.emb"))
        r = emb("import", os.path.join(d, "c.bin"), "--rows", "64", "--dim", "32", "-o", os.path.join(d, "c2.emb"))
        check("raw float32 imports", r.returncode == 0, r.stderr.decode())
        check("raw float32 rows", same_bits(rows_of(os.path.join(d, "c2.emb"), 64, 32), a))
        check("the source checksum is of the tensor bytes",
              metadata(os.path.join(d, "c1.emb"))["import.xxh3"] == metadata(os.path.join(d, "c2.emb"))["import.xxh3"])
        r = emb("import", os.path.join(d, "c.bin"), "--rows", "65", "--dim", "32", "-o", os.path.join(d, "c3.emb"))
        check("raw of the wrong size is refused", r.returncode == 2 and b"not 65 x 32 x 4" in r.stderr, r.stderr.decode())
        r = emb("import", os.path.join(d, "c.bin"), "-o", os.path.join(d, "c3.emb"))
        check("raw without a shape is refused", r.returncode == 2 and b"give its rows and dim" in r.stderr,
              r.stderr.decode())
        check("nothing half-written", not os.path.exists(os.path.join(d, "c3.emb")))

        # --- safetensors -------------------------------------------------------
        w = torch.randn(50, 24, generator=torch.Generator().manual_seed(3))
        w[0, :4] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0])
        tensors = {
            "wte.weight": ("F32", (50, 24), w.numpy().astype("<f4").tobytes()),
            "half": ("F16", (50, 24), w.half().numpy().astype("<f2").tobytes()),
            "brain": ("BF16", (50, 24), w.bfloat16().view(torch.int16).numpy().astype("<i2").tobytes()),
            "double": ("F64", (50, 24), w.double().numpy().astype("<f8").tobytes()),
            "bias": ("F32", (24,), numpy.zeros(24, "<f4").tobytes()),
            "steps": ("I64", (1, 1), numpy.zeros(1, "<i8").tobytes()),
        }
        st = os.path.join(d, "model.safetensors")
        write_safetensors(st, tensors, {"format": "pt"})
        want = {"wte.weight": w, "half": w.half().float(), "brain": w.bfloat16().float(), "double": w.double().float()}
        for name, t in want.items():
            out = os.path.join(d, f"st-{name}.emb")
            r = emb("import", st, "--tensor", name, "-o", out, "--dtype", "float32")
            check(f"safetensors {tensors[name][0]} imports", r.returncode == 0, r.stderr.decode())
            if r.returncode == 0:
                check(f"safetensors {tensors[name][0]} has PyTorch's float32 bits", same_bits(rows_of(out, 50, 24), t.numpy()))
                m = metadata(out)
                check(f"safetensors {tensors[name][0]} metadata", m.get("import.tensor") == name and
                      m.get("import.dtype") == tensors[name][0], str(m))
        r = emb("import", st, "-o", os.path.join(d, "x.emb"))
        check("several 2-D tensors: the candidates are listed",
              r.returncode == 2 and b"choose one with --tensor" in r.stderr and b"brain  BF16 (50, 24)" in r.stderr,
              r.stderr.decode())
        r = emb("import", st, "--tensor", "steps", "-o", os.path.join(d, "x.emb"))
        check("an integer tensor is refused", r.returncode == 1 and b"is I64" in r.stderr, r.stderr.decode())
        r = emb("import", st, "--tensor", "nope", "-o", os.path.join(d, "x.emb"))
        check("a missing tensor is named", r.returncode == 2 and b"no tensor 'nope'" in r.stderr, r.stderr.decode())
        r = emb("import", st, "--list")
        check("--list lists every tensor", r.returncode == 0 and r.stdout.count(b"\n") == 6 and b"wte.weight" in r.stdout,
              r.stdout.decode())
        single = os.path.join(d, "single.safetensors")
        write_safetensors(single, {"bias": tensors["bias"], "emb": tensors["wte.weight"]})
        r = emb("import", single, "-o", os.path.join(d, "single.emb"))
        check("the only 2-D tensor is picked", r.returncode == 0 and
              same_bits(rows_of(os.path.join(d, "single.emb"), 50, 24), w.numpy()), r.stderr.decode())

        # --- export ---------------------------------------------------------------
        t = os.path.join(d, "t.emb")
        emb("generate", "--rows", "300", "--dim", "40", "--seed", "9", "--no-fsync", "-o", t)
        rows = rows_of(t, 300, 40)
        torch.manual_seed(9)
        check("the generated table is PyTorch's", same_bits(rows, torch.nn.Embedding(300, 40).weight.detach().numpy()))
        npy_out = os.path.join(d, "t.npy")
        r = emb("export", t, "-o", npy_out)
        check("export .npy", r.returncode == 0, r.stderr.decode())
        m = numpy.load(npy_out, mmap_mode="r")
        check("numpy.load(mmap_mode='r') maps it", isinstance(m, numpy.memmap) and m.dtype == numpy.dtype("<f4") and
              m.shape == (300, 40) and same_bits(m, rows))
        check("its data is 64-byte aligned", m.offset % 64 == 0, str(m.offset))
        tt = torch.from_numpy(numpy.load(npy_out, mmap_mode="r"))
        check("torch.from_numpy of the mapping", torch.equal(tt.view(torch.int32), torch.from_numpy(rows.copy()).view(torch.int32)))
        st_out = os.path.join(d, "t.safetensors")
        r = emb("export", t, "-o", st_out, "--tensor-name", "wte.weight")
        check("export .safetensors", r.returncode == 0, r.stderr.decode())
        got, meta, hlen = read_safetensors(st_out)
        check("a safetensors reader reads it", list(got) == ["wte.weight"] and same_bits(got["wte.weight"], rows))
        check("its header is 8-byte aligned and carries the metadata", hlen % 8 == 0 and meta.get("generator.seed") == "9" and
              meta.get("format") == "pt", str(meta))
        r = emb("import", st_out, "-o", os.path.join(d, "back.emb"))
        check("export then import gives the same rows", r.returncode == 0 and
              same_bits(rows_of(os.path.join(d, "back.emb"), 300, 40), rows), r.stderr.decode())
        emb("compress", t, "-o", os.path.join(d, "t.embz"), "--no-fsync")
        r = emb("export", os.path.join(d, "t.embz"), "-o", os.path.join(d, "z.npy"))
        check("export from a .embz", r.returncode == 0 and same_bits(numpy.load(os.path.join(d, "z.npy")), rows),
              r.stderr.decode())
        r = emb("export", t, "-o", os.path.join(d, "t.txt"))
        check("export to an unknown kind is refused", r.returncode == 2 and b".npy or .safetensors" in r.stderr,
              r.stderr.decode())
        r = emb("export", t, "-o", npy_out)
        check("export refuses to overwrite", r.returncode == 1 and b"use -f" in r.stderr, r.stderr.decode())

        # --- hostile files ------------------------------------------------------
        want = {
            "npy-bad-magic.npy": "bad magic",
            "npy-header-not-a-dict.npy": "not a dict",
            "npy-header-past-end.npy": "the header says it is 5000 bytes",
            "npy-huge-shape.npy": "overflows 64 bits",
            "npy-shape-too-large-for-64-bits.npy": "too large for 64 bits",
            "npy-int64-dtype.npy": "dtype '<i8' is not supported",
            "npy-missing-shape.npy": "no 'shape' key",
            "npy-negative-shape.npy": "a negative dimension",
            "npy-object-dtype.npy": "Python objects",
            "npy-python-code.npy": "expected a string",
            "npy-structured-dtype.npy": "structured dtype",
            "npy-three-dimensions.npy": "needs a 2-D array",
            "npy-trailing-data.npy": "bytes after the array",
            "npy-truncated-data.npy": "truncated .npy",
            "npy-unknown-key.npy": "unknown key 'x'",
            "npy-escapes-in-dtype.npy": "dtype '<f4\\x1b[2J\\x1b[31m' is not supported",
            "npy-escapes-in-key.npy": "unknown key '\\x1b]0;x\\x07'",
            "npy-leading-zero-dimension.npy": "the dimension '02' has a leading zero",
            "npy-long-suffix-in-3.0.npy": "expected ',' or ')' in the shape",
            "npy-v2-header-4gb.npy": "more than the 65536 embstore reads",
            "npy-version-9.npy": "unsupported .npy version 9.0",
            "st-deep-nesting.safetensors": "nested deeper",
            "st-duplicate-key.safetensors": "appears twice",
            "st-float-shape.safetensors": "not a non-negative integer",
            "st-gap.safetensors": "a gap of 8 bytes",
            "st-header-past-end.safetensors": "the header says it is 4096 bytes",
            "st-int64-tensor.safetensors": "is I64",
            "st-length-2-to-the-63.safetensors": "over the format's limit",
            "st-metadata-not-strings.safetensors": "is not a string",
            "st-negative-shape.safetensors": "not a non-negative integer",
            "st-not-an-object.safetensors": "not a JSON object",
            "st-not-json.safetensors": "not valid JSON",
            "st-offsets-past-end.safetensors": "past its end",
            "st-overlapping.safetensors": "overlaps",
            "st-size-mismatch.safetensors": "disagree",
            "st-two-2d-tensors.safetensors": "choose one with --tensor",
            "st-unknown-dtype.safetensors": "unknown dtype",
            "st-escapes-in-dtype.safetensors": "tensor 'w\\x1b[2J' has an unknown dtype 'F32\\x1b[31m'",
            "wv-duplicate-key.txt": "duplicate key 'a': line 2 and line 4",
            "wv-duplicate-key.bin": "duplicate key 'k': record 0 and record 1",
            "wv-invalid-utf8.vec": "line 2: key '\\xff\\xfe' is not valid UTF-8",
            "wv-wrong-value-count.txt": "line 3 (key 'b'): 2 values, expected 3",
            "wv-count-below-header.vec": "the header says 3 vectors, the file has 2",
            "wv-count-above-header.vec": "line 3: the header says 1 vectors, but more lines follow",
            "wv-not-a-number.txt": "line 2 (key 'b'): value 2 'x' is not a number",
            "wv-truncated-record.bin": "record 1 (key 'b'): truncated",
            "wv-header-garbage.bin": "or word2vec (no 'COUNT DIM' line)",
            "wv-huge-count.bin": "more than the file's",
            "wv-empty-key.bin": "record 0 at byte 4: the key is empty",
        }
        bad_dir = os.path.join(GOLDEN, "bad", "import")
        on_disk = sorted(os.listdir(bad_dir))
        check("every golden bad import file has an expected message", on_disk == sorted(want), str(on_disk))
        for name, needle in want.items():
            out = os.path.join(d, "bad.emb")
            r = emb("import", os.path.join(bad_dir, name), "-o", out)
            check(f"{name}: refused with its message", r.returncode in (1, 2) and needle.encode() in r.stderr,
                  f"exit {r.returncode}: {r.stderr.decode()[:300]}")
            check(f"{name}: nothing written", not os.path.exists(out))
        check("the .npy with Python code in it ran nothing", not os.path.exists("/tmp/pwned"))
        big = os.path.join(d, "big-header.safetensors")
        with open(big, "wb") as f:  # a 100 MB + 8 byte header, sparse
            f.write(struct.pack("<Q", 100_000_008) + b"{")
            f.truncate(8 + 100_000_008 + 32)
        r = emb("import", big, "-o", os.path.join(d, "bad.emb"))
        check("a 100 MB+ JSON header is refused unread", r.returncode == 1 and b"over the format's limit" in r.stderr,
              r.stderr.decode())
    finally:
        subprocess.run(["rm", "-rf", d])


def main():
    return run("import_export_test", [formats_in_and_out])


if __name__ == "__main__":
    sys.exit(main())

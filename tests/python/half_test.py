#!/usr/bin/python3
"""Half-precision tables (float16, bfloat16) end to end, run by ctest as
    half_test.py EMBSTORE MODULE_DIR
PyTorch (1.13.1) and NumPy are the oracles: generation bit for bit against
nn.Embedding(..., dtype=) / normal_ / uniform_; casting against Tensor.to()
on every special class of float32 and a million random values; import and
export read and written by NumPy and PyTorch; the module's dtype, array,
tensor(), gather(dtype=) and t[ids]; .embz, shm: and verify on half tables.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings

EMB, MODULE_DIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import embstore  # noqa: E402
from checks import check, raises, run  # noqa: E402

warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

TMP = tempfile.mkdtemp(prefix="embstore-half-")
TORCH = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def cli(*args, ok=True):
    r = subprocess.run([EMB, *map(str, args)], capture_output=True)
    if ok and r.returncode != 0:
        raise RuntimeError(f"embstore {args}: {r.stderr.decode()}")
    return r


def path(name):
    return os.path.join(TMP, name)


def bits(t):
    """A torch tensor's raw bits as a NumPy array (uint16 or uint32)."""
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.view(torch.int32).numpy().view(np.uint32)


def torch_table(rows, dim, seed, dtype, init="normal", a=0.0, b=1.0):
    torch.manual_seed(seed)
    if init == "normal" and (a, b) == (0.0, 1.0):
        return torch.nn.Embedding(rows, dim, dtype=TORCH[dtype]).weight.detach()
    w = torch.empty(rows, dim, dtype=TORCH[dtype])
    return w.normal_(a, b) if init == "normal" else w.uniform_(a, b)



def generation():
    for dtype in ("float16", "bfloat16"):
        for rows, dim, seed, init, a, b in [(6, 4, 123, "normal", 0.0, 1.0), (1, 7, 5, "normal", 0.0, 1.0),
                                            (257, 33, 2**32 + 7, "normal", 0.5, 0.02),
                                            (100, 9, 3, "uniform", -0.3, 0.3)]:
            kw = {"mean": a, "std": b} if init == "normal" else {"low": a, "high": b}
            got = embstore.generate(rows, dim, seed, init=init, dtype=dtype, **kw)
            want = torch_table(rows, dim, seed, dtype, init, a, b)
            if dtype == "float16":
                ok = isinstance(got, np.ndarray) and got.dtype == np.float16 and \
                    np.array_equal(got.view(np.uint16), bits(want))
            else:
                ok = isinstance(got, torch.Tensor) and got.dtype == torch.bfloat16 and \
                    np.array_equal(bits(got), bits(want))
            check(f"generate {dtype} {init}({a}, {b}) {rows}x{dim} in memory is PyTorch's", ok)
        p = path(f"g-{dtype}.emb")
        embstore.generate(6, 4, 123, path=p, dtype=dtype, fsync=False)
        with embstore.open(p) as t:
            check(f"{dtype}: t.dtype names it", t.dtype == dtype, t.dtype)
            check(f"{dtype}: repr names it", dtype in repr(t), repr(t))
            want = torch_table(6, 4, 123, dtype)
            rows = t[[3, 0]]
            check(f"{dtype}: t[ids] is float32, exactly the stored values widened",
                  rows.dtype == np.float32 and np.array_equal(rows, want[[3, 0]].float().numpy()))
            stored = t.gather([3, 0], dtype=dtype)
            check(f"{dtype}: gather(dtype={dtype!r}) gives the stored bits",
                  np.array_equal(bits(torch.as_tensor(stored)) if dtype == "float16" else bits(stored),
                                 bits(want[[3, 0]])))
            tensor = t.tensor()
            check(f"{dtype}: tensor() is the whole table in its type, bit for bit",
                  tensor.dtype == TORCH[dtype] and np.array_equal(bits(tensor), bits(want)))
            check(f"{dtype}: tensor() is a view of the mapping, not a copy",
                  t.tensor().data_ptr() == tensor.data_ptr())
            if dtype == "float16":
                arr = t.array
                check("float16: t.array is a zero-copy numpy.float16 view",
                      arr.dtype == np.float16 and not arr.flags.writeable and
                      arr.__array_interface__["data"][0] == tensor.data_ptr() and
                      np.array_equal(arr.view(np.uint16), bits(want)))
                check("float16: np.asarray(t) is the same view", np.asarray(t).__array_interface__["data"][0] ==
                      tensor.data_ptr())
            else:
                raises("bfloat16: t.array says what to use instead", lambda: t.array, embstore.NotSupportedError,
                       "t.tensor()")
                a = np.asarray(t)
                check("bfloat16: np.asarray(t) gives float32 rows (exact)",
                      a.dtype == np.float32 and np.array_equal(a, want.float().numpy()))
            # Into a typed out, and rounding on request.
            out = np.empty((2, 4), np.uint16 if dtype == "bfloat16" else np.float16)
            t.gather([1, 2], out=out, dtype=dtype)
            check(f"{dtype}: gather(out=) of the stored type", np.array_equal(out.view(np.uint16), bits(want[[1, 2]])))
            other = "bfloat16" if dtype == "float16" else "float16"
            conv = t.gather([0, 5], dtype=TORCH[other])
            conv_bits = bits(conv) if isinstance(conv, torch.Tensor) else conv.view(np.uint16)
            check(f"{dtype}: gather(dtype=torch.{other}) rounds as .to()",
                  np.array_equal(conv_bits, bits(want[[0, 5]].to(TORCH[other]))))
            raises(f"{dtype}: gather(dtype='float8') names the types", lambda: t.gather([0], dtype="float8"),
                   embstore.InvalidArgumentError, "float32, float16 or bfloat16")


def special_floats():
    """Every special class of float32, and their neighbours."""
    s = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001,
         0x7FA00000, 0x7F812345, 0x7FFFFFFF, 0x00000001, 0x80000001, 0x007FFFFF, 0x00400000, 0x00800000,
         0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0x3F808000, 0x3F818000, 0x3F807FFF, 0x7F7F8000, 0x7F7F7FFF,
         0x33000000, 0x33000001, 0x32FFFFFF, 0x33800000, 0x387FE000, 0x387FF000, 0x38800000, 0x387FFFFF,
         0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FFFFF, 0x47800000, 0xC77FF000, 0x3C00F000, 0x3C011000]
    s += list(range(0x33000000, 0x33000010)) + list(range(0x38800000 - 8, 0x38800000 + 8))
    return np.array(s, dtype=np.uint32)


def casting():
    rng = np.random.default_rng(16)
    vals = np.concatenate([special_floats(), rng.integers(0, 2**32, 1_000_000, dtype=np.uint64).astype(np.uint32),
                           rng.standard_normal(100_000).astype(np.float32).view(np.uint32)])
    vals = vals[: len(vals) // 8 * 8]
    src = path("specials.npy")
    np.save(src, vals.view(np.float32).reshape(-1, 8))
    cli("import", src, "-o", path("specials.emb"), "-f", "-q")
    f32 = torch.from_numpy(vals.view(np.float32).copy())
    for dtype in ("float16", "bfloat16"):
        out = path(f"specials-{dtype}.emb")
        cli("convert", path("specials.emb"), "-o", out, "--dtype", dtype, "-f", "-q")
        with embstore.open(out) as t:
            got = bits(t.tensor()).reshape(-1)
            want = bits(f32.to(TORCH[dtype]))
            nspec = len(special_floats())
            check(f"convert --dtype {dtype}: every special class as PyTorch's .to()",
                  np.array_equal(got[:nspec], want[:nspec]),
                  [(hex(v), hex(g), hex(w)) for v, g, w in zip(vals[:nspec], got, want) if g != w][:5])
            check(f"convert --dtype {dtype}: a million random patterns as PyTorch's .to()",
                  np.array_equal(got, want), int(np.sum(got != want)))
            m = t.metadata
            check(f"convert --dtype {dtype}: metadata records the source and the rounding",
                  m.get("convert.source") == "specials.emb" and m.get("convert.dtype") == "float32" and
                  "rounded to nearest even" in m.get("convert.rounding", "") and len(m.get("convert.xxh3", "")) == 16
                  and m.get("import.source") == "specials.npy", m)
        # And back: widening is exact (PyTorch quiets a float16 signalling NaN, as F16C does).
        back = path(f"specials-{dtype}-f32.emb")
        cli("convert", out, "-o", back, "--dtype", "float32", "-f", "-q")
        with embstore.open(back) as t:
            check(f"convert {dtype} -> float32 is PyTorch's .float()",
                  np.array_equal(t.array.view(np.uint32).reshape(-1), bits(f32.to(TORCH[dtype]).float())))
    # float16 <-> bfloat16 through float32, as PyTorch.
    half = torch.from_numpy(np.arange(65536, dtype=np.uint16).view(np.int16).copy()).view(torch.float16)
    np.save(path("all-f16.npy"), half.numpy().reshape(-1, 16))
    cli("import", path("all-f16.npy"), "-o", path("all-f16.emb"), "-f", "-q")
    cli("convert", path("all-f16.emb"), "-o", path("all-f16-bf16.emb"), "--dtype", "bfloat16", "-f", "-q")
    with embstore.open(path("all-f16-bf16.emb")) as t:
        check("convert float16 -> bfloat16: all 65,536 as PyTorch's .to()",
              np.array_equal(bits(t.tensor()).reshape(-1), bits(half.to(torch.bfloat16))))
    raises("convert with an unknown dtype", lambda: embstore.convert(path("all-f16.emb"), path("x.emb"),
                                                                      dtype="float8"),
           embstore.InvalidArgumentError, "float32, float16 or bfloat16")
    for cmd in (["generate", "--rows", 2, "--dim", 2], ["import", path("all-f16.npy")], ["convert", path("all-f16.emb")]):
        r = cli(*cmd, "-o", path("x.emb"), "--dtype", "float8", ok=False)
        check(f"{cmd[0]} --dtype float8 is a usage error naming the types, nothing written",
              r.returncode == 2 and b"unknown dtype 'float8': expected float32, float16 or bfloat16" in r.stderr and
              not os.path.exists(path("x.emb")), r.stderr)
    r = cli("convert", path("all-f16.emb"), "-o", path("x.emb"), "--dtype", "int8", ok=False)
    check("the command refuses an unknown --dtype, naming the types", r.returncode == 2 and
          b"expected float32, float16 or bfloat16" in r.stderr and not os.path.exists(path("x.emb")), r.stderr)


def write_safetensors(p, name, tensor, st_dtype):
    data = bits(tensor).tobytes()
    header = json.dumps({name: {"dtype": st_dtype, "shape": list(tensor.shape),
                                "data_offsets": [0, len(data)]}}).encode()
    header += b" " * ((8 - len(header) % 8) % 8)
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)


def read_safetensors(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    (name, info), = [(k, v) for k, v in header.items() if k != "__metadata__"]
    return info, raw[8 + n + info["data_offsets"][0]:8 + n + info["data_offsets"][1]]


def import_export():
    for dtype, st in (("float16", "F16"), ("bfloat16", "BF16")):
        want = torch_table(300, 20, 9, dtype)
        src = path(f"in-{dtype}.safetensors")
        write_safetensors(src, "emb", want, st)
        cli("import", src, "-o", path(f"in-{dtype}.emb"), "-f", "-q")
        with embstore.open(path(f"in-{dtype}.emb")) as t:
            check(f"safetensors {st} imports as a {dtype} table, bits kept (no doubling)",
                  t.dtype == dtype and np.array_equal(bits(t.tensor()), bits(want)) and
                  os.path.getsize(path(f"in-{dtype}.emb")) < 4096 * 4 + 300 * 20 * 2, t.dtype)
            check(f"{st} import records it", t.metadata["import.conversion"] == f"none ({dtype} copied as it is)",
                  t.metadata["import.conversion"])
        cli("import", src, "-o", path(f"in-{dtype}-f32.emb"), "--dtype", "float32", "-f", "-q")
        with embstore.open(path(f"in-{dtype}-f32.emb")) as t:
            check(f"{st} import --dtype float32 widens exactly",
                  t.dtype == "float32" and np.array_equal(t.array, want.float().numpy()))
        # Export writes the table's own type; PyTorch reads it bit for bit.
        out = path(f"out-{dtype}.safetensors")
        cli("export", path(f"in-{dtype}.emb"), "-o", out, "-f", "-q")
        info, data = read_safetensors(out)
        back = torch.frombuffer(bytearray(data), dtype=TORCH[dtype]).reshape(info["shape"])
        check(f"export writes safetensors {st}, which PyTorch reads bit for bit",
              info["dtype"] == st and np.array_equal(bits(back), bits(want)), info)
    # .npy <f2 both ways, and big-endian >f2.
    h = torch_table(50, 7, 1, "float16").numpy()
    np.save(path("h.npy"), h)
    np.save(path("h-be.npy"), h.astype(">f2"))
    for name in ("h", "h-be"):
        cli("import", path(f"{name}.npy"), "-o", path(f"{name}.emb"), "-f", "-q")
        with embstore.open(path(f"{name}.emb")) as t:
            check(f"{name}.npy imports as float16, bits kept",
                  t.dtype == "float16" and np.array_equal(t.array.view(np.uint16), h.view(np.uint16)))
    cli("export", path("h.emb"), "-o", path("h-out.npy"), "-f", "-q")
    back = np.load(path("h-out.npy"), mmap_mode="r")
    check("export of a float16 table is a <f2 .npy NumPy maps, bit for bit",
          back.dtype == np.dtype("<f2") and np.array_equal(back.view(np.uint16), h.view(np.uint16)))
    r = cli("export", path("in-bfloat16.emb"), "-o", path("b.npy"), ok=False)
    check("export of bfloat16 to .npy asks for --dtype float32, writing nothing",
          r.returncode == 2 and b"--dtype float32" in r.stderr and not os.path.exists(path("b.npy")), r.stderr)
    cli("export", path("in-bfloat16.emb"), "-o", path("b.npy"), "--dtype", "float32", "-f", "-q")
    check("export --dtype float32 of bfloat16 is exact",
          np.array_equal(np.load(path("b.npy")), torch_table(300, 20, 9, "bfloat16").float().numpy()))
    embstore.export_table(path("h.emb"), path("h-bf.safetensors"), dtype="bfloat16", force=True, fsync=False)
    info, data = read_safetensors(path("h-bf.safetensors"))
    check("export_table(dtype='bfloat16') rounds as .to()",
          info["dtype"] == "BF16" and
          np.array_equal(np.frombuffer(data, np.uint16), bits(torch.from_numpy(h).to(torch.bfloat16)).reshape(-1)))
    # Other safetensors dtypes are refused, naming the accepted ones.
    write_safetensors(path("i8.safetensors"), "emb", torch.zeros(4, 4, dtype=torch.int16), "I16")
    r = cli("import", path("i8.safetensors"), "-o", path("i8.emb"), ok=False)
    check("a safetensors I16 tensor is refused, naming F32, F16, BF16, F64",
          r.returncode == 1 and b"F32, F16, BF16 or F64" in r.stderr and not os.path.exists(path("i8.emb")),
          r.stderr)
    r = cli("import", path("h.npy"), "-o", path("x.emb"), "--dtype", "float64", ok=False)
    check("import --dtype float64 is a usage error", r.returncode == 2 and not os.path.exists(path("x.emb")))


def other_commands():
    p = path("g.emb")
    cli("generate", "--rows", 1000, "--dim", 64, "--seed", 4, "--dtype", "bfloat16", "-o", p)
    want = torch_table(1000, 64, 4, "bfloat16")
    info = json.loads(cli("info", p, "--json").stdout)
    check("info shows the dtype and version 1.1", info["dtype"] == "bfloat16" and info["format_version"] == "1.1", info)
    text = cli("get", p, 3).stdout.decode().split()
    check("get prints values as PyTorch does (4 decimals)",
          text == [f"{v:.4f}" for v in want[3].float().tolist()], text[:4])
    raw = cli("get", p, "2:5", "--raw").stdout
    check("get --raw writes the stored bytes", raw == bits(want[2:5]).tobytes())
    check("verify of a half table", b"ok" in cli("verify", p).stdout)
    cli("compress", p, "-o", path("g.embz"), "-f", "-q")
    check(".embz of a half table: rows read back",
          cli("get", path("g.embz"), "2:5", "--raw").stdout == raw)
    cli("decompress", path("g.embz"), "-o", path("g2.emb"), "-f", "-q")
    check(".embz of a half table decompresses byte for byte", open(p, "rb").read() == open(path("g2.emb"), "rb").read())
    name = f"half-test-{os.getpid()}"
    cli("share", p, "--name", name)
    try:
        with embstore.open(f"shm:{name}") as t:
            check("shm: of a half table", t.dtype == "bfloat16" and np.array_equal(bits(t.tensor()), bits(want)))
    finally:
        cli("unshare", name)
    # A flipped bit in a half table is found by verify, naming its rows.
    data = bytearray(open(p, "rb").read())
    data[-5] ^= 1
    open(path("bad.emb"), "wb").write(data)
    r = cli("verify", path("bad.emb"), ok=False)
    check("verify names the damaged rows of a half table", r.returncode == 1 and b"rows [" in r.stdout + r.stderr)


if __name__ == "__main__":
    sys.exit(run("half_test", [generation, casting, import_export, other_commands]))

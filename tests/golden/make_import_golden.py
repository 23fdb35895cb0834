#!/usr/bin/python3
"""Writes the hostile .npy, safetensors and word-vector files under tests/golden/bad/import/
(run by hand: /usr/bin/python3 tests/golden/make_import_golden.py tests/golden).
Each must make `embstore import` fail with the message that
tests/tools/import_export_test.py expects, and never crash or over-allocate.
"""

import json
import os
import struct
import sys

import numpy

OUT = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "tests/golden", "bad", "import")


def npy(name, header, data=b"", version=(1, 0), length=None):
    """A .npy with the given header text, written as NumPy lays it out."""
    h = header.encode("latin1")
    pad = (64 - (10 + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    n = len(h) if length is None else length
    head = b"\x93NUMPY" + bytes(version) + (struct.pack("<H", n) if version[0] == 1 else struct.pack("<I", n))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(head + h + data)


def safetensors(name, header, data=b"", length=None):
    """A safetensors file: header is a dict (dumped as JSON) or raw bytes."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(h) if length is None else length) + h + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    floats = numpy.arange(8, dtype="<f4").tobytes()  # 2 x 4
    ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"
    npy("npy-header-past-end.npy", ok, floats, length=5000)
    npy("npy-header-not-a-dict.npy", "['descr', '<f4', 'shape', (2, 4)]", floats)
    npy("npy-negative-shape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 4), }", floats)
    npy("npy-huge-shape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296000, 4294967296000), }",
        floats)
    npy("npy-shape-too-large-for-64-bits.npy",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 4), }", floats)
    npy("npy-object-dtype.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2, 4), }", floats)
    npy("npy-int64-dtype.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", floats)
    npy("npy-structured-dtype.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (8,), }", floats)
    npy("npy-three-dimensions.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", floats)
    npy("npy-truncated-data.npy", ok, floats[:-4])
    npy("npy-trailing-data.npy", ok, floats + b"\0\0\0\0")
    npy("npy-python-code.npy", "{'descr': __import__('os').system('touch /tmp/pwned'), 'shape': (2, 4), }", floats)
    npy("npy-unknown-key.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), 'x': 1, }", floats)
    npy("npy-missing-shape.npy", "{'descr': '<f4', 'fortran_order': False, }", floats)
    npy("npy-version-9.npy", ok, floats, version=(9, 0))
    npy("npy-v2-header-4gb.npy", ok, floats, version=(2, 0), length=0xFFFFFFF0)
    npy("npy-leading-zero-dimension.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (02, 4), }", floats)
    npy("npy-long-suffix-in-3.0.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 4), }", floats,
        version=(3, 0))
    npy("npy-escapes-in-dtype.npy", "{'descr': '<f4\x1b[2J\x1b[31m', 'fortran_order': False, 'shape': (2, 4), }",
        floats)
    npy("npy-escapes-in-key.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), '\x1b]0;x\x07': 1, }",
        floats)
    with open(os.path.join(OUT, "npy-bad-magic.npy"), "wb") as f:
        f.write(b"\x93NUMPX\x01\x00" + b"\0" * 100)

    t = lambda dtype, shape, begin, end: {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
    safetensors("st-length-2-to-the-63.safetensors", {"w": t("F32", [2, 4], 0, 32)}, floats, length=1 << 63)
    safetensors("st-header-past-end.safetensors", {"w": t("F32", [2, 4], 0, 32)}, floats, length=4096)
    safetensors("st-not-json.safetensors", b"{\"w\": {\"dtype\": \"F32\", ", floats)
    safetensors("st-not-an-object.safetensors", b"[1, 2, 3]", floats)
    safetensors("st-offsets-past-end.safetensors", {"w": t("F32", [2, 8], 0, 64)}, floats)
    safetensors("st-overlapping.safetensors", {"a": t("F32", [2, 2], 0, 16), "b": t("F32", [2, 2], 8, 24),
                                               "c": t("F32", [2], 24, 32)}, floats)
    safetensors("st-gap.safetensors", {"a": t("F32", [1, 2], 0, 8), "b": t("F32", [1, 4], 16, 32)}, floats)
    safetensors("st-size-mismatch.safetensors", {"w": t("F32", [3, 4], 0, 32)}, floats)
    safetensors("st-negative-shape.safetensors", b'{"w":{"dtype":"F32","shape":[-2,4],"data_offsets":[0,32]}}',
                floats)
    safetensors("st-float-shape.safetensors", b'{"w":{"dtype":"F32","shape":[2.5,4],"data_offsets":[0,32]}}',
                floats)
    safetensors("st-unknown-dtype.safetensors", {"w": t("F128", [2, 1], 0, 32)}, floats)
    safetensors("st-int64-tensor.safetensors", {"w": t("I64", [2, 2], 0, 32)}, floats)
    safetensors("st-escapes-in-dtype.safetensors", {"w\x1b[2J": t("F32\x1b[31m", [2, 4], 0, 32)}, floats)
    safetensors("st-duplicate-key.safetensors",
                b'{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]},'
                b'"w":{"dtype":"F32","shape":[1,4],"data_offsets":[0,16]}}', floats)
    safetensors("st-deep-nesting.safetensors",
                b'{"w":{"dtype":"F32","shape":' + b"[" * 100000 + b"]" * 100000 + b',"data_offsets":[0,32]}}', floats)
    safetensors("st-two-2d-tensors.safetensors", {"a": t("F32", [1, 4], 0, 16), "b": t("F32", [1, 4], 16, 32)},
                floats)
    safetensors("st-metadata-not-strings.safetensors", {"__metadata__": {"n": 1}, "w": t("F32", [2, 4], 0, 32)},
                floats)
    # Word vectors (issue 17): word2vec text and binary, fastText .vec, GloVe.
    f2 = struct.pack("<2f", 1.0, 2.0)
    raw("wv-duplicate-key.txt", b"3 2\na 1 2\nb 3 4\na 5 6\n")
    raw("wv-invalid-utf8.vec", b"1 2\n\xff\xfe 1 2 \n")
    raw("wv-wrong-value-count.txt", b"2 3\na 1 2 3\nb 1 2\n")
    raw("wv-count-below-header.vec", b"3 2\na 1 2 \nb 1 2 \n")
    raw("wv-count-above-header.vec", b"1 2\na 1 2 \nb 1 2 \n")
    raw("wv-not-a-number.txt", b"a 1 2\nb 1 x\n")  # GloVe: no header
    raw("wv-truncated-record.bin", b"2 2\na " + f2 + b"\nb " + f2[:5])
    raw("wv-header-garbage.bin", b"two 2\na " + f2)
    raw("wv-huge-count.bin", b"99999999999 300\na " + f2)
    raw("wv-empty-key.bin", b"1 2\n " + f2)
    raw("wv-duplicate-key.bin", b"2 2\nk " + f2 + b"\nk " + f2 + b"\n")
    print(f"wrote {len(os.listdir(OUT))} files to {OUT}")


def raw(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""FORMAT.md's worked example, produced from a golden file (run by ctest):
    format_example.py GOLDEN_DIR FORMAT.md [EMBSTORE]   check: exit 1 if they differ
    format_example.py GOLDEN_DIR FORMAT.md --write      rewrite the example from the file

The example (between the two marker lines in FORMAT.md, "Example") is a
hex dump of tests/golden/good/notebook-6x4-seed123.emb and a table of its
fields, every value decoded here from the file's bytes. A FORMAT.md edited
by hand shows as a difference from what the file says. With EMBSTORE, the
command FORMAT.md names is run too, and must write that file byte for byte.
"""

import os
import struct
import subprocess
import sys
import tempfile

BEGIN = "<!-- example: made by tests/tools/format_example.py from tests/golden/good/notebook-6x4-seed123.emb -->"
END = "<!-- end of example -->"
GOLDEN = "good/notebook-6x4-seed123.emb"


def hexdump(data, start, end):
    """xxd's layout: offset, 8 groups of 2 bytes, the printable bytes."""
    lines = []
    for at in range(start, end, 16):
        chunk = data[at:at + 16]
        groups = " ".join(chunk[i:i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{at:08x}: {groups:<39}  {text}")
    return lines


def short(data, at, n):
    b = data[at:at + n]
    if all(x == 0 for x in b):
        return "zeros"
    if n <= 4 or len(b) <= 4:
        return "`" + " ".join(f"{x:02x}" for x in b) + "`"
    return "`" + " ".join(f"{x:02x}" for x in b[:2]) + " .. " + f"{b[-1]:02x}" + "`"


def render(data):
    u16 = lambda at: struct.unpack_from("<H", data, at)[0]
    u32 = lambda at: struct.unpack_from("<I", data, at)[0]
    u64 = lambda at: struct.unpack_from("<Q", data, at)[0]
    rows, dim, stride = u64(40), u64(48), u64(56)
    data_offset, data_size = u64(64), u64(72)
    meta_offset, meta_size = u64(80), u32(88)
    block_rows, cks_offset, cks_count = u32(92), u64(96), u64(104)
    meta_end = meta_offset + meta_size
    cks_end = cks_offset + 8 * cks_count
    entries, at = [], meta_offset + 4
    for _ in range(u32(meta_offset)):
        klen, vlen = u16(at), u32(at + 2)
        entries.append((data[at + 6:at + 6 + klen].decode(), data[at + 6 + klen:at + 6 + klen + vlen].decode()))
        at += 6 + klen + vlen
    floats = struct.unpack_from(f"<{dim}f", data, data_offset)
    out = [BEGIN, "", "```"]
    out += hexdump(data, 0, (cks_end + 15) // 16 * 16)
    out.append(f"  (zero to 0x{data_offset - 1:08x})")
    out += hexdump(data, data_offset, len(data))
    out += ["```", "", "| Offset | Bytes | Field | Value |", "|---|---|---|---|"]
    row = lambda off, n, field, value: out.append(f"| {off} | {short(data, off, n)} | {field} | {value} |")
    row(0, 8, "magic", "")
    row(8, 4, "byte_order", f"`0x{u32(8):08X}`")
    out.append(f"| 12, 14 | `{data[12]:02x} {data[13]:02x}`, `{data[14]:02x} {data[15]:02x}` | version | "
               f"{u16(12)}.{u16(14)} |")
    row(16, 4, "header_size", u32(16))
    row(20, 4, "dtype", f"{u32(20)} (float32)" if u32(20) == 1 else u32(20))
    out.append(f"| 24, 32 | {short(data, 24, 16)} | required_flags, optional_flags | {u64(24)}, {u64(32)} |")
    row(40, 8, "rows", rows)
    row(48, 8, "dim", dim)
    row(56, 8, "row_stride", f"{stride}" + (f" (= {dim} x 4, dense)" if stride == dim * 4 else ""))
    row(64, 8, "data_offset", data_offset)
    row(72, 8, "data_size", f"{data_size} (= {rows} x {stride})")
    row(80, 8, "metadata_offset", meta_offset)
    row(88, 4, "metadata_size", meta_size)
    row(92, 4, "checksum_block_rows", block_rows)
    row(96, 8, "checksum_offset", f"{cks_offset} (= align({meta_offset} + {meta_size}, 8))")
    row(104, 8, "checksum_count", cks_count)
    row(112, 8, "metadata_checksum", f"`0x{u64(112):016X}`")
    row(120, 8, "header_checksum", f"`0x{u64(120):016X}`")
    row(meta_offset, 4, "entry_count", len(entries))
    key, value = entries[0]
    out.append(f"| {meta_offset + 4} | `{data[meta_offset + 4]:02x} {data[meta_offset + 5]:02x}`, "
               f"`{data[meta_offset + 6]:02x} 00 00 00` | key_len, value_len | {len(key)}, {len(value)}: "
               f"`{key}` = `{value}` |")
    out.append("| ... | | | " + ", ".join(f"`{k}` = `{v}`" for k, v in entries[1:]) + " |")
    if cks_offset > meta_end:
        row(meta_end, cks_offset - meta_end, "padding", f"to {cks_offset}")
    for b in range(cks_count):
        row(cks_offset + 8 * b, 8, f"block {b} checksum",
            f"`0x{u64(cks_offset + 8 * b):016X}`, rows [{b * block_rows}, {min(rows, (b + 1) * block_rows)})")
    row(cks_end, data_offset - cks_end, "padding", f"to {data_offset}")
    out.append(f"| {data_offset} | {short(data, data_offset, 4)} .. | row 0 | "
               + ", ".join(f"{x:.4f}" for x in floats) + " |")
    out += ["", f"The file ends at `{data_offset} + {data_size} = {data_offset + data_size}`.", END]
    return "\n".join(out)


def main():
    golden, spec = sys.argv[1], sys.argv[2]
    data = open(f"{golden}/{GOLDEN}", "rb").read()
    text = open(spec).read()
    if BEGIN not in text or END not in text:
        print(f"FAILED: {spec} has no example between the marker lines")
        return 1
    a, b = text.index(BEGIN), text.index(END) + len(END)
    want = render(data)
    if "--write" in sys.argv[3:]:
        open(spec, "w").write(text[:a] + want + text[b:])
        print(f"wrote the example in {spec} from {GOLDEN}")
        return 0
    if text[a:b] != want:
        have, new = text[a:b].split("\n"), want.split("\n")
        for i, (x, y) in enumerate(zip(have, new)):
            if x != y:
                print(f"FAILED: FORMAT.md's example differs from {GOLDEN} at its line {i + 1}:\n  FORMAT.md: {x}\n  the file:  {y}")
                break
        else:
            print(f"FAILED: FORMAT.md's example has {len(have)} lines, the file's {len(new)}")
        print("(tests/tools/format_example.py GOLDEN_DIR FORMAT.md --write remakes it from the file)")
        return 1
    print(f"format_example: FORMAT.md's example is {GOLDEN}, byte for byte")
    if len(sys.argv) > 3:
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "t.emb")
            env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
            subprocess.run([sys.argv[3], "generate", "--rows", "6", "--dim", "4", "--seed", "123", "--torch-kernel",
                            "scalar", "-o", out, "--no-fsync"], check=True, env=env)
            if open(out, "rb").read() != data:
                print(f"FAILED: the command FORMAT.md names no longer writes {GOLDEN}")
                return 1
        print("format_example: and `embstore generate` writes that file")
    return 0


if __name__ == "__main__":
    sys.exit(main())

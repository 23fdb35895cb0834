#!/usr/bin/python3
"""Keys inside the table (issue 17), run by ctest as
    keys_test.py EMBSTORE MODULE_DIR
gensim (4.2) is the peer: word2vec binary and text written by
save_word2vec_format are imported with the same keys in the same order and
the same float32 bits, and what embstore exports gensim reads back (the text
byte for byte as gensim writes it). GloVe, fastText .vec and the original C
tool's binary layout; every kind of bad word-vector file named and nothing
written; tokenizer.json, vocab.json and one-key-per-line vocabularies
attached, and bad ones refused; keys kept by .embz, decompress, convert and
shm:; get --key, keys, info and verify; the module's key lookups and views.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings

EMB, MODULE_DIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import numpy as np  # noqa: E402

try:
    from gensim.models import KeyedVectors  # noqa: E402
except ImportError:
    print("keys_test: gensim is not installed (Debian: python3-gensim); skipped")
    sys.exit(77)

import embstore  # noqa: E402
from checks import check, raises, run  # noqa: E402

# gensim casts "inf"/"1e400" to float32 with a NumPy overflow warning.
warnings.filterwarnings("ignore", category=RuntimeWarning)

TMP = tempfile.mkdtemp(prefix="embstore-keys-")
DIM = 16


def cli(*args, ok=True):
    r = subprocess.run([EMB, *map(str, args)], capture_output=True)
    if ok and r.returncode != 0:
        raise RuntimeError(f"embstore {args}: {r.stderr.decode()}")
    return r


def path(name):
    return os.path.join(TMP, name)


def u32(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(u32(a), u32(b))



def read(p):
    with open(p, "rb") as f:
        return f.read()


def write(p, data):
    with open(p, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return p


# ---------------------------------------------------------------------------
# The word vectors: 200 keys, many not ASCII, float32 values of every kind.

ODD_KEYS = ["king", "queen", "naïve", "日本", "😀", "😀\u200d💻", "e\u0301", "straße", "Ġthe", "Ċ", "<|endoftext|>",
            "a\u00a0b", "x\u3000y", "\u200b", "\x7f", "a\x01", '"q"', "it's", "\\", "Привет", "مرحبا", "a"]


def nine_digit_floats(rng, n):
    """float32 values whose shortest round-trip form needs 9 significant digits."""
    out = []
    while len(out) < n:
        x = np.float32(rng.uniform(-10, 10))
        digits = repr(x).lstrip("-").replace(".", "").lstrip("0").split("e")[0]
        if len(digits) == 9:
            out.append(x)
    return out


def word_vectors():
    rng = np.random.default_rng(17)
    keys = ODD_KEYS + [f"w{i}" for i in range(200 - len(ODD_KEYS))]
    order = rng.permutation(len(keys))  # the odd keys spread out, not in a block
    keys = [keys[i] for i in order]
    vecs = rng.standard_normal((len(keys), DIM)).astype(np.float32)
    # Rows of random finite bit patterns: every exponent, both signs.
    bits = rng.integers(0, 2**32, (20, DIM), dtype=np.uint64).astype(np.uint32)
    bits[(bits & 0x7F800000) == 0x7F800000] &= 0xBF7FFFFF
    vecs[100:120] = bits.view(np.float32)
    specials = [-0.0, 1e-45, -1e-45, 3e38, 3.4028235e38, -3.4028235e38, 1.1754944e-38, 1.1754942e-38, 0.1, 1 / 3,
                16777217.0, 1e-5, 1.5e16, 123456.79, 1e-4, 9.999999e-5, np.inf, -np.inf, np.nan, 0.0]
    specials += nine_digit_floats(rng, 12)
    flat = vecs.reshape(-1)
    flat[rng.choice(flat.size, len(specials), replace=False)] = np.array(specials, np.float32)
    return keys, vecs


def gensim_both_ways():
    keys, vecs = word_vectors()
    check("the vectors hold the canonical NaN only", all(int(b) == 0x7FC00000 for b in u32(vecs)[np.isnan(vecs)]))
    kv = KeyedVectors(DIM)
    kv.add_vectors(keys, vecs)
    check("gensim keeps the keys and bits given (the oracle itself)",
          kv.index_to_key == keys and same_bits(kv.vectors, vecs))
    kv.save_word2vec_format(path("g.bin"), binary=True)
    kv.save_word2vec_format(path("g.txt"), binary=False)

    cli("import", path("g.bin"), "-o", path("g-bin.emb"), "-q")
    embstore.import_table(path("g.txt"), path("g-txt.emb"), fsync=False)
    for name, fmt in (("g-bin.emb", "binary"), ("g-txt.emb", "text")):
        with embstore.open(path(name)) as t:
            check(f"word2vec {fmt} from gensim: a float32 table {len(keys)} x {DIM} with keys",
                  t.shape == (len(keys), DIM) and t.dtype == "float32" and t.has_keys, (t.shape, t.dtype))
            check(f"word2vec {fmt}: the same keys in the same order", list(t.index_to_key) == kv.index_to_key,
                  [(a, b) for a, b in zip(t.index_to_key, kv.index_to_key) if a != b][:3])
            check(f"word2vec {fmt}: the same float32 bits", same_bits(t.array, kv.vectors),
                  np.argwhere(u32(t.array) != u32(kv.vectors))[:3].tolist())
            bad = [k for k in keys if not same_bits(t[k], kv[k])]
            check(f"word2vec {fmt}: t[key] is kv[key], bit for bit, for every key", not bad, bad[:3])
            check(f"word2vec {fmt}: t[key] is one float32 row", t["naïve"].shape == (DIM,) and
                  t["naïve"].dtype == np.float32)
            some = ["日本", "king", "😀", "a"]
            check(f"word2vec {fmt}: t[[keys]] gives those rows", same_bits(t[some], kv[some]))
            check(f"word2vec {fmt}: dict(t.key_to_index) == kv.key_to_index",
                  dict(t.key_to_index) == kv.key_to_index)
            check(f"word2vec {fmt}: t.index(k) and t.key(i) agree with gensim",
                  all(t.index(k) == kv.get_index(k) and t.key(kv.get_index(k)) == k for k in keys))
            check(f"word2vec {fmt}: the metadata names the source", t.metadata.get("import.source") ==
                  ("g.bin" if fmt == "binary" else "g.txt"), t.metadata)
    check("the binary and the text import are the same rows",
          cli("get", path("g-bin.emb"), "0:", "--raw").stdout == cli("get", path("g-txt.emb"), "0:", "--raw").stdout)

    # Back to gensim.
    cli("export", path("g-bin.emb"), "-o", path("e.bin"), "--format", "word2vec", "--binary", "-q")
    embstore.export_table(path("g-txt.emb"), path("e.txt"), format="word2vec", fsync=False)
    with embstore.open(path("g-bin.emb")) as t:
        embstore.export_table(t, path("e2.bin"), format="word2vec", binary=True, fsync=False)
    cli("export", path("g-bin.emb"), "-o", path("e.vec"), "-q")
    for name, binary in (("e.bin", True), ("e2.bin", True), ("e.txt", False), ("e.vec", False)):
        back = KeyedVectors.load_word2vec_format(path(name), binary=binary)
        check(f"gensim reads embstore's {name}: the same keys", back.index_to_key == keys)
        check(f"gensim reads embstore's {name}: the same float32 bits", same_bits(back.vectors, vecs))
    check("export --binary of the CLI and export_table(binary=True) write the same bytes",
          read(path("e.bin")) == read(path("e2.bin")))
    check("the text export is byte for byte gensim's own text file", read(path("e.txt")) == read(path("g.txt")))
    check("a .vec name exports word2vec text, byte for byte gensim's", read(path("e.vec")) == read(path("g.txt")))
    cli("export", path("g-bin.emb"), "-o", path("auto.bin"), "-q")
    check("a .bin name exports binary word2vec", read(path("auto.bin")) == read(path("e.bin")))
    embstore.export_table(path("g-bin.emb"), path("auto.vec"), fsync=False)
    embstore.export_table(path("g-bin.emb"), path("auto2.bin"), fsync=False)
    check("export_table picks word2vec by the name, as the command",
          read(path("auto.vec")) == read(path("g.txt")) and read(path("auto2.bin")) == read(path("e.bin")))
    # And embstore reads its own exports back to the same table.
    cli("import", path("e.bin"), "-o", path("e-bin.emb"), "-q")
    with embstore.open(path("e-bin.emb")) as t:
        check("embstore reads its binary export back", list(t.index_to_key) == keys and same_bits(t.array, vecs))

    # Half types: --dtype rounds the vectors as convert does; the keys stay.
    cli("import", path("g.bin"), "-o", path("g-bf16.emb"), "--dtype", "bfloat16", "-q")
    cli("convert", path("g-bin.emb"), "-o", path("g-bin-bf16.emb"), "--dtype", "bfloat16", "-q")
    with embstore.open(path("g-bf16.emb")) as t:
        check("import --dtype bfloat16 of word vectors: a bfloat16 table with the keys",
              t.dtype == "bfloat16" and list(t.index_to_key) == keys, t.dtype)
    check("import --dtype bfloat16 rounds as convert --dtype bfloat16",
          cli("get", path("g-bf16.emb"), "0:", "--raw").stdout ==
          cli("get", path("g-bin-bf16.emb"), "0:", "--raw").stdout)


# ---------------------------------------------------------------------------
# GloVe, fastText .vec and the C tool's binary layout.

def glove_and_fasttext():
    rng = np.random.default_rng(5)
    keys = ["the", ",", ".", "naïve", "日本", "😀", "straße"] + [f"g{i}" for i in range(93)]
    vals = rng.standard_normal((len(keys), 6))
    text = [[f"{v:.6f}" if (i + j) % 3 else repr(float(v)) for j, v in enumerate(row)] for i, row in enumerate(vals)]
    # Strings gensim reads in its own way: through a double, then float32
    # (a tie after the first rounding goes to even), out of range, NaN, signs.
    text[0] = ["1.0000000596046447753906250001", "-0", "1e-46", "3.5e38", "-1e400", "inf"]
    text[1] = ["nan", "-inf", "+1.5", ".5", "5.", "1E5"]
    text[2] = ["7.006492321624085e-46", "1.401298464324817e-45", "00012", "-0.000000", "3.4028235677973366e38",
               "0.1"]
    glove = write(path("glove.6d.txt"), "".join(f"{k} {' '.join(r)}\n" for k, r in zip(keys, text)))
    want = KeyedVectors.load_word2vec_format(glove, binary=False, no_header=True)
    check("gensim reads the GloVe file (the oracle itself)", want.index_to_key == keys)
    cli("import", glove, "-o", path("glove.emb"), "-q")
    with embstore.open(path("glove.emb")) as t:
        check("GloVe .txt (no header line): the keys in order", list(t.index_to_key) == keys and t.shape == (100, 6))
        check("GloVe .txt: every value as gensim reads it, bit for bit", same_bits(t.array, want.vectors),
              [(keys[i], text[i][j], hex(u32(t.array)[i, j]), hex(u32(want.vectors)[i, j]))
               for i, j in np.argwhere(u32(t.array) != u32(want.vectors))[:3]])
        check("GloVe: the metadata says glove", "glove" in t.metadata.get("import.format", "").lower(), t.metadata)
    # The same file named .glove, by --format and by format=.
    shutil.copy(glove, path("glove-data"))
    cli("import", path("glove-data"), "-o", path("glove2.emb"), "--format", "glove", "-q")
    embstore.import_table(path("glove-data"), path("glove3.emb"), format="glove", fsync=False)
    check("--format glove and format='glove' on a file of another name: the same table",
          read(path("glove2.emb")) == read(path("glove3.emb")) and
          embstore.open(path("glove2.emb")).index_to_key[:] == keys)

    # fastText .vec: a header, and a space after each line's last value.
    vec_vals = rng.standard_normal((60, 5)).astype(np.float32)
    vec_keys = ["</s>", "the", "ça", "über", "中文"] + [f"f{i}" for i in range(55)]
    lines = [f"{len(vec_keys)} 5\n"] + [f"{k} {' '.join(f'{v:.5g}' for v in row)} \n"
                                        for k, row in zip(vec_keys, vec_vals)]
    vec = write(path("cc.xx.5.vec"), "".join(lines))
    want = KeyedVectors.load_word2vec_format(vec)
    cli("import", vec, "-o", path("vec.emb"), "-q")
    with embstore.open(path("vec.emb")) as t:
        check("fastText .vec (a space ends each line): keys as gensim", list(t.index_to_key) == want.index_to_key ==
              vec_keys)
        check("fastText .vec: values as gensim, bit for bit", same_bits(t.array, want.vectors))
    embstore.import_table(vec, path("vec2.emb"), format="fasttext", fsync=False)
    check("format='fasttext' reads it the same", cli("get", path("vec2.emb"), "0:", "--raw").stdout ==
          cli("get", path("vec.emb"), "0:", "--raw").stdout)
    # A .txt with a 'COUNT DIM' line is word2vec text, not GloVe.
    shutil.copy(vec, path("vec-as.txt"))
    cli("import", path("vec-as.txt"), "-o", path("vec-as.emb"), "-q")
    with embstore.open(path("vec-as.emb")) as t:
        check("a .txt whose first line is 'COUNT DIM' is word2vec text",
              t.shape == (60, 5) and list(t.index_to_key) == vec_keys and same_bits(t.array, want.vectors),
              t.shape)


def word2vec_c_binary():
    """The original word2vec.c: 'N D\\n', then 'key ' + D float32 + '\\n' each."""
    rng = np.random.default_rng(3)
    keys = ["</s>", "the", "Ärger", "東京", "🙂", "of"] + [f"c{i}" for i in range(44)]
    vals = rng.standard_normal((len(keys), 8)).astype(np.float32)
    vals[0, 0], vals[1, 1], vals[2, 2] = -0.0, np.float32(1e-45), np.float32(3e38)
    data = f"{len(keys)} 8\n".encode() + b"".join(k.encode() + b" " + v.astype("<f4").tobytes() + b"\n"
                                                  for k, v in zip(keys, vals))
    src = write(path("vectors.bin"), data)
    want = KeyedVectors.load_word2vec_format(src, binary=True)
    check("gensim reads the C tool's layout (the oracle itself)", want.index_to_key == keys and
          same_bits(want.vectors, vals))
    cli("import", src, "-o", path("c.emb"), "-q")
    with embstore.open(path("c.emb")) as t:
        check("word2vec.c binary: the keys (no newline kept in them)", list(t.index_to_key) == keys,
              list(t.index_to_key)[:3])
        check("word2vec.c binary: the float32 bits", same_bits(t.array, want.vectors))
    # The same bytes under another name, by --format.
    shutil.copy(src, path("vectors.w2v"))
    embstore.import_table(path("vectors.w2v"), path("c2.emb"), format="word2vec-binary", fsync=False)
    cli("import", path("vectors.w2v"), "-o", path("c3.emb"), "--format", "word2vec-binary", "-q")
    with embstore.open(path("c2.emb")) as t2, embstore.open(path("c3.emb")) as t3:
        check("format='word2vec-binary' and --format word2vec-binary on another name",
              list(t2.index_to_key) == keys and same_bits(t2.array, vals) and same_bits(t3.array, vals) and
              list(t3.index_to_key) == keys)


# ---------------------------------------------------------------------------
# Bad word-vector files: exit 1, the line or record named, nothing written.

def f32(*v):
    return struct.pack(f"<{len(v)}f", *v)


BAD_FILES = [
    ("dup.txt", "4 2\na 1 2\nb 3 4\nc 5 6\nb 7 8\n", "duplicate key 'b': line 3 and line 5"),
    ("dup-glove.txt", "a 1 2\nb 3 4\na 5 6\n", "duplicate key 'a': line 1 and line 3"),
    ("utf8.txt", b"3 2\na 1 2\n\xff\xfe 3 4\nc 5 6\n", "line 3: key '\\xff\\xfe' is not valid UTF-8"),
    ("utf8-short.vec", b"2 2\na 1 2\nb\xc3 3 4\n", "line 3: key"),
    ("values.txt", "3 4\na 1 2 3 4\nk 1 2 3\nc 1 2 3 4\n", "line 3 (key 'k'): 3 values, expected 4"),
    ("values-more.vec", "2 2\na 1 2\nk 1 2 3 \n", "line 3 (key 'k'): 3 values, expected 2"),
    ("values-glove.txt", "a 1 2\nb 3 4\nk 5\n", "line 3 (key 'k'): 1 values, expected 2"),
    ("count-few.txt", "5 2\na 1 2\nb 3 4\nc 5 6\nd 7 8\n", "the header says 5 vectors, the file has 4"),
    ("count-many.txt", "2 2\na 1 2\nb 3 4\nc 5 6\n", "line 4: the header says 2 vectors, but more lines follow"),
    ("nan.txt", "2 3\na 1 2 3\nk 1 abc 3\n", "line 3 (key 'k'): value 2 'abc' is not a number"),
    ("nan-glove.txt", "k 1 2x\n", "line 1 (key 'k'): value 2 '2x' is not a number"),
    ("trunc.bin", b"2 2\na " + f32(1, 2) + b"\nkk " + f32(3)[:3], "record 1 (key 'kk'): truncated: "),
    ("trunc0.bin", b"1 3\nfirst " + f32(1, 2), "record 0 (key 'first'): truncated: "),
    ("dup.bin", b"3 1\na " + f32(1) + b"\nb " + f32(2) + b"\na " + f32(3) + b"\n",
     "duplicate key 'a': record 0 and record 2"),
    ("utf8.bin", b"2 1\na " + f32(1) + b"\n\xc3( " + f32(2) + b"\n", "record 1: key '\\xc3(' is not valid UTF-8"),
    ("count.bin", b"3 1\na " + f32(1) + b"\nb " + f32(2) + b"\n", "record 2: the file ends; the header says 3"),
]


def bad_word_vectors():
    d = path("bad")
    os.mkdir(d)
    for name, content, message in BAD_FILES:
        src = write(os.path.join(d, name), content)
        out = os.path.join(d, "out.emb")
        before = sorted(os.listdir(d))
        r = cli("import", src, "-o", out, ok=False)
        err = r.stderr.decode(errors="replace")
        check(f"{name}: exit 1, naming it: {message!r}", r.returncode == 1 and message in err,
              (r.returncode, err))
        check(f"{name}: the message names the file", name in err, err)
        check(f"{name}: nothing written (no output, no temporary left)", sorted(os.listdir(d)) == before,
              sorted(set(os.listdir(d)) - set(before)))
        e = raises(f"{name}: import_table raises CorruptionError naming it",
                   lambda: embstore.import_table(src, out, fsync=False), embstore.CorruptionError, message)
        check(f"{name}: import_table wrote nothing", sorted(os.listdir(d)) == before and e is not None)
    # With -f over an existing table, a bad file leaves that table as it was.
    out = write(os.path.join(d, "kept.emb"), b"the old contents")
    r = cli("import", os.path.join(d, "dup.txt"), "-o", out, "-f", ok=False)
    check("import -f of a bad file leaves the existing output untouched",
          r.returncode == 1 and read(out) == b"the old contents")
    raises("import_table(force=True) of a bad file", lambda: embstore.import_table(
        os.path.join(d, "nan.txt"), out, force=True, fsync=False), embstore.CorruptionError, "line 3")
    check("... and the existing output is untouched", read(out) == b"the old contents")


# ---------------------------------------------------------------------------
# Vocabularies: tokenizer.json, vocab.json, one key per line.

R = 300


def tokens(n):
    """n distinct tokens, as byte-level BPE and WordPiece vocabularies have them."""
    base = ["!", '"', "#", "Ġ", "Ċ", "Ġthe", "Ġ,", "ing", "##ing", "Ġnaïve", "日本", "語", "😀", "Ġ😀", "\\", "\\n",
            "</w>", "▁the", "a b", "Привет", "ĠÐ", "\u200b", "ÃĥÂ", "'s", "e\u0301"]
    return base + [f"tok{i}" for i in range(n - len(base))]


def attached(what, src, vocab, want, out=None, **kw):
    out = out or path(f"att-{os.path.basename(vocab)}.emb")
    cli("keys", "attach", src, vocab, "-o", out, "-q", *sum(([f"--{k.replace('_', '-')}", v] for k, v in kw.items()),
                                                            []))
    with embstore.open(out) as t:
        got = [t.key(i) for i in range(R)]
        check(f"{what}: t.key(i) for every row", got == want, [(i, a, b) for i, (a, b) in
                                                              enumerate(zip(got, want)) if a != b][:3])
        check(f"{what}: index_to_key and key_to_index", list(t.index_to_key) == want and
              dict(t.key_to_index) == {k: i for i, k in enumerate(want)} and len(t.key_to_index) == R)
    check(f"{what}: the rows are unchanged",
          cli("get", out, f"0:{R}", "--raw").stdout == cli("get", src, f"0:{R}", "--raw").stdout)
    return out


def vocabularies():
    src = path("plain.emb")
    cli("generate", "--rows", R, "--dim", 4, "--seed", 1, "-o", src, "--no-fsync")
    toks = tokens(R)
    rng = np.random.default_rng(11)

    # A Hugging Face BPE tokenizer.json: model.vocab for ids 0..R-2 (written
    # in another order), one added token for the last id, merges, the rest.
    shuffled = rng.permutation(R - 1)
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": R - 1, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": True, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "vocab": {toks[int(i)]: int(i) for i in shuffled}, "merges": ["Ġ t", "Ġt he", "i n", "in g"]},
    }
    want = toks[:R - 1] + ["<|endoftext|>"]
    p = write(path("tokenizer.json"), json.dumps(tok, ensure_ascii=False, indent=2))
    attached("tokenizer.json (BPE, model.vocab + added_tokens)", src, p, want)

    # A Unigram tokenizer.json: model.vocab is a list of [token, score];
    # added_tokens repeat <unk> (id 0, as in the vocabulary) and add <mask>.
    uni = {"version": "1.0", "added_tokens": [
        {"id": 0, "content": "<unk>", "special": True}, {"id": R - 1, "content": "<mask>", "special": True}],
        "model": {"type": "Unigram", "unk_id": 0,
                  "vocab": [["<unk>", 0.0]] + [[t, -float(i) / 7] for i, t in enumerate(toks[1:R - 1])]}}
    p = write(path("unigram-tokenizer.json"), json.dumps(uni, ensure_ascii=False))
    attached("tokenizer.json (Unigram, a list of [token, score])", src, p, ["<unk>"] + toks[1:R - 1] + ["<mask>"])

    # A GPT-2 vocab.json: one line, ASCII with \u escapes (surrogate pairs for
    # the emoji), in no particular order.
    vj = {toks[int(i)]: int(i) for i in rng.permutation(R)}
    p = write(path("vocab.json"), json.dumps(vj, ensure_ascii=True, separators=(",", ":")))
    check("vocab.json really escapes (the test's own file)", b"\\ud83d\\ude00" in read(p) and b"\\u0120" in read(p))
    attached("vocab.json ({token: id})", src, p, toks)
    out = path("att-py.emb")
    embstore.attach_keys(src, p, out, fsync=False)
    with embstore.open(out) as t:
        check("attach_keys() as keys attach", list(t.index_to_key) == toks)
    with embstore.open(src) as t:
        embstore.attach_keys(t, path("tokenizer.json"), out, vocab_format="tokenizer.json", force=True, fsync=False)
    with embstore.open(out) as t:
        check("attach_keys(open table, vocab_format='tokenizer.json', force=True)", list(t.index_to_key) == want)

    # One key per line (line N is row N-1): BERT's vocab.txt.
    lines = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + toks[6:]
    p = write(path("vocab.txt"), "".join(k + "\n" for k in lines))
    attached("lines (vocab.txt)", src, p, lines)
    p = write(path("vocab-lines"), "\n".join(lines))
    attached("lines without a last newline, --vocab-format lines", src, p, lines, vocab_format="lines")

    # A .embz as the table: the keys go on the rows it holds.
    cli("compress", src, "-o", path("plain.embz"), "-q")
    attached("keys attach to a .embz", path("plain.embz"), path("vocab.txt"), lines, out=path("att-embz.emb"))
    # A table that had keys gets new ones.
    attached("keys attach replaces the keys a table had", path("att-vocab.txt.emb"), path("vocab.json"), toks,
              out=path("att-again.emb"))

    # Many keys alike: every one found at its row, and none that is not there.
    big = path("big.emb")
    embstore.generate(3000, 2, seed=2, path=big, fsync=False)
    many = [f"w{i}" for i in range(2999)] + ["w"]
    embstore.attach_keys(big, write(path("big.txt"), "\n".join(many) + "\n"), path("big-keys.emb"), fsync=False)
    with embstore.open(path("big-keys.emb")) as t:
        check("3,000 keys: t.index(k) of each is its row", all(t.index(k) == i for i, k in enumerate(many)))
        check("3,000 keys: none of 3,000 near misses is found",
              not any(k in t for k in [f"w{i}" for i in range(3000, 6000)] + [f"w{i} " for i in range(10)] +
                      [f"W{i}" for i in range(10)] + [f"w0{i}" for i in range(10)]))
        check("3,000 keys: key_to_index as a dict", dict(t.key_to_index) == {k: i for i, k in enumerate(many)})

    # Bad vocabularies: exit 1, the id or line named, nothing written.
    d = path("badvocab")
    os.mkdir(d)
    vj_missing = dict(vj)
    del vj_missing[toks[123]]
    vj_dup = dict(vj)
    vj_dup[toks[123]] = 7
    vj_out = dict(vj)
    vj_out[toks[123]] = R
    vj_extra = dict(vj)
    vj_extra["extra"] = R
    tok_dup = json.loads(json.dumps(tok))
    tok_dup["added_tokens"].append({"id": 5, "content": "<pad>", "special": True})
    tok_clash = json.loads(json.dumps(tok))
    tok_clash["added_tokens"][0]["content"] = toks[0]
    bad = [
        ("missing.json", json.dumps(vj_missing), "no token has id 123"),
        ("dupid.json", json.dumps(vj_dup), "id 7 is given to"),
        ("outside.json", json.dumps(vj_out), f"has id {R}, outside the table's rows [0, {R})"),
        ("extra.json", json.dumps(vj_extra), f"token 'extra' has id {R}, outside the table's rows [0, {R})"),
        ("negative.json", json.dumps({**vj, toks[0]: -1}), "has id -1, outside"),
        ("tok-missing-added.json", json.dumps({**tok, "added_tokens": []}), f"no token has id {R - 1}"),
        ("tok-dupid.json", json.dumps(tok_dup), "id 5 is given to"),
        ("tok-dupkey.json", json.dumps(tok_clash), f"duplicate key '{toks[0]}': id 0 and id {R - 1}"),
        ("few.txt", "".join(k + "\n" for k in lines[:-1]), f"{R - 1} lines (keys), the table has {R} rows"),
        ("many.txt", "".join(k + "\n" for k in lines + ["one more"]), f"more than the table's {R} lines"),
        ("duplines.txt", "".join(k + "\n" for k in lines[:200] + ["[CLS]"] + lines[201:]),
         "duplicate key '[CLS]': id 3 and id 200"),
        ("emptyline.txt", "".join(k + "\n" for k in lines[:50] + [""] + lines[51:]), "line 51 is empty"),
    ]
    for name, content, message in bad:
        v = write(os.path.join(d, name), content)
        out = os.path.join(d, "out.emb")
        before = sorted(os.listdir(d))
        r = cli("keys", "attach", src, v, "-o", out, ok=False)
        err = r.stderr.decode(errors="replace")
        check(f"keys attach {name}: exit 1, naming it: {message!r}", r.returncode == 1 and message in err,
              (r.returncode, err))
        check(f"keys attach {name}: nothing written", sorted(os.listdir(d)) == before)
        raises(f"attach_keys {name}: CorruptionError", lambda: embstore.attach_keys(src, v, out, fsync=False),
               embstore.CorruptionError, message)
        check(f"attach_keys {name}: nothing written", sorted(os.listdir(d)) == before)


# ---------------------------------------------------------------------------
# Keys through .embz, decompress, convert and shm:.

def small_keyed(name="k.emb"):
    """A 300-row keyed table from gensim's binary format."""
    rng = np.random.default_rng(8)
    keys = ["king", "queen", "naïve", "日本", "😀", "kingdom", "kin", "queens"] + [f"z{i}" for i in range(292)]
    vecs = rng.standard_normal((len(keys), 8)).astype(np.float32)
    kv = KeyedVectors(8)
    kv.add_vectors(keys, vecs)
    kv.save_word2vec_format(path(name + ".bin"), binary=True)
    cli("import", path(name + ".bin"), "-o", path(name), "-q")
    return path(name), keys, vecs


def keys_survive():
    src, keys, vecs = small_keyed()
    embz = path("k.embz")
    cli("compress", src, "-o", embz, "--frame-rows", 64, "-q")
    with embstore.open(embz) as t:
        check(".embz: opened compressed, with the keys", t.compressed and t.has_keys and
              list(t.index_to_key) == keys)
        check(".embz: t[key] and t[[keys]] read the rows", same_bits(t["日本"], vecs[3]) and
              same_bits(t[["z291", "king"]], vecs[[299, 0]]) and t.index("z100") == 108 and "😀" in t)
        raises(".embz: a missing key is a KeyError", lambda: t["nope"], KeyError)
    check(".embz: keys --json", json.loads(cli("keys", embz, "--json").stdout) ==
          [{"id": i, "key": k} for i, k in enumerate(keys)])
    check(".embz: info --json counts the keys", json.loads(cli("info", embz, "--json").stdout)["keys"]["count"] ==
          len(keys))
    r = cli("get", embz, "--key", "queen", "z200", "--raw")
    check(".embz: get --key", r.stdout == vecs[[1, 208]].tobytes())
    r = cli("verify", embz, ok=False)
    check(".embz: verify ok, with the keys", r.returncode == 0 and b"ok" in r.stdout and b"300 keys" in r.stdout,
          (r.returncode, r.stdout, r.stderr))
    embstore.compress(src, path("k2.embz"), frame_rows=64, fsync=False)
    check("compress() writes the same .embz as the command", read(path("k2.embz")) == read(embz))

    cli("decompress", embz, "-o", path("k-back.emb"), "-q")
    check("decompress gives back the keyed .emb byte for byte", read(path("k-back.emb")) == read(src))
    embstore.decompress(embz, path("k-back2.emb"), fsync=False)
    check("decompress() too", read(path("k-back2.emb")) == read(src))

    cli("convert", src, "-o", path("k-bf16.emb"), "--dtype", "bfloat16", "-q")
    embstore.convert(embz, path("k-f16.emb"), dtype="float16", fsync=False)
    for name, dtype in (("k-bf16.emb", "bfloat16"), ("k-f16.emb", "float16")):
        with embstore.open(path(name)) as t:
            check(f"convert --dtype {dtype}: the same keys", t.dtype == dtype and list(t.index_to_key) == keys and
                  dict(t.key_to_index) == {k: i for i, k in enumerate(keys)})
            check(f"convert --dtype {dtype}: t[key] is the row converted",
                  np.array_equal(t["queen"], t[1]) and np.allclose(t["queen"], vecs[1], rtol=1e-2, atol=0))
    with embstore.open(path("k-bf16.emb")) as t:
        cli("convert", path("k-bf16.emb"), "-o", path("k-bf16-f32.emb"), "--dtype", "float32", "-q")
        with embstore.open(path("k-bf16-f32.emb")) as back:
            check("convert bfloat16 -> float32: keys kept and rows widened exactly",
                  list(back.index_to_key) == keys and same_bits(back.array, t[np.arange(len(keys))]))

    name = f"keys-test-{os.getpid()}"
    cli("share", src, "--name", name, "-f")
    try:
        with embstore.open(f"shm:{name}") as t:
            check("shm: the same keys, and lookups", list(t.index_to_key) == keys and
                  same_bits(t["kingdom"], vecs[5]) and t.key(-1 % len(keys)) == "z291")
        r = cli("keys", f"shm:{name}", "--prefix", "kin")
        check("shm: keys --prefix", r.stdout.decode() == "0\tking\n5\tkingdom\n6\tkin\n", r.stdout)
        embstore.share(embz, name + "-z", force=True)
        try:
            with embstore.open(f"shm:{name}-z") as t:
                check("share() of a .embz: the keys too", list(t.index_to_key) == keys and same_bits(t.array, vecs))
        finally:
            embstore.unshare(name + "-z")
    finally:
        cli("unshare", name)


# ---------------------------------------------------------------------------
# The command line.

def command_line():
    src, keys, vecs = small_keyed("cmd.emb")
    r = cli("get", src, "--key", "king", "queen")
    check("get --key prints those rows as get by id does",
          r.stdout == cli("get", src, 0, 1).stdout and len(r.stdout.splitlines()) == 2, r.stdout)
    rows = json.loads(cli("get", src, "--key", "日本", "😀", "z0", "--json").stdout)
    check("get --key --json: id, key and the exact row",
          [(x["id"], x["key"]) for x in rows] == [(3, "日本"), (4, "😀"), (8, "z0")] and
          same_bits(np.array([x["row"] for x in rows], np.float32), vecs[[3, 4, 8]]), rows)
    check("get --key --raw: the stored bytes",
          cli("get", src, "--key", "naïve", "king", "--raw").stdout == vecs[[2, 0]].tobytes())
    r = cli("get", src, "--key", "king", "nope", ok=False)
    check("get --key of a missing key: exit 1, naming it",
          r.returncode == 1 and b"key 'nope' not found" in r.stderr and r.stdout == b"", (r.returncode, r.stderr))

    r = cli("keys", src)
    check("keys lists every key, 'ID<TAB>KEY', in row order",
          r.stdout.decode() == "".join(f"{i}\t{k}\n" for i, k in enumerate(keys)))
    check("keys --prefix kin", cli("keys", src, "--prefix", "kin").stdout.decode() ==
          "0\tking\n5\tkingdom\n6\tkin\n")
    check("keys --prefix of a non-ASCII prefix", cli("keys", src, "--prefix", "日").stdout.decode() == "3\t日本\n")
    check("keys --prefix that matches nothing: no lines, exit 0",
          cli("keys", src, "--prefix", "qqq").stdout == b"")
    listed = json.loads(cli("keys", src, "--json").stdout)
    check("keys --json: [{id, key}] with the exact keys", listed == [{"id": i, "key": k} for i, k in enumerate(keys)])
    check("keys --json --prefix", json.loads(cli("keys", src, "--json", "--prefix", "queen").stdout) ==
          [{"id": 1, "key": "queen"}, {"id": 7, "key": "queens"}])
    # The odd keys, exactly, through JSON.
    kv = KeyedVectors(2)
    kv.add_vectors(ODD_KEYS, np.zeros((len(ODD_KEYS), 2), np.float32))
    kv.save_word2vec_format(path("odd.txt"))
    cli("import", path("odd.txt"), "-o", path("odd.emb"), "-q")
    listed = json.loads(cli("keys", path("odd.emb"), "--json").stdout)
    check("keys --json: control characters, emoji and combining marks exact",
          listed == [{"id": i, "key": k} for i, k in enumerate(ODD_KEYS)], listed)

    info = json.loads(cli("info", src, "--json").stdout)
    keys_bytes = info.get("keys", {}).get("bytes", 0) if isinstance(info.get("keys"), dict) else 0
    check("info --json: keys count, and bytes at least the keys' own",
          info.get("keys", {}).get("count") == len(keys) and keys_bytes >= sum(len(k.encode()) for k in keys) and
          info["format_version"] == "1.2", info.get("keys"))
    text = cli("info", src).stdout.decode()
    check("info: a keys line", f"keys         {len(keys)} (UTF-8" in text, text)
    check("Table.info() has the keys too", embstore.info(src).get("keys", {}).get("count") == len(keys),
          embstore.info(src).get("keys"))
    r = cli("verify", src)
    check("verify: ok, and counts the keys", r.returncode == 0 and b"ok" in r.stdout and
          f"{len(keys)} keys".encode() in r.stdout, r.stdout)
    rep = embstore.verify(src)
    check("verify() of the module: ok", rep["ok"] is True and not rep["bad_keys"], rep)
    # A flipped bit in a key is found by verify.
    data = bytearray(read(src))
    at = data.find("naïve".encode())
    data[at] ^= 1
    damaged = write(path("cmd-damaged.emb"), bytes(data))
    r = cli("verify", damaged, ok=False)
    check("verify finds a flipped bit in a key: exit 1, naming the keys", at > 0 and r.returncode == 1 and
          b"keys" in r.stdout + r.stderr, (r.returncode, r.stdout, r.stderr))
    raises("verify() of a damaged key raises CorruptionError", lambda: embstore.verify(damaged),
           embstore.CorruptionError, "keys")

    plain = path("cmd-plain.emb")
    cli("generate", "--rows", 10, "--dim", 3, "-o", plain, "--no-fsync")
    text = cli("info", plain).stdout.decode()
    check("info of a keyless table: keys none", "keys         none" in text, text)
    check("info --json of a keyless table: keys null", json.loads(cli("info", plain, "--json").stdout).get(
        "keys", "absent") is None)
    for cmd in (["export", plain, "-o", path("plain.vec")],
                ["export", plain, "-o", path("plain.txt"), "--format", "word2vec"],
                ["export", plain, "-o", path("plain.bin"), "--format", "word2vec", "--binary"]):
        r = cli(*cmd, ok=False)
        check(f"{' '.join(map(str, cmd[3:]))} of a keyless table: exit 2, saying how to add keys, nothing written",
              r.returncode == 2 and b"no keys" in r.stderr and b"keys attach" in r.stderr and
              not os.path.exists(cmd[3]), (r.returncode, r.stderr))
    raises("export_table(format='word2vec') of a keyless table",
           lambda: embstore.export_table(plain, path("plain2.vec"), format="word2vec"), embstore.Error, "no keys")
    check("... wrote nothing", not os.path.exists(path("plain2.vec")))
    for cmd in (["keys", plain], ["get", plain, "--key", "a"]):
        r = cli(*cmd, ok=False)
        check(f"{cmd[0]} on a keyless table says it has no keys", r.returncode in (1, 2) and b"no keys" in r.stderr,
              (r.returncode, r.stderr))


# ---------------------------------------------------------------------------
# The module's lookups and views.

def python_api():
    src, keys, vecs = small_keyed("api.emb")
    with embstore.open(src) as t:
        e = raises("t['nope']: KeyError", lambda: t["nope"], KeyError)
        check("... whose argument is the key", e is not None and e.args == ("nope",), e and e.args)
        e = raises("t.index('nope'): KeyError", lambda: t.index("nope"), KeyError)
        check("... whose argument is the key", e is not None and e.args == ("nope",), e and e.args)
        e = raises("t[['king', 'nope']]: KeyError naming the missing one", lambda: t[["king", "nope"]], KeyError)
        check("... whose argument is the key", e is not None and e.args == ("nope",), e and e.args)
        e = raises("t.key_to_index['nope']: KeyError", lambda: t.key_to_index["nope"], KeyError)
        check("... whose argument is the key", e is not None and e.args == ("nope",), e and e.args)
        raises("t.key(rows): OutOfRangeError", lambda: t.key(len(keys)), embstore.OutOfRangeError)
        raises("t.index_to_key[rows]: IndexError", lambda: t.index_to_key[len(keys)], IndexError)
        check("'king' in t, 'nope' not in t, a prefix not in t",
              "king" in t and "日本" in t and "nope" not in t and "kingd" not in t and "" not in t)
        check("t.has_keys", t.has_keys is True)
        check("a str with a lone surrogate (no UTF-8) is no key, as in a dict",
              "\ud800" not in t and t.key_to_index.get("\ud800") is None and t.key_to_index.get(1) is None)
        raises("t['\\ud800']: KeyError", lambda: t["\ud800"], KeyError)
        check("index_to_key.index as list.index (negative start)",
              t.index_to_key.index(keys[-1], -2) == len(keys) - 1 and
              raises("index before start", lambda: t.index_to_key.index(keys[2], -2), ValueError) is not None)
        check("t.key(i) of every row", [t.key(i) for i in range(len(keys))] == keys)
        itk = t.index_to_key
        check("index_to_key: len, negative index, slices",
              len(itk) == len(keys) and itk[-1] == keys[-1] and itk[-len(keys)] == keys[0] and
              list(itk[2:6]) == keys[2:6] and list(itk[::-50]) == keys[::-50] and list(itk[-3:]) == keys[-3:])
        from collections.abc import Mapping, Sequence
        kti = t.key_to_index
        check("key_to_index is a Mapping, index_to_key a Sequence",
              isinstance(kti, Mapping) and isinstance(itk, Sequence))
        check("key_to_index: len, [], get, in, keys()",
              len(kti) == len(keys) and kti["😀"] == 4 and kti.get("nope", -1) == -1 and "naïve" in kti and
              "nope" not in kti and set(kti.keys()) == set(keys) and kti.get("queens") == 7)
        check("index_to_key: index() and in", itk.index("kingdom") == 5 and "z7" in itk)
        check("t[key] is t[t.index(key)]", all(same_bits(t[k], t[t.index(k)]) for k in keys[:20]))
        check("t[[keys]] is 2-D float32 in that order", t[["z1", "king", "z1"]].shape == (3, 8) and
              same_bits(t[["z1", "king", "z1"]], vecs[[9, 0, 9]]))
    plain = path("api-plain.emb")
    embstore.generate(10, 3, seed=1, path=plain, fsync=False)
    with embstore.open(plain) as t:
        check("a keyless table: has_keys is False, 'x' in t is False", t.has_keys is False and "x" not in t)
        raises("a keyless table: key_to_index raises NotSupportedError", lambda: t.key_to_index,
               embstore.NotSupportedError)
        raises("a keyless table: t.key(0) raises NotSupportedError", lambda: t.key(0), embstore.NotSupportedError)
        raises("a keyless table: t['x'] is not a row", lambda: t["x"], (KeyError, embstore.NotSupportedError))
        check("a keyless table: rows by id still", same_bits(t[[0, 9]], embstore.generate(10, 3, seed=1)[[0, 9]]))
    raises("import_table of a word2vec file with an unknown format", lambda: embstore.import_table(
        src + ".bin", path("x.emb"), format="word3vec"), embstore.InvalidArgumentError)
    raises("attach_keys with an unknown vocab_format", lambda: embstore.attach_keys(
        src, write(path("api-vocab.txt"), "".join(k + "\n" for k in keys)), path("x.emb"),
        vocab_format="sentencepiece"), embstore.InvalidArgumentError)
    check("... nothing written", not os.path.exists(path("x.emb")))


if __name__ == "__main__":
    try:
        code = run("keys_test", [gensim_both_ways, glove_and_fasttext, word2vec_c_binary, bad_word_vectors,
                                 vocabularies, keys_survive, command_line, python_api])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(code)

#!/usr/bin/env bash
# End-to-end tests of the embstore command, as a user runs it, one part per
# command (ctest runs each part as its own test: cli_PART_test).
#   cli_test.sh BUILD/embstore tests/golden [PART]
# PART: usage, generate, arguments, files, info, verify, compress, share; all
# of them when omitted. Prints one line per check and a closing "N passed, N
# failed" line; exits 1 if anything failed.

set -u
EMB=$1
GOLDEN=$2
PART=${3:-all}
case $PART in
  all | usage | generate | arguments | files | info | verify | compress | share) ;;
  *) echo "cli_test.sh: unknown part '$PART'" >&2; exit 2 ;;
esac
part() { [ "$PART" = all ] || [ "$PART" = "$1" ]; }
T=$(mktemp -d "${TMPDIR:-/tmp}/embstore-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
PASS=0
FAIL=0

ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '     %s\n' "$2"; }

# expect NAME WANT_EXIT STDERR_NEEDLE CMD...: runs CMD, checks its exit code
# and that stderr contains the needle (skip with "").
expect() {
  local name=$1 want=$2 needle=$3
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    bad "$name" "exit $rc, want $want; stderr: $(head -c 400 "$T/err")"
  elif [ -n "$needle" ] && ! grep -qF -- "$needle" "$T/err"; then
    bad "$name" "stderr lacks '$needle': $(head -c 400 "$T/err")"
  else
    ok "$name"
  fi
}

# same NAME GOT WANT
same() {
  if [ "$2" == "$3" ]; then ok "$1"; else bad "$1" "got: $2 | want: $3"; fi
}

# The notebook's table, which most parts read.
NB=$T/nb.emb
"$EMB" generate --rows 6 --dim 4 --seed 123 -o "$NB" --no-fsync

# --- help and usage --------------------------------------------------------
if part usage; then
expect "no command is a usage error" 2 "usage: embstore" "$EMB"
expect "top-level --help" 0 "" "$EMB" --help
expect "--version" 0 "" "$EMB" --version
for c in generate info get verify; do
  expect "$c --help" 0 "" "$EMB" $c --help
  grep -q "usage: embstore $c" "$T/out" && ok "$c --help prints usage" || bad "$c --help prints usage"
done
expect "unknown command" 2 "unknown command 'frobnicate'" "$EMB" frobnicate
expect "unknown option" 2 "unrecognised option '--bogus'" "$EMB" info --bogus x
fi

# --- generate: the notebook table ------------------------------------------
if part generate; then
expect "generate notebook" 0 "" "$EMB" generate --rows 6 --dim 4 --seed 123 -o "$NB"
same "notebook row 3" "$("$EMB" get "$NB" 3)" "1.8960 -0.1750 1.3689 -1.6033"
same "notebook rows 0:2" "$("$EMB" get "$NB" 0:2)" "0.3374 -0.1778 -0.3035 -0.5880
0.3486 0.6603 -0.2196 -0.3792"
same "open-ended ranges" "$("$EMB" get "$NB" 5: :1 | wc -l)" "2"
same "--precision 2" "$("$EMB" get "$NB" 3 --precision 2)" "1.90 -0.18 1.37 -1.60"
# The bits of torch.manual_seed(123); nn.Embedding(6, 4).weight (store/torch/torch-rng.md 12.4).
hex32() { od -An -v -tx4 | tr -s ' \n' ' ' | sed 's/^ //;s/ $//'; }
same "--raw bytes are PyTorch's AVX2-kernel bits (the default)" "$("$EMB" get "$NB" 0:6 --raw | hex32)" \
  "3eacbbc9 be360b3b be9b67f8 bf1687f2 3eb27c61 3f290c1b be60e8af bec2228c be246ad5 becd8fd6 3f321afa bfe72cbc 3ff2af0f be333dec 3faf3862 bfcd37f5 bf48ec26 bfb46cdf bed0b478 3f4b9a7e 3f7fa07b 3e628f31 3fea7b7f beacf935"
"$EMB" generate --rows 6 --dim 4 --seed 123 --torch-kernel scalar -o "$T/nb-scalar.emb"
same "--torch-kernel scalar gives PyTorch's DEFAULT-kernel bits" "$("$EMB" get "$T/nb-scalar.emb" 0:6 --raw | hex32)" \
  "3eacbbc8 be360b3b be9b67f6 bf1687fc 3eb27c61 3f290c1b be60e8ac bec2228a be246ad6 becd8fd3 3f321afa bfe72cbb 3ff2af0f be333dec 3faf3863 bfcd37f5 bf48ec26 bfb46cde bed0b478 3f4b9a7e 3f7fa07b 3e628f31 3fea7b7f beacf935"
same "scalar notebook file equals the golden file" "$(cmp "$T/nb-scalar.emb" "$GOLDEN/good/notebook-6x4-seed123.emb" && echo same)" "same"
same "uniform_(-0.3, 0.3), AVX2 (fused)" "$("$EMB" generate --rows 1 --dim 4 --seed 123 --init uniform --low -0.3 --high 0.3 -o "$T/u.emb" && "$EMB" get "$T/u.emb" 0 --raw | hex32)" \
  "bdfa89a4 3c22d05a be1892d2 3de7b2d7"
same "uniform_(-0.3, 0.3), scalar (unfused)" "$("$EMB" generate --rows 1 --dim 4 --seed 123 --init uniform --low -0.3 --high 0.3 --torch-kernel scalar -o "$T/u.emb" && "$EMB" get "$T/u.emb" 0 --raw | hex32)" \
  "bdfa89a4 3c22d060 be1892d2 3de7b2d8"

JSON=$("$EMB" get "$NB" 3 0 --json)
same "--json is exact and ordered" \
  "$(printf '%s' "$JSON" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["id"], d[1]["id"], d[0]["row"][0])')" \
  "3 0 1.8959674"
same "--json values read back as the same floats" \
  "$(printf '%s' "$JSON" | /usr/bin/python3 -c 'import json,struct,sys; d=json.load(sys.stdin); print(struct.pack("<f", d[0]["row"][3]).hex())')" \
  "$("$EMB" get "$NB" 3 --raw | tail -c 4 | od -An -tx1 | tr -d ' \n')"

# --- determinism, SOURCE_DATE_EPOCH -----------------------------------------
"$EMB" generate --rows 300 --dim 33 --seed 7 -o "$T/a.emb"
"$EMB" generate --rows 300 --dim 33 --seed 7 -o "$T/b.emb"
same "the same command writes the same bytes" "$(cmp "$T/a.emb" "$T/b.emb" && echo same)" "same"
SOURCE_DATE_EPOCH=1700000000 "$EMB" generate --rows 300 --dim 33 --seed 7 -o "$T/c.emb"
same "SOURCE_DATE_EPOCH records a creation time" "$("$EMB" info "$T/c.emb" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["created"])')" "2023-11-14T22:13:20Z"
same "seeds S and S+2^32 give the same rows" "$("$EMB" generate --rows 4 --dim 8 --seed 4294967419 -o "$T/s.emb" && "$EMB" get "$T/s.emb" 0:4 --raw | md5sum)" "$("$EMB" generate --rows 4 --dim 8 --seed 123 -o "$T/s2.emb" && "$EMB" get "$T/s2.emb" 0:4 --raw | md5sum)"
expect "negative seed (torch accepts -1)" 0 "" "$EMB" generate --rows 2 --dim 8 --seed -1 -o "$T/neg.emb"
same "seed -1 equals 2^64-1" "$("$EMB" get "$T/neg.emb" 0:2 --raw | md5sum)" "$("$EMB" generate --rows 2 --dim 8 --seed 18446744073709551615 -o "$T/neg2.emb" && "$EMB" get "$T/neg2.emb" 0:2 --raw | md5sum)"

# --- PyTorch's published hashes (store/torch/torch-rng.md 12.7, 12.8), both kernels -----
sha() { "$EMB" get "$1" "0:$2" --raw | sha256sum | cut -d' ' -f1; }
"$EMB" generate --rows 1000 --dim 64 --seed 0 -o "$T/k.emb"
same "1000x64 seed 0 SHA-256, AVX2" "$(sha "$T/k.emb" 1000)" "e2219430cce911a3660f59c51c4165a73d3b534b1e7560b89835560aa0e4defa"
"$EMB" generate --rows 1000 --dim 64 --seed 0 --torch-kernel scalar -o "$T/k.emb"
same "1000x64 seed 0 SHA-256, scalar" "$(sha "$T/k.emb" 1000)" "3bdf17c12fd5caa484de532edebb196dca9b3b1563402e6db4ded099d305fc74"
for t in 1 2 3; do
  "$EMB" generate --rows 50257 --dim 768 --seed 123 --threads $t -o "$T/g.emb"
  same "50257x768 seed 123 SHA-256, AVX2, $t threads" "$(sha "$T/g.emb" 50257)" "99b85c97e338a1bfdb0129a0664e168e818194dfb40b92f42d89ed9d7132ea19"
done
EMBSTORE_ISA=portable "$EMB" generate --rows 50257 --dim 768 --seed 123 -o "$T/g2.emb"
same "50257x768 AVX2 kernel on the portable path" "$(sha "$T/g2.emb" 50257)" "99b85c97e338a1bfdb0129a0664e168e818194dfb40b92f42d89ed9d7132ea19"
"$EMB" generate --rows 50257 --dim 768 --seed 123 --torch-kernel scalar --threads 2 -o "$T/g2.emb"
same "50257x768 seed 123 SHA-256, scalar" "$(sha "$T/g2.emb" 50257)" "3c538fd3ae4c7c5b4e5c9f929112857c9fec19e68a6d57d1ac0df3a42370c473"
same "randn(17) tail window, AVX2" "$("$EMB" generate --rows 1 --dim 17 --seed 123 -o "$T/r17.emb" && "$EMB" get "$T/r17.emb" 0 --raw | hex32)" \
  "3eacbbc9 bf829ed3 be2d02e0 3f6af29f 3fca5d36 3fa6887a 3fa33d12 be4dc6a6 be246ad5 bfc94144 3f77713c bf92f662 bf9455c8 3ea6a423 bf21aa56 c035c276 bf48ec26"
same "randn(3) serial path" "$("$EMB" generate --rows 3 --dim 1 --seed 123 -o "$T/r3.emb" && "$EMB" get "$T/r3.emb" 0:3 --raw | hex32)" \
  "bde448df 3df680d9 bebd40bc"
same "info shows the PyTorch lines for uniform" "$("$EMB" generate --rows 2 --dim 3 --init uniform --low -1 --high 2 -o "$T/u.emb" && "$EMB" info "$T/u.emb" | grep uniform_)" \
  "  weight = torch.empty(2, 3).uniform_(-1.0, 2.0)"
fi

# --- bad arguments ----------------------------------------------------------
if part arguments; then
expect "missing --rows" 2 "'--rows' is required" "$EMB" generate --dim 4 -o "$T/x.emb"
expect "zero rows" 2 "rows must be at least 1" "$EMB" generate --rows 0 --dim 4 -o "$T/x.emb"
expect "negative rows" 2 "--rows: '-3' is not a whole number" "$EMB" generate --rows -3 --dim 4 -o "$T/x.emb"
expect "zero dim" 2 "dim must be at least 1" "$EMB" generate --rows 3 --dim 0 -o "$T/x.emb"
expect "rows over the limit" 2 "rows 4294967297 is over the format's limit" "$EMB" generate --rows 4294967297 --dim 4 -o "$T/x.emb"
expect "huge rows and dim" 2 "over the format's limit" "$EMB" generate --rows 18446744073709551615 --dim 18446744073709551615 -o "$T/x.emb"
expect "negative std" 2 "std must be >= 0" "$EMB" generate --rows 3 --dim 4 --std -1 -o "$T/x.emb"
expect "non-number mean" 2 "--mean: 'abc' is not a finite number" "$EMB" generate --rows 3 --dim 4 --mean abc -o "$T/x.emb"
expect "unknown kernel" 2 "unknown kernel 'sse9'" "$EMB" generate --rows 3 --dim 4 --torch-kernel sse9 -o "$T/x.emb"
expect "unknown init" 2 "unknown init 'gamma'" "$EMB" generate --rows 3 --dim 4 --init gamma -o "$T/x.emb"
expect "low > high" 2 "low 2.0 is greater than high 1.0" "$EMB" generate --rows 3 --dim 4 --init uniform --low 2 --high 1 -o "$T/x.emb"
expect "--std with uniform" 2 "--mean and --std apply to --init normal" "$EMB" generate --rows 3 --dim 4 --init uniform --std 2 -o "$T/x.emb"
expect "--low with normal" 2 "--low and --high apply to --init uniform" "$EMB" generate --rows 3 --dim 4 --low 2 -o "$T/x.emb"
expect "bad seed" 2 "--seed: '12x'" "$EMB" generate --rows 3 --dim 4 --seed 12x -o "$T/x.emb"
expect "missing output folder" 1 "No such file or directory" "$EMB" generate --rows 3 --dim 4 -o "$T/no/such/x.emb"
same "failed commands leave no files" "$(ls -A "$T" | grep -c 'x.emb')" "0"
expect "id out of range" 1 "id 6 out of range: the table has rows [0, 6)" "$EMB" get "$NB" 6
expect "range out of range" 1 "range 0:7 out of range" "$EMB" get "$NB" 0:7
same "nothing printed before an id error" "$(wc -c < "$T/out")" "0"
expect "bad id" 2 "id 'x1' is not a row number" "$EMB" get "$NB" x1
expect "bad id is a usage error before the file is opened" 2 "id 'x1'" "$EMB" get "$T/missing.emb" x1
expect "open range past the end" 1 "range 7: out of range" "$EMB" get "$NB" 7:
same "empty ranges print nothing" "$("$EMB" get "$NB" 3:3 6: | wc -c)" "0"
expect "negative --threads" 2 "--threads: '-1'" "$EMB" verify "$NB" --threads -1
expect "too many --threads" 2 "more than 1024" "$EMB" verify "$NB" --threads 5000
expect "backwards range" 2 "A must be <= B" "$EMB" get "$NB" 4:2
expect "no ids" 2 "no ids given" "$EMB" get "$NB"
expect "--json with --raw" 2 "cannot be combined" "$EMB" get "$NB" 1 --json --raw
expect "missing file" 1 "No such file or directory" "$EMB" info "$T/missing.emb"

# --- stdout errors ----------------------------------------------------------
if [ -w /dev/full ]; then
  expect "info to a full stdout" 1 "writing to stdout" sh -c "'$EMB' info '$NB' > /dev/full"
  expect "info --json to a full stdout" 1 "writing to stdout" sh -c "'$EMB' info '$NB' --json > /dev/full"
  expect "verify to a full stdout" 1 "writing to stdout" sh -c "'$EMB' verify '$NB' > /dev/full"
  expect "get to a full stdout" 1 "writing to stdout" sh -c "'$EMB' get '$NB' 0:6 > /dev/full"
fi
fi

# --- files: symlinks, crashes, full disks -------------------------------------
if part files; then
mkdir "$T/links"
cp "$NB" "$T/links/real.emb"
ln -s real.emb "$T/links/link.emb"
"$EMB" generate --rows 2 --dim 3 -o "$T/links/link.emb"
same "writing through a symlink keeps the link" "$(readlink "$T/links/link.emb")" "real.emb"
same "writing through a symlink replaces the target" "$("$EMB" info "$T/links/real.emb" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])')" "2"
fi

# --- info ------------------------------------------------------------------
if part info; then
expect "info" 0 "" "$EMB" info "$NB"
grep -q "shape        6 x 4 float32" "$T/out" && ok "info shows the shape" || bad "info shows the shape" "$(cat "$T/out")"
grep -q "torch.manual_seed(123)" "$T/out" && ok "info shows the PyTorch lines" || bad "info shows the PyTorch lines"
same "info --json" "$("$EMB" info "$NB" --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["rows"], d["dim"], d["dtype"], d["data_offset"], d["metadata"]["generator.seed"])')" \
  "6 4 float32 4096 123"
fi

# --- verify -----------------------------------------------------------------
if part verify; then
"$EMB" generate --rows 50257 --dim 768 --seed 123 -o "$T/g.emb" --no-fsync
expect "verify a good table" 0 "" "$EMB" verify "$T/g.emb"
grep -q "ok: 50257 rows" "$T/out" && ok "verify reports rows" || bad "verify reports rows" "$(cat "$T/out")"
cp "$T/g.emb" "$T/bad.emb"
# Flip one byte of row 1000 (block 47: blocks of 341 rows of 3072 bytes).
OFF=$(( $("$EMB" info "$T/bad.emb" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data_offset"])') + 1000 * 3072 + 17 ))
printf '\x55' | dd of="$T/bad.emb" bs=1 seek="$OFF" conv=notrunc status=none
expect "verify a corrupt table" 1 "FAILED: 1 of 148 blocks corrupt" "$EMB" verify "$T/bad.emb" --threads 2
grep -q "corrupt block 2: rows \[682, 1023)" "$T/out" && ok "verify names the corrupt rows" || bad "verify names the corrupt rows" "$(cat "$T/out")"
for f in "$GOLDEN"/bad/*.emb "$GOLDEN"/bad/*.embz; do
  name=$(basename "$f")
  "$EMB" verify "$f" >/dev/null 2>"$T/err"
  rc=$?
  if [ $rc -eq 1 ] && [ -s "$T/err" ]; then ok "verify bad/$name: exit 1, $(head -c 90 "$T/err")"; else bad "verify bad/$name" "exit $rc"; fi
done
expect "verify golden newer minor" 0 "" "$EMB" verify "$GOLDEN/good/minor-1.1-longer-header.emb"
fi

# --- compress / decompress --------------------------------------------------
if part compress; then
"$EMB" generate --rows 3000 --dim 96 --seed 5 -o "$T/c.emb"
expect "compress" 0 "ratio" "$EMB" compress "$T/c.emb" -o "$T/c.embz" -v
expect "compress refuses to overwrite" 1 "already exists; use -f" "$EMB" compress "$T/c.emb" -o "$T/c.embz"
expect "compress -f -19 -T 2" 0 "" "$EMB" compress "$T/c.emb" -o "$T/c.embz" -f -19 -T 2
expect "bad level" 2 "--level: 25 is outside [1, 19]" "$EMB" compress "$T/c.emb" -o "$T/x.embz" --level 25
expect "decompress" 0 "" "$EMB" decompress "$T/c.embz" -o "$T/c2.emb"
same "decompress gives the original bytes" "$(cmp "$T/c.emb" "$T/c2.emb" && echo same)" "same"
same "get on .embz equals get on .emb" "$("$EMB" get "$T/c.embz" 0:3000 --raw | md5sum)" "$("$EMB" get "$T/c.emb" 0:3000 --raw | md5sum)"
same "get --json on .embz" "$("$EMB" get "$T/c.embz" 7 --json | md5sum)" "$("$EMB" get "$T/c.emb" 7 --json | md5sum)"
expect "verify .embz" 0 "" "$EMB" verify "$T/c.embz"
same "info .embz shows the table inside" "$("$EMB" info "$T/c.embz" --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["rows"], d["dim"], d["compressed"]["frames"] > 1, d["metadata"]["generator.seed"])')" "3000 96 True 5"
expect "id out of range in .embz" 1 "id 3000 out of range" "$EMB" get "$T/c.embz" 3000
cp "$T/c.embz" "$T/bad.embz"
SEEK=$("$EMB" info "$T/c.embz" --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["compressed"]["frames"])')
# Damage the last byte of the last frame (just before the seek table).
END=$(( $(stat -c %s "$T/c.embz") - SEEK * 24 - 1 ))
printf '\x55' | dd of="$T/bad.embz" bs=1 seek="$END" conv=notrunc status=none
expect "verify names a damaged frame" 1 "FAILED: 1 of $SEEK frames corrupt" "$EMB" verify "$T/bad.embz"
grep -q "rows \[" "$T/out" && ok "the damaged frame's rows are listed" || bad "the damaged frame's rows are listed" "$(cat "$T/out")"
expect "decompress of a damaged file fails" 1 "checksum mismatch" "$EMB" decompress "$T/bad.embz" -o "$T/bad-out.emb"
same "and leaves no output" "$(ls -A "$T" | grep -c 'bad-out')" "0"
expect "truncated .embz" 1 "truncated .embz" sh -c "head -c 1000 '$T/c.embz' > '$T/cut.embz' && '$EMB' info '$T/cut.embz'"
fi

# --- crash safety: a killed generate leaves nothing -------------------------
if part files; then
mkdir "$T/kill"
cp "$NB" "$T/kill/t.emb"
"$EMB" generate --rows 50257 --dim 12288 --seed 1 -o "$T/kill/t.emb" 2>/dev/null &
PID=$!
sleep 0.5
kill -9 $PID 2>/dev/null
wait $PID 2>/dev/null
same "killed generate: only the old table is there" "$(ls -A "$T/kill")" "t.emb"
same "killed generate: the old table is intact" "$(cmp "$NB" "$T/kill/t.emb" && echo same)" "same"

# --- full disk: a small tmpfs, when this machine lets us mount one ----------
mkdir "$T/full"
if mount -t tmpfs -o size=1m tmpfs "$T/full" 2>/dev/null; then
  expect "full disk is a clear error" 1 "no space left on device" "$EMB" generate --rows 1000 --dim 1024 -o "$T/full/t.emb"
  same "full disk leaves nothing" "$(ls -A "$T/full")" ""
  umount "$T/full"
else
  echo "note: cannot mount a tmpfs here; the full-disk case is covered by store_test (RLIMIT_FSIZE)"
fi
fi

# --- shared memory: share, shm:NAME readers, unshare --------------------------
if part share; then
# Segments go to a scratch folder so that the test never touches /dev/shm.
export EMBSTORE_SHM_DIR="$T/shm"
mkdir "$EMBSTORE_SHM_DIR"
"$EMB" generate --rows 3000 --dim 96 --seed 5 -o "$T/s.emb" --no-fsync
"$EMB" compress "$T/s.emb" -o "$T/s.embz" --no-fsync
expect "share" 0 "" "$EMB" share "$T/s.emb" --name cli-t
same "a segment is owner-read-only by default" "$(stat -c %a "$EMBSTORE_SHM_DIR/embstore-cli-t")" "400"
same "get shm:NAME equals get FILE" "$("$EMB" get shm:cli-t 0:3000 --raw | md5sum)" "$("$EMB" get "$T/s.emb" 0:3000 --raw | md5sum)"
expect "verify shm:NAME" 0 "" "$EMB" verify shm:cli-t
same "info shm:NAME" "$("$EMB" info shm:cli-t --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["rows"], d["dim"])')" "3000 96"
expect "compress shm:NAME" 0 "" "$EMB" compress shm:cli-t -o "$T/from-shm.embz" --no-fsync
expect "share refuses a taken name" 1 "already exists; use -f" "$EMB" share "$T/s.emb" --name cli-t
expect "share -f of a .embz with --mode" 0 "" "$EMB" share "$T/s.embz" --name cli-t -f --mode 0644
same "--mode widens, without write bits" "$(stat -c %a "$EMBSTORE_SHM_DIR/embstore-cli-t")" "444"
same "a .embz shares its original bytes" "$(cmp "$EMBSTORE_SHM_DIR/embstore-cli-t" "$T/s.emb" && echo same)" "same"
same "shared lists it" "$("$EMB" shared --json | /usr/bin/python3 -c 'import json,sys; print([(s["name"], s["rows"], s["mode"]) for s in json.load(sys.stdin)])')" "[('cli-t', 3000, '0444')]"
expect "a name with a slash" 2 "only letters, digits" "$EMB" share "$T/s.emb" --name a/b
expect "a name with .." 2 "starts with '.'" "$EMB" share "$T/s.emb" --name ..
expect "an over-long name" 2 "at most 200" "$EMB" share "$T/s.emb" --name "$(printf 'x%.0s' $(seq 201))"
expect "a bad mode" 2 "--mode" "$EMB" share "$T/s.emb" --name m --mode 0200
expect "a name that does not exist" 1 "no shared table 'nope'" "$EMB" get shm:nope 0
head -c 5000 /dev/urandom > "$EMBSTORE_SHM_DIR/embstore-foreign"
expect "a foreign segment" 1 "shared table 'foreign'" "$EMB" info shm:foreign
head -c 20000 "$T/s.emb" > "$EMBSTORE_SHM_DIR/embstore-short"
expect "a segment of the wrong size" 1 "truncated" "$EMB" get shm:short 0
same "shared lists what is not a table" "$("$EMB" shared | grep -c 'NOT A TABLE')" "2"
cp "$T/s.emb" "$T/bad.emb"
printf '\x55' | dd of="$T/bad.emb" bs=1 seek=$(( $(stat -c %s "$T/bad.emb") - 7 )) conv=notrunc status=none
expect "a corrupt source is not shared" 1 "nothing was shared" "$EMB" share "$T/bad.emb" --name bad
expect "unshare" 0 "" "$EMB" unshare cli-t
expect "unshare again" 1 "no shared table 'cli-t'" "$EMB" unshare cli-t
rm -f "$EMBSTORE_SHM_DIR"/embstore-foreign "$EMBSTORE_SHM_DIR"/embstore-short
"$EMB" generate --rows 20000 --dim 4096 --seed 1 -o "$T/big.emb" --no-fsync
"$EMB" share "$T/big.emb" --name killed -T 1 2>/dev/null &
PID=$!
sleep 0.05
kill -9 $PID 2>/dev/null
wait $PID 2>/dev/null
LEFT=$(ls -A "$EMBSTORE_SHM_DIR")
if [ -z "$LEFT" ]; then
  ok "a killed share leaves nothing"
elif [ "$LEFT" = "embstore-killed" ] && "$EMB" verify shm:killed >/dev/null 2>&1; then
  ok "a killed share leaves nothing (it had finished: the whole table, verified)"
  "$EMB" unshare killed
else
  bad "a killed share leaves nothing" "left: $LEFT"
fi
rm -f "$T/big.emb"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  chmod 755 "$T" "$EMBSTORE_SHM_DIR"
  "$EMB" share "$T/s.emb" --name private-t
  expect "another user cannot read an owner-only segment" 1 "Permission denied" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$EMB" get shm:private-t 0
  "$EMB" unshare private-t
else
  echo "note: not root; the permission-denied case needs another user"
fi
if mount -t tmpfs -o size=1m tmpfs "$EMBSTORE_SHM_DIR" 2>/dev/null; then
  expect "no room in shared memory is a clear error" 1 "no space left on device" "$EMB" share "$T/s.emb" --name big
  same "no room in shared memory leaves nothing" "$(ls -A "$EMBSTORE_SHM_DIR")" ""
  umount "$EMBSTORE_SHM_DIR"
else
  echo "note: cannot mount a tmpfs here; the no-room case is not run"
fi
unset EMBSTORE_SHM_DIR
fi

echo
echo "cli_test ($PART): $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]

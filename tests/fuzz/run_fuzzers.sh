#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each (default 60), seeded with the
# golden good and bad files, under AddressSanitizer and UBSan (the fuzz
# build has them). Fails on any finding: the input that crashed is kept in
# $OUT (default build-fuzz/findings) to be added to tests/golden/bad.
#   tests/fuzz/run_fuzzers.sh BUILD_FUZZ_DIR [SECONDS] [TARGET...]
# The seeds are made by $EMBSTORE (default: BUILD_FUZZ_DIR/embstore, else
# build/embstore), any build of the command.
set -euo pipefail
B=$(cd "$1" && pwd)
SECONDS_EACH=${2:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLI=${EMBSTORE:-}
[ -n "$CLI" ] || { [ -x "$B/embstore" ] && CLI=$B/embstore; } || CLI=$ROOT/build/embstore
[ -x "$CLI" ] || { echo "run_fuzzers.sh: no embstore command at $CLI to make the seeds (set EMBSTORE)" >&2; exit 2; }
shift $(( $# >= 2 ? 2 : 1 ))
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_table fuzz_embz fuzz_embz_frame fuzz_npy fuzz_safetensors fuzz_wordvec)
G=$ROOT/tests/golden
OUT=${OUT:-$B/findings}
mkdir -p "$OUT"
W=$(mktemp -d "${TMPDIR:-/tmp}/embstore-fuzz-XXXXXX")
trap 'rm -rf "$W"' EXIT

# Seeds: the golden files of each kind, plus good .npy / safetensors made by
# embstore from the golden table.
mkdir -p "$W"/seed/{fuzz_table,fuzz_embz,fuzz_embz_frame,fuzz_npy,fuzz_safetensors,fuzz_wordvec}
cp "$G"/good/*.emb "$G"/bad/*.emb "$W/seed/fuzz_table/"
cp "$G"/good/*.embz "$G"/bad/*.embz "$W/seed/fuzz_embz/"
cp "$G"/bad/import/*.npy "$W/seed/fuzz_npy/"
cp "$G"/bad/import/*.safetensors "$W/seed/fuzz_safetensors/"
"$CLI" export "$G/good/notebook-6x4-seed123.emb" -o "$W/seed/fuzz_npy/good.npy" -q --no-fsync
"$CLI" export "$G/good/notebook-6x4-seed123.emb" -o "$W/seed/fuzz_safetensors/good.safetensors" -q --no-fsync
"$CLI" export "$G/good/notebook-6x4-seed123-float16.emb" -o "$W/seed/fuzz_npy/good-f16.npy" -q --no-fsync
"$CLI" export "$G/good/notebook-6x4-seed123-bfloat16.emb" -o "$W/seed/fuzz_safetensors/good-bf16.safetensors" -q --no-fsync
# Word vectors and vocabularies: the golden bad ones and good exports of
# the keyed golden table, behind the byte that picks their kind
# (fuzz_wordvec.cc: 0 text, 1 binary, 2 GloVe, 3 lines, 4 vocab.json, 5
# tokenizer.json).
for f in "$G"/bad/import/wv-*; do
  case "$f" in *.bin) k=1 ;; *) k=0 ;; esac
  { printf "\\$(printf %o $k)"; cat "$f"; } > "$W/seed/fuzz_wordvec/$(basename "$f")"
done
"$CLI" export "$G/good/words-6x3-keys.emb" -o "$W/words.bin" --format word2vec --binary -q --no-fsync
"$CLI" export "$G/good/words-6x3-keys.emb" -o "$W/words.vec" --format word2vec -q --no-fsync
{ printf '\001'; cat "$W/words.bin"; } > "$W/seed/fuzz_wordvec/good.bin"
{ printf '\000'; cat "$W/words.vec"; } > "$W/seed/fuzz_wordvec/good.vec"
{ printf '\002'; tail -n +2 "$W/words.vec"; } > "$W/seed/fuzz_wordvec/good-glove.txt"
{ printf '\003'; printf 'a\nb\nc\n'; } > "$W/seed/fuzz_wordvec/lines.txt"
{ printf '\004'; printf '{"a": 0, "b": 2, "c": 1}'; } > "$W/seed/fuzz_wordvec/vocab.json"
{ printf '\005'; printf '{"model": {"vocab": {"a": 0, "b": 1}}, "added_tokens": [{"id": 2, "content": "<s>"}]}'; } \
  > "$W/seed/fuzz_wordvec/tokenizer.json"
# Frames: each golden .embz frame, behind the byte that picks its codec, its
# 8 elements and their dtype (fuzz_embz_frame.cc).
/usr/bin/python3 - "$G" "$W/seed/fuzz_embz_frame" <<'PY'
import os, struct, sys
golden, out = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(os.path.join(golden, "good"))):
    if not name.endswith(".embz"):
        continue
    b = open(os.path.join(golden, "good", name), "rb").read()
    codec, frames, seek = struct.unpack_from("<I", b, 20)[0], struct.unpack_from("<Q", b, 72)[0], struct.unpack_from("<Q", b, 80)[0]
    for f in range(frames):
        off, size, _ = struct.unpack_from("<QQQ", b, seek + 24 * f)
        dtype = 3 if "bfloat16" in name else 2 if "float16" in name else 0
        lead = (dtype << 4) | (3 << 1) | (1 if codec == 2 else 0)  # 8 elements
        open(os.path.join(out, f"{name}-{f}"), "wb").write(bytes([lead]) + b[off:off + size])
PY

status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$W/corpus/$t"
  log="$W/$t.log"
  set +e
  (cd "$OUT" && "$B/tests/fuzz/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$OUT/$t-" "$W/corpus/$t" "$W/seed/$t") >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -oE '(#[0-9]+)\s+(DONE|INITED).*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || echo "cov: ?")
  if [ $rc -eq 0 ]; then
    echo "ok   $t: ${SECONDS_EACH} s, $execs executions, $cov, corpus $(ls "$W/corpus/$t" | wc -l) inputs"
  else
    echo "FAIL $t (exit $rc): findings in $OUT"
    grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5 | sed 's/^/     /'
    status=1
  fi
done
exit $status

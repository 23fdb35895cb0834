#!/usr/bin/env bash
# A table past 2^32 bytes through generate -> compress -> verify ->
# decompress, compared byte for byte: checks that no size, offset or frame
# count is held in 32 bits anywhere. Needs ~13 GB free in
# $EMBSTORE_BENCH_DIR (default /tmp); prints timings.
#   tests/bench/large_roundtrip.sh [BUILD_DIR]
set -euo pipefail
EMB=${1:-build}/embstore
D=$(mktemp -d "${EMBSTORE_BENCH_DIR:-/tmp}/embstore-large-XXXXXX")
trap 'rm -rf "$D"' EXIT
ROWS=50257 DIM=21400   # 50,257 x 21,400 x 4 = 4,301,999,200 bytes of data > 2^32
t() { local s=$(date +%s.%N); "$@"; echo "  $(echo "$(date +%s.%N) - $s" | bc) s: ${*:1:2}" >&2; }
t "$EMB" generate --rows $ROWS --dim $DIM --seed 3 --no-fsync -o "$D/t.emb"
ls -l "$D/t.emb" >&2
t "$EMB" compress "$D/t.emb" -o "$D/t.embz" --no-fsync -v
t "$EMB" verify "$D/t.embz" >/dev/null
t "$EMB" decompress "$D/t.embz" -o "$D/back.emb" --no-fsync
t cmp "$D/t.emb" "$D/back.emb"
LAST=$((ROWS - 1))
[ "$("$EMB" get "$D/t.embz" $LAST --raw | md5sum)" = "$("$EMB" get "$D/t.emb" $LAST --raw | md5sum)" ]
echo "large_roundtrip: 1 passed, 0 failed"

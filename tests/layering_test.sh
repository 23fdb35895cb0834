#!/usr/bin/env bash
# The layout shows the architecture: tools -> store/interop ->
# store/{torch,embz,search,shard} -> store/core -> format, nothing back, and each outside
# dependency enters in one file. (The build enforces the direction too: each
# layer compiles seeing only the folders it may use; this test names the
# rule when someone widens a view.)
#   layering_test.sh SOURCE_DIR
set -u
cd "$1"
PASS=0
FAIL=0
check() {  # check NAME FILES...: passes when grep found nothing
  local name=$1
  shift
  if [ -z "$*" ]; then PASS=$((PASS + 1)); echo "ok   $name"; else FAIL=$((FAIL + 1)); echo "FAIL $name: $*"; fi
}
S=$(ls store/*/*.h store/*/*.cc store/*/*.inc)
check "format/ includes nothing from store/ or tools/" $(grep -lE '#include "(store|tools)/' format/*)
check "store/ includes nothing from tools/" $(grep -lE '#include "tools/' $S)
check "store/core includes only format/ and store/core" $(grep -lE '#include "store/(torch|embz|interop|search|shard)/' store/core/*)
check "store/search includes only format/, store/core and store/search" $(grep -lE '#include "store/(torch|embz|interop|shard)/' store/search/*)
check "store/shard includes only format/, store/core and store/shard" $(grep -lE '#include "store/(torch|embz|interop|search)/' store/shard/*)
check "store/torch and store/embz include neither each other nor store/interop" \
  $(grep -lE '#include "store/(embz|interop|search|shard)/' store/torch/*) $(grep -lE '#include "store/(torch|interop|search|shard)/' store/embz/*)
check "only store/core/mapped_file.cc includes Boost.Interprocess" $(grep -l 'boost/interprocess' format/* $S tools/*.* tools/python/* | grep -v '^store/core/mapped_file.cc$')
check "only store/embz/embz_codec.cc includes zstd" $(grep -l '#include <zstd.h>' format/* $S tools/*.* tools/python/* | grep -v '^store/embz/embz_codec.cc$')
check "only format/checksum.cc includes xxHash" $(grep -lE '#include <(xxhash|xxh3|xxh_x86dispatch)\.h>' format/* $S tools/*.* tools/python/* | grep -v '^format/checksum.cc$')
check "format/ does no file or thread work" $(grep -lE '#include <(thread|fstream|filesystem|fcntl\.h|unistd\.h|sys/mman\.h)>' format/*)
check "no exceptions thrown in format/ or store/" $(grep -lE '\bthrow\b' format/* $S)
echo
echo "layering_test: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]

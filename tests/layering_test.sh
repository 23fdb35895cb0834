#!/usr/bin/env bash
# The layout shows the architecture: tools -> store -> format, nothing back,
# and each outside dependency enters in one file (STYLE.md).
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
check "format/ includes nothing from store/ or tools/" $(grep -lE '#include "(store|tools)/' format/*)
check "store/ includes nothing from tools/" $(grep -lE '#include "tools/' store/*)
check "only store/mapped_file.cc includes Boost.Interprocess" $(grep -l 'boost/interprocess' format/* store/* tools/*.* tools/python/* | grep -v '^store/mapped_file.cc$')
check "only format/checksum.cc includes xxHash" $(grep -lE '#include <(xxhash|xxh3|xxh_x86dispatch)\.h>' format/* store/* tools/*.* tools/python/* | grep -v '^format/checksum.cc$')
check "format/ does no file or thread work" $(grep -lE '#include <(thread|fstream|filesystem|fcntl\.h|unistd\.h|sys/mman\.h)>' format/*)
check "no exceptions thrown in format/ or store/" $(grep -lE '\bthrow\b' format/* store/*)
echo
echo "layering_test: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]

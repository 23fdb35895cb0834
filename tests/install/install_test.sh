#!/usr/bin/env bash
# embstore as another project uses it (the issue's "C++ consumers"):
#   1. `cmake --install` of the build under test (static libembstore) into a
#      prefix: the command, library, headers under include/embstore, the
#      CMake package, embstore.pc and the man page, and nothing else; no
#      path of this machine's build in the package files.
#   2. The prefix moved elsewhere (relocatable), then a consumer project
#      built against it through find_package, and a program built through
#      pkg-config; both read rows that must equal `embstore get`'s.
#   3. embstore inside another project (add_subdirectory) with
#      BUILD_SHARED_LIBS=ON and GTest, benchmark, pybind11 and Python
#      unavailable: it configures and builds; that tree's install (shared
#      libembstore) serves the same two consumers after a move. (Built at
#      -O0: this checks how it links and installs, in a third of the time.)
#   install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PASS=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*"; echo "install_test: $PASS passed, 1 failed"; exit 1; }
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
VERSION=$(sed -n 's/^project(embstore VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")

"$BUILD/embstore" generate --rows 100 --dim 8 --seed 5 -o "$T/t.emb" 2>/dev/null
"$BUILD/embstore" compress "$T/t.emb" -o "$T/t.embz" -q
# same_rows PROGRAM TABLE: PROGRAM (a consumer) writes the rows `embstore get
# --raw` writes, and says it was built against this version.
same_rows() {
  "$1" "$2" 0 42 99 >"$T/got" 2>"$T/said" || return 1
  "$BUILD/embstore" get "$2" 0 42 99 --raw >"$T/want"
  [ -s "$T/want" ] && cmp -s "$T/got" "$T/want" && [ "$(cat "$T/said")" = "embstore $VERSION" ]
}

# check_prefix PREFIX KIND: what the install holds.
check_prefix() {
  local p=$1 kind=$2 lib
  lib=$(find "$p" -name "libembstore.$([ "$kind" = shared ] && echo so || echo a)" | head -1)
  [ -n "$lib" ] || fail "$kind: no libembstore in $p"
  local libdir
  libdir=$(dirname "$lib")
  for f in bin/embstore include/embstore/store/interop/open_table.h include/embstore/store/core/table.h \
           include/embstore/format/status.h include/embstore/store/core/version.h share/man/man1/embstore.1; do
    [ -e "$p/$f" ] || fail "$kind: $f is not installed"
  done
  for f in cmake/embstore/embstoreConfig.cmake cmake/embstore/embstoreConfigVersion.cmake \
           cmake/embstore/embstoreTargets.cmake pkgconfig/embstore.pc; do
    [ -e "$libdir/$f" ] || fail "$kind: $libdir/$f is not installed"
  done
  [ "$(ls "$p/bin")" = embstore ] || fail "$kind: bin/ holds more than the command: $(ls "$p/bin" | tr '\n' ' ')"
  if find "$p" -name '*_test' -o -name '*_bench' -o -name '*.cc' -o -name 'fuzz_*' | grep -q .; then
    fail "$kind: a test, benchmark or source file is installed: $(find "$p" -name '*_test' -o -name '*_bench' -o -name '*.cc' | head -3)"
  fi
  if grep -rlF -e "$BUILD" -e "$SRC" -e "$T" "$libdir/cmake" "$libdir/pkgconfig"; then
    fail "$kind: an absolute path of this machine in the package files"
  fi
  "$p/bin/embstore" --version | grep -qF "$VERSION" || fail "$kind: the installed command's --version is not $VERSION"
  MANPATH="$p/share/man" man -w embstore >/dev/null 2>&1 || [ -z "$(command -v man)" ] || fail "$kind: man cannot find the page"
  ok "$kind: the install holds the command, library, headers, package, .pc and man page, nothing else"
}

# consumers PREFIX KIND: find_package and pkg-config builds, run on both tables.
consumers() {
  local p=$1 kind=$2
  cmake -S "$SRC/tests/install" -B "$T/find-$kind" "${GEN[@]}" -DCMAKE_PREFIX_PATH="$p" >/dev/null
  cmake --build "$T/find-$kind" >/dev/null
  for t in "$T/t.emb" "$T/t.embz"; do
    same_rows "$T/find-$kind/consumer" "$t" || fail "$kind: find_package's consumer read other rows from $t"
  done
  ok "$kind: find_package(embstore CONFIG) + embstore::embstore builds a program that reads .emb and .embz"
  local pc
  pc=$(dirname "$(find "$p" -name embstore.pc | head -1)")
  local flags
  flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs embstore)
  [ "$(PKG_CONFIG_PATH="$pc" pkg-config --modversion embstore)" = "$VERSION" ] || fail "$kind: pkg-config --modversion"
  # shellcheck disable=SC2086
  g++ -std=c++20 -O1 "$SRC/tests/install/consumer.cc" $flags -Wl,-rpath,"$(PKG_CONFIG_PATH="$pc" pkg-config --variable=libdir embstore)" \
    -o "$T/pc-$kind"
  same_rows "$T/pc-$kind" "$T/t.embz" || fail "$kind: pkg-config's program read other rows"
  ok "$kind: pkg-config --cflags --libs embstore builds a program that reads the same rows"
}

# 1, 2: the build under test, static.
cmake --install "$BUILD" --prefix "$T/static" >/dev/null
mv "$T/static" "$T/static-moved"
check_prefix "$T/static-moved" static
consumers "$T/static-moved" static

# The plain recipe on a machine without GoogleTest, Google Benchmark or
# pybind11 (the README's first command installs none of the first two):
# it configures, and leaves out what needs them.
cmake -S "$SRC" -B "$T/plain" "${GEN[@]}" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON -DCMAKE_DISABLE_FIND_PACKAGE_pybind11=ON \
  >"$T/plain.log" 2>&1 || { tail -20 "$T/plain.log"; fail "plain: cmake -S . -B build fails without GoogleTest"; }
grep -q "embstore: tests OFF, benchmarks OFF, Python module OFF, install rules ON" "$T/plain.log" ||
  fail "plain: $(grep 'embstore:' "$T/plain.log")"
ok "plain: cmake -S . -B build configures without GoogleTest, Google Benchmark or pybind11, and leaves out what needs them"

# 3: inside another project, shared, with no test or Python package to find.
cmake -S "$SRC/tests/install/subproject" -B "$T/sub" "${GEN[@]}" -DEMBSTORE_SOURCE_DIR="$SRC" \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DBUILD_SHARED_LIBS=ON -DEMBSTORE_INSTALL=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_pybind11=ON -DCMAKE_DISABLE_FIND_PACKAGE_Python=ON --no-warn-unused-cli >/dev/null
if [ ${#GEN[@]} -gt 0 ] && ninja -C "$T/sub" -t targets all | grep -E '^(store_test|format_test|embstore_python|table_bench)'; then
  fail "subproject: test, benchmark or Python targets are defined"
fi
ok "subproject: add_subdirectory configures without GTest, benchmark, pybind11 or Python, and defines none of their targets"
cmake --build "$T/sub" -j"${EMBSTORE_JOBS:-2}" >/dev/null
same_rows "$T/sub/consumer" "$T/t.emb" || fail "subproject: the consumer read other rows"
ok "subproject: a program linking embstore::embstore (shared) from the same tree reads the same rows"
cmake --install "$T/sub" --prefix "$T/shared" >/dev/null
mv "$T/shared" "$T/shared-moved"
check_prefix "$T/shared-moved" shared
consumers "$T/shared-moved" shared

echo
echo "install_test: $PASS passed, 0 failed"

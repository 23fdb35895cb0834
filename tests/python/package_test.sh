#!/usr/bin/env bash
# The Python module as a Python user installs it (the issue's "Python
# users"), from a copy of the repository's files (what a fresh clone holds),
# with nothing downloaded:
#   1. a fresh virtual environment (--system-site-packages, for Debian's
#      numpy): `pip install --no-build-isolation .` builds and installs it,
#      and `import embstore` there finds the installed package;
#   2. its stubs: mypy's stubtest against the installed module, the stub's
#      parameters against the module's own (stub_signatures_test.py), and
#      a typed example that passes `mypy --strict` and runs;
#   3. `python3 -m build --wheel --no-isolation` makes a wheel that installs
#      into another environment and works there;
#   4. `python3 -m build --sdist` makes a source distribution that holds
#      every source file, whose CMake project configures.
#   package_test.sh SOURCE_DIR [PYTHON]
set -euo pipefail
SRC=$(cd "$1" && pwd)
PY=${2:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PASS=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*"; echo "package_test: $PASS passed, 1 failed"; exit 1; }
VERSION=$(sed -n 's/^project(embstore VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
# The package's build at -O0 without debug information: this test checks
# how it builds, installs and types, not its speed, and an optimized build
# of the whole library took 115 s of the suite's time (a third of that here).
export EMBSTORE_CMAKE_ARGS=${EMBSTORE_CMAKE_ARGS:-"-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0"}

# The files a clone has: tracked (and new, unignored) files; no build trees.
mkdir "$T/src"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$SRC" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' |
     tar --null -T - -cf -) | tar -xf - -C "$T/src"
else
  (cd "$SRC" && tar --exclude='./build*' --exclude='./dist' -cf - .) | tar -xf - -C "$T/src"
fi
[ -f "$T/src/pyproject.toml" ] || fail "no pyproject.toml in the copy"

# 1. pip in a fresh environment.
"$PY" -m venv --system-site-packages "$T/v"
(cd "$T/src" && "$T/v/bin/pip" install --no-build-isolation --no-index -q .) >"$T/pip.log" 2>&1 ||
  { tail -30 "$T/pip.log"; fail "pip install --no-build-isolation . failed"; }
cd "$T"
SITE=$("$T/v/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
"$T/v/bin/python" - "$SITE" "$VERSION" <<'PY' || fail "import embstore in the environment"
import sys, embstore
site, version = sys.argv[1], sys.argv[2]
assert embstore.__file__.startswith(site + "/embstore/"), embstore.__file__
assert embstore.__version__ == version, (embstore.__version__, version)
a = embstore.generate(6, 4, 123)
assert a.shape == (6, 4) and float(a[3, 0]) == 1.8959673643112183
PY
for f in __init__.pyi py.typed; do [ -f "$SITE/embstore/$f" ] || fail "pip did not install embstore/$f"; done
ok "pip install --no-build-isolation . in a fresh venv: import embstore finds $SITE/embstore, version $VERSION, with __init__.pyi and py.typed"

# 2. The stubs.
"$T/v/bin/python" -m mypy.stubtest embstore --allowlist "$SRC/tests/python/stubtest_allowlist.txt" ||
  fail "stubtest: the stubs differ from the module"
ok "mypy stubtest passes against the installed module"
"$T/v/bin/python" "$SRC/tests/python/stub_signatures_test.py" "$SITE/embstore/__init__.pyi" "$SITE" ||
  fail "the stub's parameters differ from the module's"
ok "every stubbed function's parameters are the module's"
cp "$SRC/tests/python/typed_example.py" "$T/typed_example.py"
"$T/v/bin/python" -m mypy --strict --no-incremental --cache-dir "$T/mypy" "$T/typed_example.py" ||
  fail "mypy --strict on the typed example (the package's py.typed and stubs)"
"$T/v/bin/python" "$T/typed_example.py" "$T" >/dev/null || fail "the typed example does not run"
ok "a typed example passes mypy --strict with the installed package and runs"

# 3. A wheel (the build tree of step 1 is reused: same interpreter),
# installed elsewhere.
(cd "$T/src" && "$PY" -m build --wheel --no-isolation --outdir "$T/dist") >"$T/build.log" 2>&1 ||
  { tail -30 "$T/build.log"; fail "python3 -m build --wheel --no-isolation failed"; }
wheel=$(ls "$T"/dist/embstore-"$VERSION"-*.whl)
# (Made without a pip of its own, 4 s saved: the first environment's pip
# installs into it.)
"$PY" -m venv --system-site-packages --without-pip "$T/w"
"$T/v/bin/pip" --python "$T/w/bin/python" install --no-index -q "$wheel" >"$T/wheel.log" 2>&1 ||
  { cat "$T/wheel.log"; fail "pip install of the wheel"; }
"$T/w/bin/python" -c "
import embstore, sys
assert embstore.__file__.startswith('$T/w/'), embstore.__file__
assert embstore.__version__ == '$VERSION'
assert embstore.generate(3, 2, 1).tolist() == embstore.generate(3, 2, 1).tolist()
" || fail "the wheel's module in another environment"
ok "python3 -m build --wheel --no-isolation: $(basename "$wheel") installs into another environment and works"

# 4. A source distribution holds what building from it needs: every source
# file of the library and the module, and the CMake project configures.
(cd "$T/src" && "$PY" -m build --sdist --no-isolation --outdir "$T/dist") >"$T/sdist.log" 2>&1 ||
  { tail -30 "$T/sdist.log"; fail "python3 -m build --sdist --no-isolation failed"; }
mkdir "$T/sdist"
tar -xzf "$T/dist/embstore-$VERSION.tar.gz" -C "$T/sdist"
S="$T/sdist/embstore-$VERSION"
for f in CMakeLists.txt setup.py pyproject.toml $(cd "$T/src" && find format store tools -type f); do
  [ -f "$S/$f" ] || fail "the sdist lacks $f"
done
cmake -S "$S" -B "$T/sdist-build" -DEMBSTORE_BUILD_TESTS=OFF -DEMBSTORE_BUILD_BENCHMARKS=OFF \
  -DEMBSTORE_INSTALL=OFF -DPython_EXECUTABLE="$PY" >"$T/sdist-cmake.log" 2>&1 ||
  { tail -20 "$T/sdist-cmake.log"; fail "the sdist's CMake project does not configure"; }
ok "python3 -m build --sdist: the source distribution holds every source file, and its CMake project configures"

echo
echo "package_test: $PASS passed, 0 failed"

"""Builds the embstore Python module with CMake, for pyproject.toml's
setuptools backend: pip install --no-build-isolation ., or
python3 -m build --wheel --no-isolation.

The module is a package, embstore/, whose __init__ is the extension itself,
beside its stubs (__init__.pyi) and py.typed: CMake's target embstore_python
makes exactly that folder, and it is copied into the wheel. The version is
project(VERSION) in CMakeLists.txt, the one place it is set.

Environment: EMBSTORE_CMAKE_ARGS adds arguments to CMake's configure step;
CMAKE_BUILD_PARALLEL_LEVEL sets the build's jobs (default: every core).
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def project_version():
    text = (ROOT / "CMakeLists.txt").read_text()
    match = re.search(r"project\(embstore VERSION ([0-9]+(?:\.[0-9]+)*)", text)
    if not match:
        sys.exit("setup.py: no project(embstore VERSION ...) in CMakeLists.txt")
    return match.group(1)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = Path(self.build_temp).resolve() / "cmake"
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DEMBSTORE_BUILD_PYTHON=ON",
            "-DEMBSTORE_BUILD_TESTS=OFF",
            "-DEMBSTORE_BUILD_BENCHMARKS=OFF",
            "-DEMBSTORE_INSTALL=OFF",
            "-DBUILD_SHARED_LIBS=OFF",
            # The interpreter running this build (a virtual environment's
            # python is a link to it: the headers and the module's suffix
            # are the same, and so the build tree stays valid across them).
            f"-DPython_EXECUTABLE={os.path.realpath(sys.executable)}",
        ]
        configure += shlex.split(os.environ.get("EMBSTORE_CMAKE_ARGS", ""))
        # A tree configured with other arguments (another interpreter, other
        # EMBSTORE_CMAKE_ARGS) starts afresh: CMake would keep their values.
        stamp = build / "embstore-configure-args"
        if stamp.exists() and stamp.read_text() != repr(configure):
            shutil.rmtree(build)
        build.mkdir(parents=True, exist_ok=True)
        generator = ["-G", "Ninja"] if shutil.which("ninja") and not (build / "CMakeCache.txt").exists() else []
        subprocess.run(configure + generator, check=True)
        stamp.write_text(repr(configure))
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
        subprocess.run(["cmake", "--build", str(build), "--target", "embstore_python", "-j", jobs], check=True)
        package = build / "python" / "embstore"
        dest = Path(self.get_ext_fullpath(ext.name)).parent
        dest.mkdir(parents=True, exist_ok=True)
        for f in package.iterdir():
            shutil.copy2(f, dest / f.name)


setup(
    version=project_version(),
    packages=[],
    py_modules=[],
    ext_modules=[Extension("embstore.__init__", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
    # setuptools' own tree, apart from CMake's build/.
    options={"build": {"build_base": "build-python"}},
)

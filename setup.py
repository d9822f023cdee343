"""Build hook: compile the per-request modules to C with mypyc.

The package is plain, strictly typed Python, and every module also runs as it is. mypyc turns the
modules a request passes through (``pronghorn/compiled.py`` lists them) into C extensions, which
take about a third off the server's CPU per request and half off a WebSocket message
(benchmarks/README.md, "Compiled hot path").

``PRONGHORN_PURE_PYTHON=1`` installs without compiling. Where mypyc or a C compiler is missing or
fails, the install goes on without the extensions and says so: the pure modules are complete.
"""

from __future__ import annotations

import runpy
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

SRC = Path(__file__).parent / "src"
_COMPILED = runpy.run_path(str(SRC / "pronghorn" / "compiled.py"))
MODULES: tuple[str, ...] = _COMPILED["MODULES"]
PURE_SWITCH: str = _COMPILED["PURE_SWITCH"]
#: The setup.py commands that build modules; pip also runs this file for metadata alone
#: (egg_info, dist_info), which must not pay for a compile.
BUILD_COMMANDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}
#: Editable installs build extensions beside the sources.
IN_PLACE_COMMANDS = {"editable_wheel", "develop"}


def _say(message: str) -> None:
    print(f"pronghorn build: {message}", file=sys.stderr)


def _remove_stale_extensions() -> None:
    """An earlier compiled editable build for this interpreter left extensions beside the
    sources, and they would shadow the ``.py`` files this editable install is meant to run."""
    if not IN_PLACE_COMMANDS.intersection(sys.argv[1:]):
        return  # a wheel is built elsewhere; another install's in-place build is not ours
    for name in (*MODULES, "pronghorn__mypyc"):
        stem = SRC.joinpath(*name.split("."))
        for suffix in EXTENSION_SUFFIXES:
            stem.with_name(stem.name + suffix).unlink(missing_ok=True)


def _compiled_extensions() -> list[object]:
    if not BUILD_COMMANDS.intersection(sys.argv[1:]):
        return []
    if _COMPILED["pure_python_requested"]():
        _say(f"{PURE_SWITCH} is set: installing the pure-Python modules only")
        _remove_stale_extensions()
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _say("mypyc is not importable: installing the pure-Python modules only")
        _remove_stale_extensions()
        return []
    paths = [str(SRC.joinpath(*module.split(".")).with_suffix(".py")) for module in MODULES]
    try:
        # One group: a stable name for the shared runtime library (pronghorn__mypyc), so no
        # build leaves a library under an old hash behind.
        return list(mypycify(paths, opt_level="3", group_name="pronghorn"))
    # mypyc reports a type error by exiting: that, or a mypyc bug, must not make the package
    # uninstallable.
    except (Exception, SystemExit) as error:
        _say(f"mypyc could not compile the hot path ({error}): pure-Python modules only")
        _remove_stale_extensions()
        return []


class OptionalBuildExt(build_ext):
    """Build every compiled module or none: a half-built set would shadow pure modules with
    extensions whose shared runtime library is missing."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no C compiler, missing headers, a failing link
            _say(f"compiling the hot path failed ({error}): pure-Python modules only")
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            _remove_stale_extensions()


setup(ext_modules=_compiled_extensions(), cmdclass={"build_ext": OptionalBuildExt})

"""The install runs the build it asked for: the hot path compiled by mypyc (setup.py), or every
module as plain Python when ``PRONGHORN_PURE_PYTHON`` was set for the install and the run.

CI runs the suite both ways; a compile that silently fell back to Python fails here.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import pronghorn
from pronghorn.compiled import (
    MODULES,
    PURE_SWITCH,
    hot_path_compiled,
    is_compiled,
    pure_python_requested,
)

PACKAGE_ROOT = Path(pronghorn.__file__).parent.parent


def test_every_listed_module_is_built_as_the_install_asked() -> None:
    wanted = not pure_python_requested()
    states = {module: is_compiled(module) for module in MODULES}
    hint = (
        f"expected the {'compiled' if wanted else 'pure-Python'} build; reinstall with "
        f"`pip install -e .` ({PURE_SWITCH}=1 for the pure one, in the install and the test run)"
    )
    assert all(state is wanted for state in states.values()), (hint, states)
    assert hot_path_compiled() is wanted


def test_every_listed_module_has_its_source() -> None:
    # A compiled module still ships its .py: the pure build and tracebacks' readers need it.
    for module in MODULES:
        assert PACKAGE_ROOT.joinpath(*module.split(".")).with_suffix(".py").is_file(), module


def test_cli_and_startup_modules_stay_interpreted() -> None:
    assert not is_compiled("pronghorn.cli")
    assert not is_compiled("pronghorn.config")


def test_the_app_is_awaited_by_interpreted_code_on_3_12() -> None:
    # Compiled, run_app would pass a task's cancellation on to the app in throw()'s
    # three-argument form, deprecated on 3.12+ (server/appcall.py).
    listed = "pronghorn.server.appcall" in MODULES
    assert listed is (sys.version_info < (3, 12))
    if not listed:
        assert not is_compiled("pronghorn.server.appcall")


def test_an_unknown_module_is_an_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        is_compiled("pronghorn.no_such_module")


def _compiled_sources() -> dict[str, ast.Module]:
    return {
        module: ast.parse(PACKAGE_ROOT.joinpath(*module.split(".")).with_suffix(".py").read_text())
        for module in MODULES
    }


def _called_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def test_compiled_code_awaits_only_through_a_delegate_or_compiled_coroutines() -> None:
    # A compiled coroutine throws a cancellation into what it awaits in throw()'s deprecated
    # three-argument form; server/awaits.delegate passes it on in the one-argument form.
    sources = _compiled_sources()
    # Compiled only on 3.11, where the three-argument form is not deprecated.
    sources.pop("pronghorn.server.appcall", None)
    compiled_coroutines = {
        node.name
        for tree in sources.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.AsyncFunctionDef)
    }
    undelegated = [
        f"{module}:{node.lineno}"
        for module, tree in sources.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Await)
        and _called_name(node.value) not in compiled_coroutines | {"delegate"}
    ]
    assert undelegated == []
    assert not any(
        isinstance(node, ast.AsyncFor | ast.AsyncWith)
        for tree in sources.values()
        for node in ast.walk(tree)
    )


def test_compiled_code_checks_types_against_tuples_not_unions() -> None:
    # mypyc compiles isinstance(x, (A, B)) to two type checks, but isinstance(x, A | B) to
    # building a types.UnionType on every call (700 instructions per WebSocket message).
    unions = [
        f"{module}:{node.lineno}"
        for module, tree in _compiled_sources().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and _called_name(node) == "isinstance"
        and len(node.args) == 2
        and isinstance(node.args[1], ast.BinOp)
        and isinstance(node.args[1].op, ast.BitOr)
    ]
    assert not unions, unions

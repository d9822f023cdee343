"""Two CPython slow paths kept out of the per-request and per-message code.

Neither shows in a Python-level profile; callgrind found them (docs/design.md, "What the fast
path costs"): on 3.11 ``SomeEnum.MEMBER`` runs through ``EnumType.__getattr__``'s slot hook
(about 900 instructions), and ``b"x" in data`` raises and clears a TypeError before it
searches (270-480 ns on 3.11-3.13). Hot modules compare against module-level aliases of enum
members and test single bytes as ints.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "pronghorn"

HOT_MODULES = [
    "asgi/headers.py",
    "asgi/http.py",
    "asgi/scope.py",
    "asgi/websocket.py",
    "protocols/events.py",
    "protocols/http1.py",
    "protocols/http2.py",
    "protocols/http2_send.py",
    "protocols/http2_stream.py",
    "protocols/tunnel.py",
    "protocols/websocket.py",
    "server/http.py",
    "server/protocol.py",
    "server/websocket.py",
]
#: The enums whose members these modules compare against per request or message.
HOT_ENUMS = {"SendState", "_Send", "Send", "State", "Opcode"}


def enum_lookups_in_functions(tree: ast.Module) -> list[str]:
    """``Enum.MEMBER`` expressions inside function bodies (module-level aliases are fine)."""
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return [
        f"line {node.lineno}: {node.value.id}.{node.attr}"
        for function in functions
        for node in ast.walk(function)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in HOT_ENUMS
        and node.attr.isupper()
    ]


def one_byte_membership_tests(tree: ast.Module) -> list[str]:
    """``b"x" in value`` where value is not a literal container."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if (
                isinstance(op, ast.In | ast.NotIn)
                and isinstance(left, ast.Constant)
                and type(left.value) is bytes
                and len(left.value) == 1
                and not isinstance(right, ast.Tuple | ast.List | ast.Set | ast.Dict)
            ):
                found.append(f"line {node.lineno}: {left.value!r}")
            left = right
    return found


def parse(module: str) -> ast.Module:
    path = PACKAGE / module
    return ast.parse(path.read_text(), str(path))


@pytest.mark.parametrize("module", HOT_MODULES)
def test_no_enum_member_lookups_inside_functions(module: str) -> None:
    found = enum_lookups_in_functions(parse(module))
    assert not found, f"{module}: use the module-level member aliases: {found}"


@pytest.mark.parametrize("module", HOT_MODULES)
def test_no_one_byte_literal_membership_tests(module: str) -> None:
    found = one_byte_membership_tests(parse(module))
    assert not found, f"{module}: test the byte as an int (protocols/events.py): {found}"


def test_the_checks_find_what_they_look_for() -> None:
    tree = ast.parse(
        "DONE = SendState.DONE\n"
        "def f(state, data):\n"
        "    if b'%' in data or b'#' not in data[1:] or b'a' in (b'a', b'b'):\n"
        "        return state is SendState.DONE or state is DONE\n"
    )
    assert enum_lookups_in_functions(tree) == ["line 4: SendState.DONE"]
    assert one_byte_membership_tests(tree) == ["line 3: b'%'", "line 3: b'#'"]

"""The import rule of DESIGN.md, enforced: sans-IO layers stay sans-IO, no upward imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "pronghorn"

#: Highest layer first; a module may import only from its own layer or those after it.
LAYERS = ["cli", "supervisor", "server", "asgi", "protocols"]
#: Leaf modules every layer may use.
SHARED = {"config", "errors", "sockets", "systemd", "tls", "logging", "importer", "__init__"}
SANS_IO_FORBIDDEN = {"asyncio", "socket", "ssl", "time", "selectors", "threading"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "pronghorn" or len(parts) < 2:
        return None
    head = parts[1]
    if head in ("cli", "__main__", "runner", "demo"):
        return "cli"
    return head if head in LAYERS else None


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_it(path: Path) -> None:
    relative = path.relative_to(PACKAGE).with_suffix("")
    own = layer_of("pronghorn." + ".".join(relative.parts))
    if own is None:
        return
    for name in imports(path):
        target = layer_of(name)
        if target is None:
            continue
        assert LAYERS.index(target) >= LAYERS.index(own), f"{relative} imports {name}"


@pytest.mark.parametrize(
    "path",
    [p for p in modules() if p.parent.name in ("protocols", "asgi")],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_sans_io_layers_import_no_io(path: Path) -> None:
    for name in imports(path):
        assert name.split(".")[0] not in SANS_IO_FORBIDDEN, f"{path.name} imports {name}"


def test_supervisor_never_imports_protocols_or_asgi() -> None:
    for path in (PACKAGE / "supervisor").rglob("*.py"):
        for name in imports(path):
            assert not name.startswith(("pronghorn.protocols", "pronghorn.asgi")), path.name


def test_scopes_are_built_only_in_scope_py() -> None:
    for path in modules():
        if path.name == "scope.py":
            continue
        text = path.read_text()
        assert '"type": "http",' not in text, path.name
        assert '"type": "websocket",' not in text, path.name

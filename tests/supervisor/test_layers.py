"""The process layer stays out of the serving code: a worker is just Server(config).serve()."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

SUPERVISOR = Path(__file__).resolve().parents[2] / "src" / "pronghorn" / "supervisor"
FORBIDDEN = ("pronghorn.protocols", "pronghorn.asgi")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_supervisor_module_imports_protocols_or_asgi() -> None:
    for path in sorted(SUPERVISOR.glob("*.py")):
        bad = [m for m in imported_modules(path) if m.startswith(FORBIDDEN)]
        assert bad == [], f"{path.name} imports {bad}"


def test_the_supervisor_process_loads_no_serving_code() -> None:
    code = (
        "import sys, pronghorn.supervisor, pronghorn.supervisor.workers, "
        "pronghorn.supervisor.reload, pronghorn.sockets; "
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'pronghorn.server', 'pronghorn.protocols', 'pronghorn.asgi'))))"
    )
    env = {**os.environ, "PYTHONPATH": str(SUPERVISOR.parents[1])}
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr

"""What the figures were measured with: machine, pinning, tools and package versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from benchmarks.servers import ROOT
from pronghorn.compiled import hot_path_compiled

PACKAGES = (
    "pronghorn",
    "uvicorn",
    "httptools",
    "uvloop",
    "h11",
    "websockets",
    "wsproto",
    "hypercorn",
    "daphne",
    "twisted",
    "granian",
    "starlette",
    "fastapi",
)


def _tool(command: list[str]) -> str:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    text = (completed.stdout or completed.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return commit or "unknown"


def packages() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def environment(
    server_core: int | None, client_core: int | None, load_at_start: float | None = None
) -> dict[str, str]:
    pinning = (
        f"servers on core {server_core}, load clients on core {client_core}"
        if server_core is not None
        else "not pinned (fewer than 2 usable cores)"
    )
    load_at_end = os.getloadavg()[0]
    load = f"{load_at_end:.1f} at the end"
    if load_at_start is not None:
        load = f"{load_at_start:.1f} at the start, {load}"
    # The suite itself keeps two cores busy; more than that means other jobs shared them.
    if max(load_at_end, load_at_start or 0.0) > (os.cpu_count() or 1):
        load += " (above the core count: other jobs competed)"
    return {
        "commit": _commit(),
        "load average (1 min)": load,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pronghorn build": "compiled hot path (mypyc)"
        if hot_path_compiled()
        else "pure Python (no compiled modules found)",
        "kernel": platform.release(),
        "cpu": f"{_cpu_model()} ({os.cpu_count()} cores)",
        "pinning": pinning,
        "wrk": _tool(["wrk", "-v"]).split(" Copyright")[0],
        "h2load": _tool(["h2load", "--version"]),
    }

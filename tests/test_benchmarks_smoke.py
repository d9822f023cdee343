"""The benchmark suite still runs: one tiny round of hello against pronghorn and the raw
reference (``python benchmarks/run.py --smoke``). No timing is asserted, only that each server
produced a result row."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)"
)


@pytest.mark.timeout(180)
def test_smoke_run_produces_a_row_per_server(tmp_path: Path) -> None:
    output = tmp_path / "smoke.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(output.read_text())["results"]
    for server in ("pronghorn", "rawref", "asgifloor"):
        cell = results["hello"][server]
        assert cell["failure"] is None, f"{server}: {cell['failure']}"
        assert isinstance(cell["median"], float), cell
        assert cell["samples"], cell
    assert "hello, 64 connections" in completed.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("app", ["starlette_hello", "fastapi_hello"])
def test_asgi_floor_answers_framework_apps_in_order(tmp_path: Path, app: str) -> None:
    """The ASGI floor bounds the framework workloads, so it must answer them as the servers
    do: the exact body, keep-alive, and 16 pipelined answers in order."""
    from benchmarks import check
    from benchmarks.servers import SERVERS, Launch, RunningServer

    launch = Launch(f"benchmarks.apps.{app}:app", None, floor=True)
    server = RunningServer(SERVERS["asgifloor"], launch, None, tmp_path)
    try:
        server.wait_listening()
        check.hello(server.port)
        check.hello_twice_keep_alive(server.port)
        check.pipelined(server.port)
        assert server.alive(), server.log_tail()
    finally:
        server.stop()
    assert server.process.returncode == 0, server.log_tail()

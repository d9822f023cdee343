"""One measurement of one workload against one running server, whatever the load tool."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from benchmarks import wrk
from benchmarks.servers import ROOT, RunningServer
from benchmarks.workloads import Workload

HELLO_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(slots=True)
class Sample:
    value: float
    #: p99 latency (ms), for wrk workloads.
    p99_ms: float | None = None
    #: Server CPU time (user + system, whole process group) per request or message, in µs.
    server_us: float | None = None
    #: The load client's CPU share during the run (1.0 = one core busy: the client was the limit).
    client_cpu: float | None = None
    errors: int = 0
    notes: list[str] = field(default_factory=list)


def run_wrk(workload: Workload, server: RunningServer, duration: int, core: int | None) -> Sample:
    cpu = server.cpu_seconds()
    result = wrk.run(
        f"http://127.0.0.1:{server.port}/",
        connections=workload.connections,
        duration=duration,
        core=core,
        script=workload.script,
        script_args=workload.script_args,
    )
    cpu = server.cpu_seconds() - cpu
    sample = Sample(result.requests_per_s, result.p99_ms, None, result.client_cpu, result.errors)
    if result.requests:
        sample.server_us = cpu / result.requests * 1e6
    if result.error_text:
        sample.notes.append(result.error_text)
    return sample


def run_ws(
    workload: Workload, server: RunningServer, duration: float, warmup: float, core: int | None
) -> Sample:
    command = [sys.executable, "-m", "benchmarks.wsload", "--port", str(server.port)]
    command += ["--connections", str(workload.connections), "--size", str(workload.ws_size)]
    command += ["--duration", str(duration), "--warmup", str(warmup)]
    command += ["--server-pgid", str(server.pgid)]
    if workload.ws_binary:
        command.append("--binary")
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=duration + 90, check=False
    )
    try:
        result = json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"wsload failed: {completed.stderr.strip()[-300:]}") from None
    sample = Sample(
        float(result["rate"]),
        None,
        result.get("server_us"),
        result.get("client_cpu"),
        int(result["errors"]),
    )
    if result["errors"]:
        sample.notes.append("; ".join(result["reasons"])[:200])
    return sample


def run_external(
    workload: Workload, server: RunningServer, duration: int, core: int | None
) -> Sample:
    assert workload.external is not None
    cpu = server.cpu_seconds()
    result = workload.external(server.port, duration, core)
    cpu = server.cpu_seconds() - cpu
    if isinstance(result, int | float):
        return Sample(float(result))
    sample = Sample(float(result["rate"]), result.get("p99_ms"), errors=result.get("errors", 0))
    requests = result.get("requests")  # server CPU per request only when the count is exact
    if requests:
        sample.server_us = cpu / requests * 1e6
    return sample


async def _open_idle(
    port: int, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` keep-alive connections, each having completed one request."""
    limit = asyncio.Semaphore(100)  # some servers listen with a small backlog

    async def one() -> Conn:
        async with limit:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HELLO_REQUEST)
            await reader.readuntil(b"Hello, world!")
            return reader, writer

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _still_open(pairs: list[Conn]) -> int:
    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            writer.write(HELLO_REQUEST)
            await asyncio.wait_for(reader.readuntil(b"Hello, world!"), 10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            return False
        return True

    return sum(await asyncio.gather(*(one(r, w) for r, w in pairs)))


def run_memory(workload: Workload, server: RunningServer) -> Sample:
    """RSS growth per idle keep-alive connection, measured within the keep-alive timeouts."""
    count = workload.connections

    async def measure() -> Sample:
        await asyncio.sleep(0.3)
        before = server.rss_kib()
        started = time.monotonic()
        pairs = await _open_idle(server.port, count)
        await asyncio.sleep(0.3)
        after = server.rss_kib()
        elapsed = time.monotonic() - started
        alive = await _still_open(pairs)
        for _, writer in pairs:
            writer.close()
        sample = Sample((after - before) / count)
        if alive < count:
            sample.errors = count - alive
            sample.notes.append(f"{count - alive} connections closed before the check")
        sample.notes.append(f"opened in {elapsed:.2f} s")
        return sample

    return asyncio.run(measure())


def first_response_ms(server: RunningServer, timeout: float = 30.0) -> float:
    """Poll until the server answers GET / with 200; milliseconds since it was spawned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(HELLO_REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                head = sock.recv(64)
        except OSError:
            if not server.alive():
                raise RuntimeError(f"exited: {server.log_tail()}") from None
            time.sleep(0.002)
            continue
        elapsed = (time.perf_counter() - server.started_at) * 1000
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"first answer was {head[:40]!r}")
        return elapsed
    raise RuntimeError(f"no answer within {timeout:.0f} s: {server.log_tail()}")

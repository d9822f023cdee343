"""HTTP/2 hello world under h2load: pronghorn against hypercorn and granian, as ratios.

    python benchmarks/h2_hello.py [--duration 5] [--rounds 3] [--clients 10] [--streams 10]

Every server serves ``benchmarks.apps.hello:app`` on 127.0.0.1 over cleartext HTTP/2 (prior
knowledge), one worker each, started in its own process group and stopped by that group's id
(benchmarks/servers.py). A server that is not installed, does not start or does not answer over
HTTP/2 is reported as such, never dropped. Rounds are interleaved so drift hits every server
alike; the median of each server's rates is printed with its ratio to pronghorn.

The full suite (benchmarks/run.py) also calls ``measure`` and ``check`` below as its optional
``h2-hello`` workload.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.servers import SERVERS, Launch, RunningServer, ServerFailed

HELLO = Launch("benchmarks.apps.hello:app", "hello")
PEERS = ("pronghorn", "hypercorn", "granian")
#: Python module that tells whether a peer is installed.
MODULES = {"pronghorn": "pronghorn", "hypercorn": "hypercorn", "granian": "granian"}

_DONE = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed"
)
_RATE = re.compile(r"finished in [\d.]+(?:s|ms|us), ([\d.]+) req/s")


def _h2load() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client")
    return path


def _pin(core: int | None) -> list[str]:
    return ["taskset", "-c", str(core)] if core is not None and shutil.which("taskset") else []


def run_h2load(
    port: int,
    *,
    duration: float | None = None,
    requests: int | None = None,
    clients: int = 10,
    streams: int = 10,
    core: int | None = None,
) -> dict[str, Any]:
    """One bounded h2load run against 127.0.0.1:port; rate, done/succeeded/failed counts."""
    command = [*_pin(core), _h2load(), "-c", str(clients), "-m", str(streams), "-t", "1"]
    if duration is not None:
        command += ["-D", str(max(1, round(duration))), "--warm-up-time", "1"]
    else:
        command += ["-n", str(requests or 1000)]
    command.append(f"http://127.0.0.1:{port}/")
    timeout = (duration or 30.0) + 30.0
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    done = _DONE.search(result.stdout)
    rate = _RATE.search(result.stdout)
    if done is None or rate is None:
        raise ServerFailed(f"h2load failed: {(result.stderr or result.stdout).strip()[-300:]}")
    total, _, finished, succeeded, failed = (int(x) for x in done.groups())
    return {
        "rate": float(rate.group(1)),
        "done": finished,
        "succeeded": succeeded,
        "errors": failed + (finished - succeeded),
        "total": total,
    }


# --------------------------------------------------------------------------- suite contract
def check(port: int) -> None:
    """Raise unless the server answers a few HTTP/2 requests correctly."""
    outcome = run_h2load(port, requests=20, clients=1, streams=4)
    if outcome["succeeded"] != 20:
        raise ServerFailed(f"HTTP/2 check: {outcome['succeeded']} of 20 requests succeeded")


def measure(port: int, duration: float, core: int | None) -> dict[str, Any]:
    """Requests/s of HTTP/2 hello for ``duration`` seconds, h2load pinned to ``core``."""
    outcome = run_h2load(port, duration=duration, core=core)
    return {"rate": outcome["rate"], "errors": outcome["errors"]}


# --------------------------------------------------------------------------- standalone
def installed(name: str) -> bool:
    return importlib.util.find_spec(MODULES[name]) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=10, help="h2load connections")
    parser.add_argument("--streams", type=int, default=10, help="concurrent streams each")
    args = parser.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_core, client_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    log_dir = Path(tempfile.mkdtemp(prefix="h2_hello-"))
    running: dict[str, RunningServer] = {}
    notes: dict[str, str] = {}
    try:
        for name in PEERS:
            if not installed(name):
                notes[name] = "not installed"
                continue
            try:
                server = RunningServer(SERVERS[name], HELLO, server_core, log_dir)
            except ServerFailed as exc:
                notes[name] = str(exc)
                continue
            running[name] = server
            try:
                server.wait_listening()
                check(server.port)
                run_h2load(server.port, duration=1.0, core=client_core)  # warm-up
            except (ServerFailed, subprocess.TimeoutExpired) as exc:
                notes[name] = f"FAILED ({exc})"
                server.stop()
                del running[name]
        rates: dict[str, list[float]] = {name: [] for name in running}
        names = list(running)
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)] if names else []
            for name in order:
                server = running[name]
                try:
                    outcome = run_h2load(
                        server.port,
                        duration=args.duration,
                        clients=args.clients,
                        streams=args.streams,
                        core=client_core,
                    )
                except (ServerFailed, subprocess.TimeoutExpired) as exc:
                    notes[name] = f"FAILED in round {round_ + 1} ({exc})"
                    continue
                rates[name].append(outcome["rate"])
                if outcome["errors"]:
                    notes[name] = f"{outcome['errors']} failed requests"
    finally:
        for server in running.values():
            server.stop()
    print(
        f"HTTP/2 hello, h2load -c {args.clients} -m {args.streams}, "
        f"{args.rounds} x {args.duration:g} s, pinned: {server_core is not None}"
    )
    base = statistics.median(rates["pronghorn"]) if rates.get("pronghorn") else None
    for name in PEERS:
        samples = rates.get(name) if name in running or name in rates else None
        if samples:
            median = statistics.median(samples)
            ratio = f"{base / median:.2f}x" if base else "-"
            line = f"  {name:<10} {median:>10.0f} req/s   pronghorn/{name}: {ratio}"
        else:
            line = f"  {name:<10} {'-':>10}"
        if name in notes:
            line += f"   ({notes[name]})"
        print(line)
    print(f"  logs: {log_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What more workers buy, and how --reuse-port spreads connections.

    python benchmarks/workers.py                # hello with 1 and 2 workers, then the spread
    python benchmarks/workers.py --duration 10 --connections 128
    python benchmarks/workers.py --only throughput   (or: spread)

Throughput: wrk on ``benchmarks.apps.hello:app`` served by ``pronghorn --workers 1`` and then
``--workers 2`` (and 2 with ``--reuse-port``); prints requests/s, the ratio, and the server's CPU
time per request (the supervisor's included: it touches no request, and measures at 0.0 s under
load). On a 2-core machine wrk competes with the workers for the cores, so the ratio there says
little about scaling; the CPU per request says what a second worker costs.

Spread: wrk on an app that counts the requests each worker process served (written at lifespan
shutdown), printed per worker for one shared socket and for ``--reuse-port``; once with
``Connection: close`` (every request a new connection, so a new accept) and once keep-alive
(wrk's connections are spread once, at accept, and then stay on their worker).
Every run is bounded by ``--duration``; servers are stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]

COUNTING_APP = textwrap.dedent(
    """
    import os

    served = 0

    async def app(scope, receive, send):
        global served
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    with open(os.path.join(os.environ["COUNT_DIR"], str(os.getpid())), "w") as f:
                        f.write(str(served))
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        served += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, app: str, workers: int, *extra: str, cwd: Path, env: dict[str, str]):
        self.port = free_port()
        environment = {**os.environ, **env}
        environment["PYTHONPATH"] = os.pathsep.join(
            p
            for p in (str(ROOT / "src"), str(ROOT), str(cwd), environment.get("PYTHONPATH", ""))
            if p
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pronghorn", app, "--port", str(self.port),
             "--workers", str(workers), "--no-access-log", "--log-level", "warning", *extra],
            cwd=cwd, env=environment, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    probe.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if probe.recv(12).startswith(b"HTTP/1.1"):
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"pronghorn did not serve on port {self.port} within 20 s")

    def cpu_seconds(self) -> float:
        """CPU time used so far by pronghorn: the process started and its children (Linux)."""
        root = self.process.pid
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            pid, ppid = int(entry.name), int(fields[1])
            if root in (pid, ppid):
                total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def wrk(port: int, duration: float, connections: int, *extra: str) -> tuple[float, int]:
    """(requests per second, requests completed)."""
    result = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(duration))}s",
         *extra, f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=duration + 30, check=True,
    )  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    count = re.search(r"(\d+) requests in", result.stdout)
    if rate is None or count is None:
        raise SystemExit(f"cannot read wrk's output:\n{result.stdout}{result.stderr}")
    return float(rate.group(1)), int(count.group(1))


SETUPS: dict[str, tuple[int, tuple[str, ...]]] = {
    "1 worker": (1, ()),
    "2 workers": (2, ()),
    "2 workers --reuse-port": (2, ("--reuse-port",)),
}


def throughput(args: argparse.Namespace) -> None:
    rates: dict[str, list[float]] = {name: [] for name in SETUPS}
    cpu_us: dict[str, list[float]] = {name: [] for name in SETUPS}
    # Alternate the setups round by round: on a shared machine the load from other jobs drifts,
    # and ratios taken in the same round drift far less than absolute figures. Server CPU per
    # request (supervisor included) is the steadiest figure: it does not depend on the client.
    for _ in range(args.rounds):
        for name, (workers, extra) in SETUPS.items():
            # The CLI serves --workers 1 in-process (no supervisor): what a one-worker user runs.
            server = Server("benchmarks.apps.hello:app", workers, *extra, cwd=ROOT, env={})
            try:
                wrk(server.port, 1, args.connections)  # warm up
                before = server.cpu_seconds()
                rate, count = wrk(server.port, args.duration, args.connections)
                cpu_us[name].append((server.cpu_seconds() - before) / max(count, 1) * 1e6)
                rates[name].append(rate)
            finally:
                server.stop()
    for name, samples in rates.items():
        shown = ", ".join(f"{r:.0f}" for r in samples)
        print(
            f"hello, {name}: median {median(samples):8.0f} requests/s ({shown}); "
            f"server CPU {median(cpu_us[name]):.1f} us/request"
        )
    one = rates["1 worker"]
    for name in ("2 workers", "2 workers --reuse-port"):
        ratios = [two / single for single, two in zip(one, rates[name], strict=True)]
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"ratio {name} / 1 worker: median {median(ratios):.2f} (rounds: {shown})")


def spread(args: argparse.Namespace) -> None:
    # The busiest worker's share of the requests, one figure per round: 50% is an even spread,
    # 100% means one worker served everything. Rounds vary a lot, so print them all.
    for mode, extra in (("shared socket", ()), ("--reuse-port", ("--reuse-port",))):
        for kind, headers in (("new connections", ("-H", "Connection: close")), ("keep-alive", ())):
            shares = []
            for _ in range(args.rounds):
                served = _served_per_worker(args, extra, headers)
                shares.append(100 * max(served, default=0) / (sum(served) or 1))
            shown = ", ".join(f"{share:.0f}%" for share in shares)
            print(f"spread over 2 workers, {mode}, {kind}: busiest worker served {shown}")


def _served_per_worker(
    args: argparse.Namespace, extra: tuple[str, ...], headers: tuple[str, ...]
) -> list[int]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "counting_app.py").write_text(COUNTING_APP)
        counts = directory / "counts"
        counts.mkdir()
        server = Server(
            "counting_app:app", 2, *extra, cwd=directory, env={"COUNT_DIR": str(counts)}
        )
        try:
            wrk(server.port, args.duration, args.connections, *headers)
        finally:
            server.stop()
        return sorted((int(p.read_text()) for p in counts.iterdir()), reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="1-and-2-worker pairs to run")
    parser.add_argument("--only", choices=("throughput", "spread"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    if args.only in (None, "throughput"):
        throughput(args)
    if args.only in (None, "spread"):
        spread(args)


if __name__ == "__main__":
    main()

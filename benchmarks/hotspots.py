"""Profile a server under load: where its CPU goes per function (py-spy sampling).

    python -m benchmarks.hotspots                       # pronghorn, hello, 8 s
    python -m benchmarks.hotspots --workload pipelined --server uvicorn --top 30

Starts the server pinned to the server core, loads it with the workload's wrk settings from the
client core, samples it with ``py-spy record`` (``pip install py-spy``) while the load runs,
and prints the functions with the most samples: on their own (self) and with what they call
(inclusive). Lines are ``function (file:line)``. Everything stops by itself.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import wrk
from benchmarks.servers import SERVERS, RunningServer
from benchmarks.workloads import BY_NAME


def aggregate(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """(samples, self counts, inclusive counts) from py-spy's collapsed-stack output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    return total, own, inclusive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="py-spy profile of a server under wrk load")
    parser.add_argument("--server", default="pronghorn", choices=list(SERVERS))
    wrk_workloads = [w.name for w in BY_NAME.values() if w.kind == "wrk"]
    parser.add_argument("--workload", default="hello", choices=wrk_workloads)
    parser.add_argument("--duration", type=int, default=8, help="seconds sampled")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None or wrk.available() is None:
        print("needs py-spy (pip install py-spy) and wrk", file=sys.stderr)
        return 2
    usable = sorted(os.sched_getaffinity(0))
    server_core, client_core = (usable[0], usable[1]) if len(usable) > 1 else (None, None)
    workload = BY_NAME[args.workload]
    with tempfile.TemporaryDirectory(prefix="pronghorn-hotspots-") as tmp:
        server = RunningServer(SERVERS[args.server], workload.launch, server_core, Path(tmp))
        try:
            server.wait_listening()
            workload.check(server.port)
            command = ["wrk", "-t1", f"-c{workload.connections}", f"-d{args.duration + 2}s"]
            if workload.script is not None:
                command += ["-s", str(wrk.LUA / workload.script)]
            command.append(f"http://127.0.0.1:{server.port}/")
            if workload.script_args:
                command += ["--", *workload.script_args]
            if client_core is not None:
                command = ["taskset", "-c", str(client_core), *command]
            load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            output = Path(tmp) / "profile.txt"
            spy = ["py-spy", "record", "-p", str(server.pgid), "-d", str(args.duration)]
            spy += ["-r", str(args.rate), "-f", "raw", "-o", str(output)]
            subprocess.run(spy, capture_output=True, timeout=args.duration + 60, check=True)
            stdout, _ = load.communicate(timeout=args.duration + 30)
            raw = output.read_text()
        finally:
            server.stop()
    total, own, inclusive = aggregate(raw)
    rate = next((line for line in stdout.splitlines() if "Requests/sec" in line), "")
    print(f"{args.server}, {args.workload}: {total} samples; {rate.strip()} (while sampled)")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"\n-- {title}")
        for frame, samples in counter.most_common(args.top):
            print(f"{samples / total:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

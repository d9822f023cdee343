"""Run pronghorn's benchmark suite: one command, every server, medians and same-round ratios.

    python benchmarks/run.py                 # full: 3 rounds x 5 s per measurement
    python benchmarks/run.py --quick         # 3 rounds x 2 s
    python benchmarks/run.py --smoke         # 1 round, 1 s, hello on pronghorn + the references
    python benchmarks/run.py --servers pronghorn,uvicorn --workloads hello,pipelined
    python benchmarks/run.py --quick --write-docs   # also rewrite docs/benchmarks.md

Every load targets 127.0.0.1, is bounded in time, and stops by itself; the servers started here
are stopped by their process group id. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import docs, report, suite, versions
from benchmarks.servers import SERVERS
from benchmarks.workloads import BY_NAME, WORKLOADS

SMOKE_SERVERS = ("pronghorn", "rawref", "asgifloor")


def _cores() -> tuple[int | None, int | None]:
    """Server core and client core: the first two usable CPUs, or no pinning at all."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None, None
    return usable[0], usable[1]


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _names(text: str | None, known: dict[str, object], default: tuple[str, ...]) -> tuple[str, ...]:
    if not text:
        return default
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="pronghorn benchmark suite", formatter_class=argparse.RawTextHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="3 rounds of 2 s (about 10 minutes)")
    mode.add_argument(
        "--smoke",
        action="store_true",
        help="1 round of 1 s: hello on pronghorn "
        "and the two references only (the test suite runs this)",
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3; medians are reported)")
    parser.add_argument("--duration", type=int, help="seconds per measurement (default 5)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per server (default 1)")
    parser.add_argument("--servers", help=f"comma-separated, from: {', '.join(SERVERS)}")
    parser.add_argument("--workloads", help=f"comma-separated, from: {', '.join(BY_NAME)}")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/benchmarks.md")
    parser.add_argument("--no-micro", action="store_true", help="skip micro benchmarks in docs")
    parser.add_argument("--list", action="store_true", help="list servers and workloads, exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for spec in SERVERS.values():
            print(f"server    {spec.name:12} {spec.title}")
        for workload in WORKLOADS:
            print(f"workload  {workload.name:12} {workload.measures}")
        return 0
    servers: tuple[str, ...]
    workloads: tuple[str, ...]
    if args.smoke:
        rounds, duration, warmup = 1, 1, 0
        servers, workloads = SMOKE_SERVERS, ("hello",)
    elif args.quick:
        rounds, duration, warmup = 3, 2, 1
        servers, workloads = tuple(SERVERS), tuple(BY_NAME)
    else:
        rounds, duration, warmup = 3, 5, 1
        servers, workloads = tuple(SERVERS), tuple(BY_NAME)
    rounds = args.rounds or rounds
    duration = args.duration or duration
    warmup = warmup if args.warmup is None else args.warmup
    servers = _names(args.servers, dict(SERVERS), servers)
    workloads = _names(args.workloads, dict(BY_NAME), workloads)

    _raise_fd_limit()
    server_core, client_core = _cores()
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})  # this process is a load client too (memory)
    command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    if load_at_start > (os.cpu_count() or 1):
        progress(
            f"warning: load average {load_at_start:.1f} on {os.cpu_count()} cores: other jobs "
            "are running, absolute figures will be noisy (ratios and CPU/request less so)"
        )
    with tempfile.TemporaryDirectory(prefix="pronghorn-bench-") as log_dir:
        options = suite.Options(
            servers=servers,
            workloads=tuple(BY_NAME[name] for name in workloads),
            rounds=rounds,
            duration=duration,
            warmup=warmup,
            server_core=server_core,
            client_core=client_core,
            log_dir=Path(log_dir),
            progress=progress,
        )
        results = suite.run(options)
    elapsed = time.monotonic() - started
    environment = versions.environment(server_core, client_core, load_at_start)

    print()
    print(f"{rounds} round(s) x {duration} s, medians; (Nx) = same-round ratio to uvicorn")
    print(report.main_table(results))
    print()
    print("Server CPU per request or message (us, user+system, median):")
    print(report.cpu_table(results))
    for line in report.client_ceiling(results):
        print(f"note: {line}")
    for line in report.failures(results):
        print(f"failed: {line}")
    print(f"\n{elapsed:.0f} s; {environment['pinning']}")

    if args.json is not None:
        payload = {
            "command": command,
            "rounds": rounds,
            "duration": duration,
            "environment": environment,
            "packages": versions.packages(),
            "results": report.as_json(results),
        }
        args.json.write_text(json.dumps(payload, indent=2))
    if args.write_docs:
        micro = None if args.no_micro else docs.run_micro()
        path = docs.write(results, command, rounds, duration, environment, micro)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

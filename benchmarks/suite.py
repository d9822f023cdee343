"""The round-robin engine: every server measured once per round, rounds repeated, nothing lost.

For throughput workloads the servers of one workload are started together (each pinned to the
server core; idle ones cost nothing) and checked; then each round measures every server once,
in a rotated order, so slow drift of the machine hits all of them alike and ratios taken in the
same round are comparable. Memory and startup start a fresh server for every measurement. A
server that fails to start, answers wrongly or dies keeps a failure message in its cell.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import measure, wrk
from benchmarks.measure import Sample
from benchmarks.servers import DEMO_APP, SERVERS, Launch, RunningServer
from benchmarks.workloads import Workload

#: The module each server needs, to report "not installed" before trying.
_MODULES = {
    "pronghorn": "pronghorn.server",
    "pronghorn-pure": "pronghorn.server",
    "uvicorn": "uvicorn",
    "uvicorn-h11": "h11",
    "hypercorn": "hypercorn",
    "daphne": "daphne",
    "granian": "granian",
    "rawref": "uvloop",
    "asgifloor": "uvloop",
}


@dataclass(slots=True)
class Cell:
    """One server in one workload: a sample per round that succeeded, or why it failed."""

    samples: dict[int, Sample] = field(default_factory=dict)
    failure: str | None = None
    not_applicable: bool = False


Results = dict[str, dict[str, Cell]]


@dataclass(frozen=True, slots=True)
class Options:
    servers: tuple[str, ...]
    workloads: tuple[Workload, ...]
    rounds: int
    duration: int
    warmup: int
    server_core: int | None
    client_core: int | None
    log_dir: Path
    progress: Callable[[str], None]


def installed(server: str) -> bool:
    module = _MODULES[server]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def applicable(workload: Workload, server: str) -> bool:
    if workload.servers is not None and server not in workload.servers:
        return False
    if server == "asgifloor":
        return workload.launch.floor
    return not (server == "rawref" and workload.launch.shape is None)


def _rotated(names: list[str], round_index: int) -> list[str]:
    if not names:
        return names
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def _launch_for(workload: Workload) -> Launch:
    if workload.launch.app == DEMO_APP and not installed("pronghorn"):
        return Launch("benchmarks.apps.hello:app", workload.launch.shape)
    if workload.launch.app == DEMO_APP and importlib.util.find_spec("pronghorn.demo") is None:
        return Launch("benchmarks.apps.hello:app", workload.launch.shape)
    return workload.launch


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text[:300]}"


def run(options: Options) -> Results:
    results: Results = {}
    for workload in options.workloads:
        cells: dict[str, Cell] = {}
        names = []
        for name in options.servers:
            if not applicable(workload, name):
                cells[name] = Cell(not_applicable=True)
            elif not installed(name):
                cells[name] = Cell(failure="not installed")
            elif workload.kind == "wrk" and not wrk.available():
                cells[name] = Cell(failure="wrk is not installed")
            else:
                cells[name] = Cell()
                names.append(name)
        results[workload.name] = cells
        options.progress(f"== {workload.name}: {workload.title} ({', '.join(names)})")
        if workload.kind in ("wrk", "ws", "external"):
            _run_long_lived(workload, names, cells, options)
        else:
            _run_fresh(workload, names, cells, options)
    return results


def _run_long_lived(
    workload: Workload, names: list[str], cells: dict[str, Cell], options: Options
) -> None:
    running: dict[str, RunningServer] = {}
    try:
        for name in names:
            server = None
            try:
                server = RunningServer(
                    SERVERS[name],
                    workload.launch,
                    options.server_core,
                    options.log_dir,
                    tag=f"-{workload.name}",
                )
                server.wait_listening()
                workload.check(server.port)
            except Exception as exc:
                cells[name].failure = _short(exc)
                options.progress(f"   {name}: FAILED {cells[name].failure}")
                if server is not None:
                    server.stop()
                continue
            running[name] = server
        if options.warmup > 0 and workload.kind == "wrk":
            for name, server in running.items():
                try:
                    measure.run_wrk(workload, server, options.warmup, options.client_core)
                except Exception as exc:
                    cells[name].failure = f"warm-up: {_short(exc)}"
        for round_index in range(options.rounds):
            for name in _rotated(list(running), round_index):
                cell = cells[name]
                server = running[name]
                if cell.failure is not None:
                    continue
                if not server.alive():
                    cell.failure = f"server died: {server.log_tail()}"
                    continue
                try:
                    sample = _measure_once(workload, server, options)
                except Exception as exc:
                    cell.failure = _short(exc)
                    options.progress(f"   round {round_index + 1} {name}: FAILED {cell.failure}")
                    continue
                cell.samples[round_index] = sample
                options.progress(
                    f"   round {round_index + 1} {name}: {_describe(sample, workload)}"
                )
    finally:
        for server in running.values():
            server.stop()


def _measure_once(workload: Workload, server: RunningServer, options: Options) -> Sample:
    if workload.kind == "wrk":
        sample = measure.run_wrk(workload, server, options.duration, options.client_core)
    elif workload.kind == "external":
        sample = measure.run_external(workload, server, options.duration, options.client_core)
    else:
        # Large messages need a longer warm-up: the first ones pay for growing buffers (and
        # glibc's mmap threshold adapting), in the servers and in the raw reference alike.
        warmup = max(1.5, float(options.warmup))
        sample = measure.run_ws(workload, server, options.duration, warmup, options.client_core)
    if sample.value <= 0 or math.isnan(sample.value):
        raise RuntimeError(f"no successful request ({'; '.join(sample.notes)})")
    return sample


def _run_fresh(
    workload: Workload, names: list[str], cells: dict[str, Cell], options: Options
) -> None:
    launch = _launch_for(workload)
    for round_index in range(options.rounds):
        for name in _rotated(names, round_index):
            cell = cells[name]
            if cell.failure is not None:
                continue
            server = None
            try:
                server = RunningServer(
                    SERVERS[name],
                    launch,
                    options.server_core,
                    options.log_dir,
                    tag=f"-{workload.name}",
                )
                if workload.kind == "startup":
                    sample = Sample(measure.first_response_ms(server))
                else:
                    server.wait_listening()
                    workload.check(server.port)
                    sample = measure.run_memory(workload, server)
            except Exception as exc:
                cell.failure = _short(exc)
                options.progress(f"   round {round_index + 1} {name}: FAILED {cell.failure}")
                continue
            finally:
                if server is not None:
                    server.stop()
            cell.samples[round_index] = sample
            options.progress(f"   round {round_index + 1} {name}: {_describe(sample, workload)}")


def _describe(sample: Sample, workload: Workload) -> str:
    parts = [f"{sample.value:,.1f} {workload.unit}"]
    if sample.p99_ms is not None:
        parts.append(f"p99 {sample.p99_ms:.2f} ms")
    if sample.server_us is not None:
        parts.append(f"server {sample.server_us:.1f} us/req")
    if sample.client_cpu is not None:
        parts.append(f"client cpu {sample.client_cpu:.0%}")
    if sample.errors:
        parts.append(f"{sample.errors} errors")
    parts += sample.notes
    return ", ".join(parts)

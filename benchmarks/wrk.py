"""Run wrk (HTTP/1.1 load) pinned to the client core and parse what it prints."""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    requests: int
    p50_ms: float | None
    p99_ms: float | None
    #: Non-2xx/3xx responses plus socket errors (connect, read, write, timeout).
    errors: int
    error_text: str
    #: CPU seconds wrk itself used per second of run: near 1.0 means the client was the limit.
    client_cpu: float


def available() -> str | None:
    return shutil.which("wrk")


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> tuple[float, int, float | None, float | None, int, str]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise ValueError(f"wrk printed no result: {output.strip()[-300:]!r}")
    # wrk pads a value in seconds with a trailing space ("1.12s "): allow trailing blanks.
    pattern = r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$"
    percentiles = dict(re.findall(pattern, output, re.MULTILINE))
    p50 = _ms(percentiles["50"]) if "50" in percentiles else None
    p99 = _ms(percentiles["99"]) if "99" in percentiles else None
    errors = 0
    notes = []
    if p99 is None and "Latency Distribution" in output:
        distribution = output.split("Latency Distribution", 1)[1].splitlines()[1:5]
        notes.append("p99 unparsed: " + " / ".join(line.strip() for line in distribution))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
        notes.append(f"{non2xx.group(1)} non-2xx")
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        counts = [int(n) for n in socket_errors.groups()]
        errors += sum(counts)
        names = ("connect", "read", "write", "timeout")
        notes += [f"{n} {name}" for n, name in zip(counts, names, strict=True) if n]
    return float(rate.group(1)), int(total.group(1)), p50, p99, errors, ", ".join(notes)


def run(
    url: str,
    *,
    connections: int,
    duration: int,
    core: int | None,
    script: str | None = None,
    script_args: tuple[str, ...] = (),
    timeout_s: int = 10,
) -> WrkResult:
    """One bounded wrk run (``duration`` whole seconds); raises RuntimeError if wrk fails."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout_s}s"]
    command += ["--latency"]
    if script is not None:
        command += ["-s", str(LUA / script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + timeout_s + 30, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk exited {completed.returncode}: {completed.stderr.strip()[-300:]}")
    rate, total, p50, p99, errors, notes = parse(completed.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkResult(rate, total, p50, p99, errors, notes, round(cpu / duration, 3))

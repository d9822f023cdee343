"""Writes docs/benchmarks.md from one run: the command, the environment, the tables."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from benchmarks import report, versions
from benchmarks.servers import ROOT
from benchmarks.suite import Results
from benchmarks.workloads import WORKLOADS

DOCS = ROOT / "docs" / "benchmarks.md"


def run_micro() -> str | None:
    """The micro benchmarks' own output (they take a few seconds)."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.micro"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()


def write(
    results: Results,
    command: str,
    rounds: int,
    duration: int,
    environment: dict[str, str],
    micro: str | None,
) -> Path:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# Benchmarks",
        "",
        "Written by `python benchmarks/run.py --write-docs`; do not edit by hand (rerun it).",
        "How to run the suite and what each workload means: "
        "[benchmarks/README.md](../benchmarks/README.md).",
        "",
        "**Read the ratios, not the absolute numbers.** Every server ran one worker pinned to one",
        "core, loaded from the other core; the servers were measured round by round, and each",
        "ratio is the median over rounds of (server / uvicorn with httptools + uvloop) measured in",
        "the same round. Absolute figures move between runs and machines; a shared 2-core",
        "machine running other jobs makes them noisier still.",
        "",
        f"Measured {stamp}: {rounds} round(s) of {duration} s per measurement.",
        "",
        "```",
        command,
        "```",
        "",
        "## Results (median; in brackets the same-round ratio to uvicorn)",
        "",
        "For req/s and msg/s higher is better; for KiB/conn and ms lower is better. `-`: not",
        "applicable (the raw reference runs no app; the ASGI floor serves only bodiless GETs",
        "framed by length); `!`: some requests failed during the run (see below). The ASGI",
        "floor runs the app with a Task per request but parses nothing and adds no header: no",
        "server that runs each request as a Task can do less, so its ratio bounds ours.",
        "",
        report.main_table(results, markdown=True),
        "",
        "## Server CPU per request or message (µs, user + system, median)",
        "",
        "What the server process spent per request, whatever the client managed: the figure the",
        "fast path is tuned on.",
        "",
        report.cpu_table(results, markdown=True),
        "",
    ]
    problems = report.failures(results) + report.client_ceiling(results)
    if problems:
        lines += ["## Failures and caveats", ""]
        lines += [f"- {line}" for line in problems]
        lines.append("")
    if micro:
        lines += ["## Micro benchmarks (`python -m benchmarks.micro`)", "", "```", micro, "```", ""]
    lines += ["## Workloads", ""]
    lines += [f"- **{w.title}** (`{w.name}`): {w.measures}" for w in WORKLOADS]
    lines += ["", "## Environment", ""]
    lines += [f"- {key}: {value}" for key, value in environment.items()]
    lines += ["", "## Versions", ""]
    lines += [f"- {name} {version}" for name, version in versions.packages().items()]
    lines.append("")
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text("\n".join(lines))
    return DOCS

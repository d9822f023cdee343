"""Medians, same-round ratios, and the tables printed to the terminal and written to the docs."""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from benchmarks.servers import BASELINE, SERVERS
from benchmarks.suite import Cell, Results
from benchmarks.workloads import BY_NAME, Workload


def median_value(cell: Cell) -> float | None:
    values = [sample.value for sample in cell.samples.values()]
    return statistics.median(values) if values else None


def median_of(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def ratio(cell: Cell, baseline: Cell | None) -> float | None:
    """Median over rounds of (this server / the baseline, measured in the same round)."""
    if baseline is None:
        return None
    ratios = [
        sample.value / baseline.samples[index].value
        for index, sample in cell.samples.items()
        if index in baseline.samples and baseline.samples[index].value > 0
    ]
    return statistics.median(ratios) if ratios else None


def _number(value: float, unit: str) -> str:
    if unit in ("ms", "KiB/conn") or value < 100:
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def cell_text(cell: Cell, baseline: Cell | None, workload: Workload) -> str:
    if cell.not_applicable:
        return "-"
    if cell.failure is not None and not cell.samples:
        return f"FAILED ({cell.failure[:80]})"
    value = median_value(cell)
    if value is None:
        return "no result"
    text = _number(value, workload.unit)
    factor = ratio(cell, baseline)
    if factor is not None:
        text += f" ({factor:.2f}x)"
    if workload.show_p99:
        p99 = median_of(sample.p99_ms for sample in cell.samples.values())
        if p99 is not None:
            text += f", p99 {p99:.1f} ms"
    if any(sample.errors for sample in cell.samples.values()):
        text += " !"
    if cell.failure is not None:
        text += " (then failed)"
    return text


def _grid(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += [
        "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(lines)


def _label(server: str, markdown: bool) -> str:
    return SERVERS[server].title if markdown else server


def _servers(results: Results) -> list[str]:
    names: list[str] = []
    for cells in results.values():
        names += [name for name in cells if name not in names]
    return names


def main_table(results: Results, markdown: bool = False) -> str:
    """Median per workload and server; in brackets the same-round ratio to the baseline."""
    servers = _servers(results)
    header = ["workload", "unit", *(_label(name, markdown) for name in servers)]
    rows = []
    for name, cells in results.items():
        workload = BY_NAME[name]
        baseline = cells.get(BASELINE)
        usable = baseline if baseline is not None and baseline.samples else None
        row = [workload.title, workload.unit]
        row += [cell_text(cells[server], usable, workload) for server in servers]
        rows.append(row)
    return _grid(header, rows, markdown)


def cpu_table(results: Results, markdown: bool = False) -> str:
    """Server CPU time per request (or message): independent of how fast the client was."""
    servers = _servers(results)
    header = ["workload", *(_label(name, markdown) for name in servers)]
    rows = []
    for name, cells in results.items():
        row = [BY_NAME[name].title]
        any_value = False
        for server in servers:
            us = median_of(sample.server_us for sample in cells[server].samples.values())
            row.append("-" if us is None else f"{us:.1f}")
            any_value = any_value or us is not None
        if any_value:
            rows.append(row)
    return _grid(header, rows, markdown)


def client_ceiling(results: Results) -> list[str]:
    """Runs where the load client itself was nearly saturated, so the server was not the limit."""
    lines = []
    for name, cells in results.items():
        for server, cell in cells.items():
            busy = max((s.client_cpu or 0.0 for s in cell.samples.values()), default=0.0)
            if busy >= 0.9:
                lines.append(f"{BY_NAME[name].title} / {server}: load client at {busy:.0%} CPU")
    return lines


def failures(results: Results) -> list[str]:
    lines = []
    for name, cells in results.items():
        for server, cell in cells.items():
            if cell.failure is not None:
                lines.append(f"{BY_NAME[name].title} / {server}: {cell.failure}")
            notes = sorted({note for s in cell.samples.values() if s.errors for note in s.notes})
            if notes:
                lines.append(f"{BY_NAME[name].title} / {server}: errors: {'; '.join(notes)}")
    return lines


def as_json(results: Results) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, cells in results.items():
        baseline = cells.get(BASELINE)
        out[name] = {
            server: {
                "median": median_value(cell),
                "ratio": ratio(cell, baseline),
                "failure": cell.failure,
                "not_applicable": cell.not_applicable,
                "samples": {
                    str(index): {
                        "value": s.value,
                        "p99_ms": s.p99_ms,
                        "server_us": s.server_us,
                        "client_cpu": s.client_cpu,
                        "errors": s.errors,
                        "notes": s.notes,
                    }
                    for index, s in cell.samples.items()
                },
            }
            for server, cell in cells.items()
        }
    return out

"""The micro benchmarks still run and still measure what they say: each layer checks the
bytes it produced (the hello answer, the WebSocket echoes), so a layer that stopped
answering fails here instead of printing a figure for nothing. No timing is asserted."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import micro


@pytest.mark.parametrize("name", [name for name, _layer in micro.LAYERS])
def test_layer_runs_and_checks_its_output(name: str) -> None:
    layer = dict(micro.LAYERS)[name]
    layer(128)


def test_ws_echo_layer_fails_when_nothing_is_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The layer's own check must bite: a frame the server cannot echo (its opcode is
    # reserved, so the connection is failed instead) leaves the echo count at zero.
    monkeypatch.setattr(micro, "WS_FRAME", b"\x83\x80" + bytes(4))
    with pytest.raises(RuntimeError, match="not echoed"):
        micro.websocket_echo(16)


def test_main_reports_every_layer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # One small batch per layer instead of the timed ones (those take minutes).
    def one_batch(batch: Callable[[int], None], iterations: int, repeats: int) -> list[float]:
        batch(64)
        return [1.0, 2.0]

    monkeypatch.setattr(micro, "_timed", one_batch)
    assert micro.main([]) == 0
    printed = capsys.readouterr().out
    for name, _layer in micro.LAYERS:
        assert name in printed
    assert "skipped" not in printed

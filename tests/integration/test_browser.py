"""The demo page in a real headless Chromium: it loads, connects its WebSocket, and echoes what a
person types. Driven over the DevTools protocol (a websocket to the browser) with `websockets`.

Chromium comes from Debian's package; when it is missing, scripts/install-chromium.sh (which CI
calls too) installs it.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from pronghorn.config import Config
from pronghorn.importer import load_app
from tests.conftest import RunningServer

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install-chromium.sh"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1000,800",
    # The HTTPS test serves a trustme certificate this fresh profile does not know.
    "--ignore-certificate-errors",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=1200
        )
        path = find_chromium()
        if path is None:
            pytest.fail(f"chromium is missing and {INSTALL_SCRIPT.name} failed: {result.stderr}")
    return path


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[str]:
    """A headless Chromium on a fresh profile; yields its DevTools websocket URL."""
    profile = tmp_path / "profile"
    profile.mkdir()
    proc = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        active_port = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if active_port.exists():
                lines = active_port.read_text().splitlines()
                if len(lines) >= 2:
                    yield f"ws://127.0.0.1:{lines[0]}{lines[1]}"
                    break
            if proc.poll() is not None:
                pytest.fail(f"chromium exited with {proc.returncode}")
            time.sleep(0.1)
        else:
            pytest.fail("chromium did not open its DevTools port in 30 s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class DevTools:
    """Just enough of the DevTools protocol: commands on one page session, with timeouts."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.session: str | None = None

    async def call(self, method: str, timeout: float = 10.0, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        await self.ws.send(json.dumps(message))
        async with asyncio.timeout(timeout):
            while True:
                reply = json.loads(await self.ws.recv())
                if reply.get("id") == call_id:
                    if "error" in reply:
                        raise AssertionError(f"{method}: {reply['error']}")
                    result: dict[str, Any] = reply.get("result", {})
                    return result

    async def open_page(self, url: str) -> None:
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        self.session = attached["sessionId"]
        await self.call("Page.enable")
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    async def type_text(self, text: str) -> None:
        await self.call("Input.insertText", text=text)

    async def press_enter(self) -> None:
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
        await self.call("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        await self.call("Input.dispatchKeyEvent", type="keyUp", **key)


@pytest.mark.timeout(1500)  # the first run may install chromium
def test_demo_page_echoes_typed_text(
    serve: Callable[..., RunningServer], browser: str, tmp_path: Path
) -> None:
    server = serve(load_app(Config()), lifespan="on")

    async def drive() -> dict[str, Any]:
        async with websockets.connect(browser, max_size=None, open_timeout=10) as ws:
            tools = DevTools(ws)
            await tools.open_page(server.url + "/")
            await tools.wait_for("document.getElementById('status')?.textContent === 'connected'")
            await tools.evaluate("document.getElementById('message').focus()")
            await tools.type_text("hello from chromium")
            await tools.press_enter()
            echoed = await tools.wait_for(
                "[...document.querySelectorAll('#log li.echo')].map(li => li.textContent).join('|')"
            )
            # A second message through the button, as a mouse user would send it.
            await tools.evaluate("document.getElementById('message').focus()")
            await tools.type_text("second")
            await tools.evaluate("document.getElementById('send').click()")
            await tools.wait_for("document.querySelectorAll('#log li.echo').length === 2")
            shot = await tools.call("Page.captureScreenshot", format="png")
            (tmp_path / "demo.png").write_bytes(base64.b64decode(shot["data"]))
            return {
                "echoed": echoed,
                "input": await tools.evaluate("document.getElementById('message').value"),
                "server": await tools.evaluate("document.getElementById('server').textContent"),
                "loop": await tools.evaluate("document.getElementById('loop').textContent"),
            }

    page = asyncio.run(drive())
    assert page["echoed"] == "hello from chromium"
    assert page["input"] == ""  # the box is cleared after sending
    assert page["server"].startswith("pronghorn ")
    assert "Loop" in page["loop"]
    assert (tmp_path / "demo.png").stat().st_size > 1000


@pytest.mark.timeout(1500)  # the first run may install chromium
def test_demo_page_over_https_and_http2(
    serve: Callable[..., RunningServer], browser: str, tmp_path: Path
) -> None:
    """Browsers speak HTTP/2 only over TLS: the page arrives by h2 (ALPN), and the echo box
    works over the same HTTP/2 connection (RFC 8441)."""
    from tests.integration.h2_servers import tls_files

    files = tls_files(tmp_path)
    demo = load_app(Config())
    websocket_versions: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            websocket_versions.append(scope["http_version"])
        await demo(scope, receive, send)

    server = serve(
        app, lifespan="on", ssl_certfile=str(files.certfile), ssl_keyfile=str(files.keyfile)
    )

    async def drive() -> dict[str, Any]:
        async with websockets.connect(browser, max_size=None, open_timeout=10) as ws:
            tools = DevTools(ws)
            await tools.open_page(server.url + "/")
            await tools.wait_for("document.getElementById('status')?.textContent === 'connected'")
            protocol = await tools.evaluate(
                "performance.getEntriesByType('navigation')[0].nextHopProtocol"
            )
            await tools.evaluate("document.getElementById('message').focus()")
            await tools.type_text("over h2")
            await tools.press_enter()
            echoed = await tools.wait_for(
                "[...document.querySelectorAll('#log li.echo')].map(li => li.textContent).join('|')"
            )
            return {"protocol": protocol, "echoed": echoed}

    page = asyncio.run(drive())
    assert server.url.startswith("https://")
    assert page["protocol"] == "h2"
    assert page["echoed"] == "over h2"
    # Chromium offers RFC 8441 when the server's SETTINGS enable extended CONNECT: the echo
    # box's WebSocket is a stream of the page's own HTTP/2 connection.
    assert websocket_versions == ["2"]

"""The built-in app, served when no APP is given: a plain ASGI 3 callable, no framework.

- ``GET /``: a small page saying what serves it, with a WebSocket echo box.
- ``GET|POST /echo``: the request as JSON (method, path, query, headers, body).
- ``/ws``: WebSocket echo of text and bytes.
- lifespan: accepted (nothing to set up).
- anything else: 404 as JSON.
"""

from __future__ import annotations

import asyncio
import html
import json
from typing import Any

from pronghorn import __version__
from pronghorn.importer import Receive, Scope, Send

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pronghorn</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
          padding: 0 1rem; color: #222; background: #fafaf7; }}
  h1 {{ font-size: 1.8rem; margin-bottom: .2rem; }}
  p.lead {{ color: #666; margin-top: 0; }}
  dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }}
  dt {{ color: #666; }} dd {{ margin: 0; font-family: ui-monospace, monospace; }}
  form {{ display: flex; gap: .5rem; }}
  input {{ flex: 1; padding: .4rem; font: inherit; }}
  button {{ padding: .4rem 1rem; font: inherit; }}
  #log {{ list-style: none; padding: 0; font-family: ui-monospace, monospace; }}
  #status {{ color: #666; font-size: .9rem; }}
</style>
</head>
<body>
<h1>Pronghorn</h1>
<p class="lead">It works: this page is served by the built-in demo app.</p>
<dl>
  <dt>Server</dt><dd id="server">pronghorn {version}</dd>
  <dt>HTTP version</dt><dd id="http-version">HTTP/{http_version}</dd>
  <dt>Event loop</dt><dd id="loop">{loop}</dd>
  <dt>Your address</dt><dd id="client">{client}</dd>
</dl>
<h2>WebSocket echo</h2>
<p id="status">connecting&hellip;</p>
<form id="echo-form">
  <input id="message" autocomplete="off" placeholder="Type a message">
  <button id="send" type="submit">Send</button>
</form>
<ul id="log"></ul>
<script>
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(scheme + "//" + location.host + "/ws");
  const status = document.getElementById("status");
  const log = document.getElementById("log");
  socket.onopen = () => {{ status.textContent = "connected"; }};
  socket.onclose = () => {{ status.textContent = "closed"; }};
  socket.onmessage = (event) => {{
    const item = document.createElement("li");
    item.className = "echo";
    item.textContent = event.data;
    log.appendChild(item);
  }};
  document.getElementById("echo-form").addEventListener("submit", (event) => {{
    event.preventDefault();
    const input = document.getElementById("message");
    if (input.value && socket.readyState === WebSocket.OPEN) {{
      socket.send(input.value);
      input.value = "";
    }}
  }});
</script>
</body>
</html>
"""


def _client_text(scope: Scope) -> str:
    client = scope.get("client")
    if not client:
        return "unknown"
    host, port = client[0], client[1]
    return f"{host}:{port}" if port is not None else str(host)


def render_page(scope: Scope) -> bytes:
    try:
        loop_class = type(asyncio.get_running_loop())
        loop = f"{loop_class.__module__}.{loop_class.__qualname__}"  # e.g. uvloop.Loop
    except RuntimeError:
        loop = "none"
    return _PAGE.format(
        version=html.escape(__version__),
        http_version=html.escape(str(scope.get("http_version", "1.1"))),
        loop=html.escape(loop),
        client=html.escape(_client_text(scope)),
    ).encode("utf-8")


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = await _read_body(receive)
    payload: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body": body.decode("utf-8", "replace"),
    }
    data = json.dumps(payload).encode("utf-8")
    await _respond(send, 200, data, b"application/json")


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    path, method = scope["path"], scope["method"]
    if path == "/" and method in ("GET", "HEAD"):
        await _respond(send, 200, render_page(scope), b"text/html; charset=utf-8")
    elif path == "/echo" and method in ("GET", "POST"):
        await _echo(scope, receive, send)
    elif path in ("/", "/echo"):
        await _respond(send, 405, b'{"error": "method not allowed"}', b"application/json")
    else:
        await _respond(send, 404, b'{"error": "not found"}', b"application/json")


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        elif message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The demo application (ASGI 3)."""
    kind = scope["type"]
    if kind == "http":
        await _http(scope, receive, send)
    elif kind == "websocket":
        await _websocket(scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)

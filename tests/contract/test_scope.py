"""Contract: the scope an app sees is the same on every transport (ASGI spec 2.5, HTTP scope)."""

from __future__ import annotations

import json
from typing import Any

from tests.contract.conftest import Transport
from tests.integration.h2_servers import H2Client

Scope = dict[str, Any]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


async def scope_app(scope: Scope, receive: Any, send: Any) -> None:
    """Answers with its scope as JSON (bytes as latin-1 strings, tuples as lists)."""
    if scope["type"] != "http":
        return
    report = _jsonable(scope)
    report["raw_path_type"] = type(scope["raw_path"]).__name__
    report["query_string_type"] = type(scope["query_string"]).__name__
    report["client_type"] = type(scope["client"]).__name__
    body = json.dumps(report).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _scope(transport: Transport, path: str, **request: Any) -> Scope:
    with transport.serve(scope_app) as server, transport.client(server) as client:
        response = client.request(request.pop("method", "GET"), path, **request)
        assert response.status_code == 200
        assert response.http_version == transport.httpx_version
        scope: Scope = response.json()
        scope["_port"] = server.port
        return scope


def test_fixed_fields(transport: Transport) -> None:
    scope = _scope(transport, "/")
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"] in ("2.3", "2.4", "2.5")
    assert scope["http_version"] == transport.http_version
    assert scope["scheme"] == transport.scheme
    assert scope["method"] == "GET"
    assert scope["root_path"] == ""
    assert scope.get("state", {}) == {}  # lifespan off: nothing was stored


def test_path_is_percent_decoded_and_raw_path_is_not(transport: Transport) -> None:
    scope = _scope(transport, "/caf%C3%A9/a%2Fb/%20x?q=%20&flag&q=2")
    assert scope["path"] == "/café/a/b/ x"
    assert scope["raw_path"] == "/caf%C3%A9/a%2Fb/%20x"
    assert scope["raw_path_type"] == "bytes"
    assert scope["query_string"] == "q=%20&flag&q=2"
    assert scope["query_string_type"] == "bytes"


def test_empty_query_string(transport: Transport) -> None:
    scope = _scope(transport, "/plain")
    assert scope["path"] == "/plain"
    assert scope["query_string"] == ""


def test_methods(transport: Transport) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        scope = _scope(transport, "/m", method=method, content=b"x")
        assert scope["method"] == method


def test_headers_lower_cased_in_order_with_duplicates(transport: Transport) -> None:
    headers = [("X-Dup", "one"), ("X-Mixed-Case", "Value Kept"), ("x-dup", "two")]
    scope = _scope(transport, "/", headers=headers)
    fields = [tuple(pair) for pair in scope["headers"]]
    assert all(name == name.lower() for name, _ in fields)
    assert ("x-mixed-case", "Value Kept") in fields
    dups = [value for name, value in fields if name == "x-dup"]
    assert dups == ["one", "two"]
    # HTTP/2 has no Host header on the wire; apps still find one (from :authority).
    hosts = [value for name, value in fields if name == "host"]
    assert len(hosts) == 1
    assert hosts[0].endswith(str(scope["_port"]))
    assert not any(name.startswith(":") for name, _ in fields)


def test_client_and_server_addresses(transport: Transport) -> None:
    scope = _scope(transport, "/")
    host, port = scope["client"]
    assert host == "127.0.0.1"
    assert isinstance(port, int)
    assert port > 0
    assert scope["client_type"] == "tuple"
    assert scope["server"] == ["127.0.0.1", scope["_port"]]


def test_root_path_setting(transport: Transport) -> None:
    with transport.serve(scope_app, root_path="/mount") as server, transport.client(server) as c:
        scope = c.get("/mount/inner").json()
    assert scope["root_path"] == "/mount"
    assert scope["path"] == "/mount/inner"  # ASGI: path includes root_path
    assert scope["raw_path"] == "/mount/inner"


def test_extensions_advertised(transport: Transport) -> None:
    extensions = _scope(transport, "/")["extensions"]
    for name in ("http.response.trailers", "http.response.early_hint", "http.response.pathsend"):
        assert extensions[name] == {}
    # Server push exists only on HTTP/2.
    assert ("http.response.push" in extensions) is transport.http2


def test_scope_is_a_fresh_dict_per_request(transport: Transport) -> None:
    """What one request's app does to its scope is invisible to the next one."""
    seen: list[tuple[set[str], int]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append((set(scope["extensions"]), scope["headers"].count((b"x-added", b"1"))))
        scope["extensions"]["mutated"] = {}
        scope["headers"].append((b"x-added", b"1"))
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    with transport.serve(app) as server, transport.client(server) as client:
        for _ in range(2):
            assert client.get("/").text == "ok"
    assert seen[0] == seen[1]
    assert "mutated" not in seen[1][0]
    assert seen[1][1] == 0


def test_cookie_crumbs_arrive_as_one_header(transport: Transport) -> None:
    """Browsers split cookies into one field per cookie on HTTP/2 (RFC 9113 §8.2.3); apps that
    read one ``cookie`` header (as every framework does) must see them joined."""
    if not transport.http2:
        return  # an HTTP/1.1 client sends one Cookie line (RFC 6265 §5.4)
    with transport.serve(scope_app) as server, H2Client(server.port, transport.tls) as client:
        crumbs = [(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"cookie", b"c=3")]
        stream_id = client.request("/", headers=crumbs)
        client.read_until(client.ended(stream_id))
        scope = json.loads(client.body(stream_id))
    cookies = [value for name, value in scope["headers"] if name == "cookie"]
    assert cookies == ["a=1; b=2; c=3"]

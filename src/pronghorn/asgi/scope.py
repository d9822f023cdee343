"""THE ONLY place ASGI scopes are built (ASGI spec 2.5), for every protocol.

A request event from any core plus the connection's facts becomes a scope here, so HTTP/1.1 and
HTTP/2 can never disagree on ``spec_version``, ``root_path`` or path decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

from pronghorn.protocols.events import RequestReceived

ASGI_SPEC_VERSION: Final = "2.5"
#: Copied into every scope: an app may change its own.
_ASGI: Final = {"version": "3.0", "spec_version": ASGI_SPEC_VERSION}
#: As ints: see protocols/events.py on ``bytes in bytes``.
_PERCENT: Final = b"%"[0]
_HASH: Final = b"#"[0]
_QUERY: Final = b"?"[0]
_SLASH: Final = b"/"[0]

Address = tuple[str, int]
_METHODS: Final = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
}
Scope = dict[str, Any]


@dataclass(slots=True)
class ConnectionInfo:
    """What a connection knows about itself, after proxy headers/PROXY protocol were applied."""

    client: Address | None
    server: Address | None
    scheme: str = "http"  # "http" or "https"; "ws"/"wss" derived for WebSocket scopes
    root_path: str = ""
    #: The extensions advertised on every HTTP scope of this connection.
    http_extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: TLS facts for the ``tls`` extension, when TLS is in use.
    tls: dict[str, Any] | None = None
    #: The shared base its HTTP scopes are copied from (see http_scope), found at the first
    #: request. A ConnectionInfo is never changed once made: a proxy-rewritten client or
    #: scheme is a new one.
    http_base: Scope | None = field(default=None, init=False, repr=False, compare=False)


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(raw_path, query_string) from a request-target in origin-, absolute- or asterisk-form."""
    if target[:1] != b"/" and target != b"*":
        # absolute-form (RFC 9112 3.2.2): keep only the path and query
        scheme_end = target.find(b"://")
        if scheme_end != -1:
            path_start = target.find(b"/", scheme_end + 3)
            query_start = target.find(b"?", scheme_end + 3)
            if path_start == -1 or (query_start != -1 and query_start < path_start):
                target = b"/" + (target[query_start:] if query_start != -1 else b"")
            else:
                target = target[path_start:]
    fragment = target.find(b"#")
    if fragment != -1:  # (clients should not send one; what follows it is no query either)
        target = target[:fragment]
    raw_path, _, query = target.partition(b"?")
    return raw_path, query


def decode_path(raw_path: bytes) -> str:
    """The ASGI ``path``: percent-escapes and UTF-8 decoded; bytes that are not UTF-8 become
    U+FFFD, as under uvicorn, hypercorn and daphne. (Surrogate escapes kept them exactly,
    but any app encoding the path - Starlette writing it into a response, a redirect -
    failed with a 500 on a request like /caf%E9; raw_path keeps the exact bytes.)"""
    if _PERCENT not in raw_path:
        try:
            return raw_path.decode("ascii")
        except UnicodeDecodeError:  # llhttp lets raw UTF-8 through; decode it the same way
            return raw_path.decode("utf-8", "replace")
    return unquote(raw_path.decode("latin-1"), encoding="utf-8", errors="replace")


def _with_root(conn: ConnectionInfo, raw_path: bytes, path: str) -> tuple[bytes, str]:
    root = conn.root_path
    if root and not path.startswith(root):
        # As uvicorn does, the path includes root_path; frameworks strip it when routing.
        return root.encode() + raw_path, root + path
    return raw_path, path


def _path_parts(target: bytes, conn: ConnectionInfo) -> tuple[str, bytes, bytes]:
    """(path, raw_path, query_string) of a request-target, root_path applied."""
    if target and target[0] == _SLASH and _HASH not in target:  # origin-form: nearly every one
        if _QUERY in target:
            raw_path, _, query = target.partition(b"?")
        else:  # (a membership test is a memchr; partition a method call from compiled code)
            raw_path, query = target, b""
    else:
        raw_path, query = split_target(target)
    path = decode_path(raw_path)
    if conn.root_path:
        raw_path, path = _with_root(conn, raw_path, path)
    return path, raw_path, query


def http_scope(
    request: RequestReceived,
    conn: ConnectionInfo,
    state: dict[str, Any] | None,
) -> Scope:
    # A copy of a base with the request's keys set costs about half of building the 13-key
    # dict anew (1.5k instructions of a hello request's 42k).
    base = conn.http_base
    if base is None:
        base = conn.http_base = _http_base(conn)
    scope = base.copy()
    path, raw_path, query = _path_parts(request.target, conn)
    method = request.method
    scope["asgi"] = _ASGI.copy()
    scope["client"] = conn.client
    scope["http_version"] = request.http_version
    # GET's name without hashing the parser's new bytes object each time.
    scope["method"] = "GET" if method == b"GET" else _METHODS.get(method) or method.decode("ascii")
    scope["path"] = path
    scope["raw_path"] = raw_path
    scope["query_string"] = query
    scope["headers"] = (
        request.headers if request.authority is None else _headers_with_authority(request)
    )
    extensions = dict(conn.http_extensions)
    scope["extensions"] = extensions
    if state is not None:
        scope["state"] = state.copy()
    if conn.tls is not None:
        extensions["tls"] = conn.tls
    return scope


#: Bases shared by every connection with the same server address, scheme and root path: one
#: per connection would hold a 13-key dict on every idle keep-alive connection.
_HTTP_BASES: Final[dict[tuple[Address | None, str, str], Scope]] = {}
_HTTP_BASES_MAX: Final = 64


def _http_base(conn: ConnectionInfo) -> Scope:
    """Every key of an HTTP scope in its order, valued where the server and scheme decide."""
    key = (conn.server, conn.scheme, conn.root_path)
    base = _HTTP_BASES.get(key)
    if base is None:
        if len(_HTTP_BASES) >= _HTTP_BASES_MAX:
            _HTTP_BASES.clear()  # (many listeners or root paths: start over)
        base = _HTTP_BASES[key] = _new_http_base(conn)
    return base


def _new_http_base(conn: ConnectionInfo) -> Scope:
    return {
        "type": "http",
        "asgi": None,
        "http_version": None,
        "server": conn.server,
        "client": None,
        # The connection's scheme (TLS or not, or what a trusted proxy said), never the
        # client's own claim in an HTTP/2 :scheme.
        "scheme": conn.scheme,
        "method": None,
        "root_path": conn.root_path,
        "path": None,
        "raw_path": None,
        "query_string": None,
        "headers": None,
        "extensions": None,
    }


def websocket_scope(
    request: RequestReceived,
    conn: ConnectionInfo,
    state: dict[str, Any] | None,
    subprotocols: list[str],
    extensions: dict[str, dict[str, Any]] | None = None,
) -> Scope:
    path, raw_path, query = _path_parts(request.target, conn)
    scheme = conn.scheme
    scope: Scope = {
        "type": "websocket",
        "asgi": _ASGI.copy(),
        "http_version": request.http_version,
        "server": conn.server,
        "client": conn.client,
        "scheme": "wss" if scheme == "https" else "ws",
        "root_path": conn.root_path,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": _headers_with_authority(request),
        "subprotocols": subprotocols,
        "extensions": {"websocket.http.response": {}, **(extensions or {})},
    }
    if state is not None:
        scope["state"] = state.copy()
    if conn.tls is not None:
        scope["extensions"]["tls"] = conn.tls
    return scope


def _headers_with_authority(request: RequestReceived) -> list[tuple[bytes, bytes]]:
    """HTTP/2 carries the host in :authority; apps look for a ``host`` header."""
    headers = request.headers
    if request.authority is not None:
        for name, _ in headers:
            if name == b"host":
                return headers
        return [(b"host", request.authority), *headers]
    return headers


def lifespan_scope(state: dict[str, Any]) -> Scope:
    return {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}

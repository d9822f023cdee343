"""Every setting, declared once.

``Config`` is a frozen dataclass; each field's metadata (help text, flag, environment variable,
choices) is what ``cli.py`` turns into the argument parser, what :func:`load` reads from the
environment and from ``pronghorn.toml`` / ``[tool.pronghorn]``, and what the settings reference is
generated from. Precedence: CLI > environment > config file > default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from pronghorn.errors import ConfigError

ENV_PREFIX = "PRONGHORN_"


def setting(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    short: str | None = None,
    env: tuple[str, ...] = (),
    negatable: bool = True,
    group: str = "server",
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """Declare a setting. ``env`` lists extra variables read besides ``PRONGHORN_<NAME>``."""
    meta = {
        "help": help,
        "flag": flag,
        "short": short,
        "env": env,
        "negatable": negatable,
        "group": group,
        "metavar": metavar,
        "cli": cli,
    }
    if isinstance(default, list):
        items = list(default)
        return field(default_factory=lambda: list(items), metadata=meta)
    return field(default=default, metadata=meta)


LifespanMode = Literal["auto", "on", "off"]
LoopChoice = Literal["auto", "asyncio", "uvloop"]
Interface = Literal["auto", "asgi3", "asgi2", "wsgi"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
AccessLogFormat = Literal["text", "json"]
HTTPImplementation = Literal["auto", "httptools", "h11"]
WebSocketImplementation = Literal["auto", "none", "websockets", "websockets-sansio", "wsproto"]
#: ssl.PROTOCOL_TLS_SERVER, uvicorn's default --ssl-version.
SSL_PROTOCOL_NEGOTIATED = 17
#: --ssl-version numbers (ssl._SSLMethod) that serve: negotiate (PROTOCOL_TLS and
#: PROTOCOL_TLS_SERVER), or TLS 1.2 only (PROTOCOL_TLSv1_2).
SSL_PROTOCOLS_NEGOTIATED = frozenset((2, 17))
SSL_PROTOCOL_TLS12 = 5


@dataclass(frozen=True, slots=True)
class Config:
    # ----------------------------------------------------------------- application
    app: str | None = setting(
        None,
        "The app as 'module:attribute'; the built-in demo when omitted.",
        group="app",
        cli=False,
    )
    factory: bool = setting(
        False, "Treat APP as a factory that returns the application.", group="app"
    )
    app_dir: str = setting(
        "", "Directory prepended to sys.path before importing APP.", group="app", metavar="DIR"
    )
    interface: Interface = setting(
        "auto", "Application interface; 'auto' detects ASGI 3, ASGI 2 or WSGI.", group="app"
    )
    lifespan: LifespanMode = setting(
        "auto", "Lifespan protocol: 'auto' runs it when the app supports it.", group="app"
    )
    timeout_lifespan_startup: float = setting(
        60.0, "Seconds the app may take to complete lifespan startup.", group="app"
    )
    timeout_lifespan_shutdown: float = setting(
        30.0, "Seconds the app may take to complete lifespan shutdown.", group="app"
    )
    root_path: str = setting(
        "", "The ASGI root_path, for apps mounted below a path prefix.", group="app"
    )
    env_file: str | None = setting(
        None, "A .env file whose variables are set before the app is imported.", group="app"
    )
    wsgi_threads: int = setting(
        16, "Threads running a WSGI app's requests (per worker).", group="app"
    )
    reset_contextvars: bool = setting(
        False,
        "Run each request in an empty contextvars.Context, hiding context variables set "
        "before serving (each request always starts from that context, never another's).",
        group="app",
    )

    # ----------------------------------------------------------------- sockets
    host: str = setting("127.0.0.1", "Bind to this address.", group="sockets")
    port: int = setting(
        8000, "Bind to this port; 0 picks a free one.", env=("PORT",), group="sockets"
    )
    uds: str | None = setting(
        None, "Bind to this UNIX domain socket.", group="sockets", metavar="PATH"
    )
    uds_permissions: str | None = setting(
        None, "Octal permissions for the --uds socket file, e.g. 660.", group="sockets"
    )
    fd: int | None = setting(
        None, "Serve on this already-bound socket file descriptor.", group="sockets"
    )
    bind: list[str] = setting(
        [],
        "Listen on HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N; repeatable.",
        short="-b",
        group="sockets",
    )
    backlog: int = setting(2048, "Maximum number of pending connections.", group="sockets")
    reuse_port: bool = setting(
        False, "Give each worker its own SO_REUSEPORT socket.", group="sockets"
    )

    # ----------------------------------------------------------------- processes
    workers: int = setting(
        1, "Number of worker processes.", env=("WEB_CONCURRENCY",), group="processes"
    )
    loop: LoopChoice = setting(
        "auto", "Event loop: uvloop when installed on 'auto'.", group="processes"
    )
    reload: bool = setting(
        False, "Restart when watched files change (development).", group="processes"
    )
    reload_dirs: list[str] = setting(
        [],
        "Directory to watch; repeatable (default: the current one).",
        flag="--reload-dir",
        group="processes",
    )
    reload_includes: list[str] = setting(
        [],
        "Glob of files whose change reloads; repeatable (default: *.py).",
        flag="--reload-include",
        group="processes",
    )
    reload_excludes: list[str] = setting(
        [], "Glob of files to ignore; repeatable.", flag="--reload-exclude", group="processes"
    )
    reload_delay: float = setting(
        0.25, "Seconds to wait for more changes before reloading.", group="processes"
    )
    timeout_worker_healthcheck: float = setting(
        30.0,
        "Seconds a worker may take to answer a health ping before it is replaced.",
        group="processes",
    )
    timeout_worker_startup: float = setting(
        60.0, "Seconds a worker may take to start serving.", group="processes"
    )
    limit_max_requests: int | None = setting(
        None, "Recycle a worker after this many requests.", group="processes"
    )
    limit_max_requests_jitter: int = setting(
        0, "Add up to this many requests at random to --limit-max-requests.", group="processes"
    )
    limit_max_rss: int | None = setting(
        None, "Recycle a worker whose resident memory passes this many MiB.", group="processes"
    )

    # ----------------------------------------------------------------- HTTP
    http: HTTPImplementation = setting(
        "auto",
        "HTTP/1.1 parser, for uvicorn's --http: every choice parses with llhttp (httptools), "
        "h11 included.",
        group="http",
    )
    http2: bool = setting(
        True, "Serve HTTP/2 (ALPN h2, h2c upgrade, prior knowledge).", group="http"
    )
    proxy_headers: bool = setting(
        True, "Trust X-Forwarded-For/-Proto/Forwarded from --forwarded-allow-ips.", group="http"
    )
    forwarded_allow_ips: str = setting(
        "127.0.0.1",
        "Comma-separated IPs or CIDRs trusted for proxy headers; '*' trusts all.",
        env=("FORWARDED_ALLOW_IPS",),
        group="http",
    )
    proxy_protocol: bool = setting(
        False, "Expect a PROXY protocol (v1 or v2) header on each connection.", group="http"
    )
    server_header: bool = setting(True, "Send a Server header.", group="http")
    date_header: bool = setting(True, "Send a Date header.", group="http")
    headers: list[str] = setting(
        [],
        "Default response header 'Name: value'; repeatable.",
        flag="--header",
        short="-H",
        group="http",
    )
    limit_concurrency: int | None = setting(
        None, "Answer 503 past this many concurrent connections and tasks.", group="http"
    )
    limit_request_line: int = setting(
        8190, "Longest request line in bytes (414 past it).", group="http"
    )
    limit_request_headers: int = setting(
        100, "Most request header fields (431 past it).", group="http"
    )
    limit_request_header_size: int = setting(
        65536, "Largest request header block in bytes (431 past it).", group="http"
    )
    h11_max_incomplete_event_size: int | None = setting(
        None,
        "uvicorn's name for --limit-request-header-size; overrides it when given.",
        group="http",
    )
    limit_request_body: int | None = setting(
        None, "Largest request body in bytes (413 past it); unlimited when unset.", group="http"
    )
    timeout_keep_alive: float = setting(
        5.0, "Seconds an idle keep-alive connection stays open.", group="http"
    )
    timeout_request_header: float = setting(
        10.0, "Seconds a client may take to send a request head.", group="http"
    )
    timeout_request_body: float = setting(
        30.0, "Seconds a request body may stall before the connection is dropped.", group="http"
    )
    timeout_send: float = setting(
        60.0,
        "Seconds a client may take none of a response before it is dropped (HTTP/2: the "
        "stream is reset); 0 waits forever.",
        group="http",
    )
    timeout_graceful_shutdown: float = setting(
        30.0, "Seconds in-flight requests get to finish on shutdown.", group="http"
    )
    http2_max_concurrent_streams: int = setting(
        100, "HTTP/2 streams open at once per connection.", group="http"
    )
    http2_max_header_list_size: int = setting(
        65536, "Largest decoded HTTP/2 header list in bytes.", group="http"
    )
    http2_initial_window_size: int = setting(
        1048576, "HTTP/2 initial stream receive window in bytes.", group="http"
    )
    http2_max_frame_size: int = setting(
        16384, "Largest HTTP/2 frame the server accepts.", group="http"
    )
    http2_ping_interval: float | None = setting(
        None, "Seconds between HTTP/2 keepalive PINGs; off when unset.", group="http"
    )
    http2_max_resets: int = setting(
        200,
        "HTTP/2 stream resets a client may cause per 10 s before GOAWAY (rapid reset).",
        group="http",
    )

    # ----------------------------------------------------------------- WebSocket
    ws: WebSocketImplementation = setting(
        "auto",
        "WebSocket support; 'none' disables it. uvicorn's implementation names are accepted: "
        "every one is the built-in websockets sans-IO core.",
        group="websocket",
    )
    ws_max_size: int = setting(
        16777216, "Largest WebSocket message in bytes (1009 past it).", group="websocket"
    )
    ws_max_queue: int = setting(
        32, "Messages queued for the app before reading pauses.", group="websocket"
    )
    ws_ping_interval: float | None = setting(
        20.0, "Seconds between WebSocket pings.", group="websocket"
    )
    ws_ping_timeout: float | None = setting(20.0, "Seconds to wait for a pong.", group="websocket")
    ws_per_message_deflate: bool = setting(
        True, "Offer permessage-deflate compression.", group="websocket"
    )
    timeout_ws_close: float = setting(
        10.0, "Seconds to wait for the peer's close frame.", group="websocket"
    )

    # ----------------------------------------------------------------- TLS
    ssl_keyfile: str | None = setting(None, "TLS private key file.", group="tls")
    ssl_certfile: str | None = setting(None, "TLS certificate chain file.", group="tls")
    ssl_keyfile_password: str | None = setting(None, "Password of the TLS key file.", group="tls")
    ssl_ca_certs: str | None = setting(
        None, "CA bundle to verify client certificates.", group="tls"
    )
    ssl_cert_reqs: int = setting(
        0, "Client certificates: 0 none, 1 optional, 2 required.", group="tls"
    )
    ssl_ciphers: str = setting("TLSv1.2", "OpenSSL cipher string for TLS 1.2.", group="tls")
    ssl_min_version: Literal["TLSv1.2", "TLSv1.3"] = setting(
        "TLSv1.2", "Oldest TLS version accepted.", group="tls"
    )
    ssl_version: int = setting(
        SSL_PROTOCOL_NEGOTIATED,
        "uvicorn's ssl.PROTOCOL_* number: 2 or 17 negotiate the newest version, 5 pins TLS 1.2 "
        "(TLS 1.0 and 1.1 are refused).",
        group="tls",
    )
    timeout_ssl_handshake: float = setting(10.0, "Seconds a TLS handshake may take.", group="tls")
    ssl_context_factory: str | None = setting(
        None,
        "A function called as function(config, default_factory) in each worker, returning the "
        "server's ssl.SSLContext (uvicorn's ssl_context_factory); default_factory() builds the "
        "context the other --ssl-* flags describe. ALPN is set on what it returns.",
        group="tls",
        metavar="MODULE:FUNCTION",
    )

    # ----------------------------------------------------------------- logging
    log_level: LogLevel = setting("info", "Log level.", group="logging")
    log_config: str | None = setting(
        None, "Logging dictConfig file (.json, .yaml) or fileConfig (.ini).", group="logging"
    )
    access_log: bool = setting(True, "Log one line per request.", group="logging")
    access_log_format: AccessLogFormat = setting("text", "Access log format.", group="logging")
    use_colors: bool | None = setting(
        None, "Colour log output (default: only on a terminal).", group="logging"
    )

    def __post_init__(self) -> None:
        validate(self)


def validate(config: Config) -> None:
    """Reject values no server could run with, with a message naming the setting."""
    positive = (
        "backlog",
        "limit_request_line",
        "limit_request_headers",
        "limit_request_header_size",
        "ws_max_size",
        "ws_max_queue",
        "http2_max_concurrent_streams",
        "wsgi_threads",
    )
    for name in positive:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{flag_of(name)} must be positive, not {getattr(config, name)}")
    if config.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {config.workers}")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, not {config.port}")
    if not 16384 <= config.http2_max_frame_size <= 16777215:
        raise ConfigError("--http2-max-frame-size must be between 16384 and 16777215")
    if config.ssl_cert_reqs not in (0, 1, 2):
        raise ConfigError("--ssl-cert-reqs must be 0, 1 or 2")
    if (
        config.h11_max_incomplete_event_size is not None
        and config.h11_max_incomplete_event_size <= 0
    ):
        raise ConfigError("--h11-max-incomplete-event-size must be positive")
    _validate_ssl_version(config)
    if config.ssl_keyfile and not config.ssl_certfile:
        raise ConfigError("--ssl-keyfile needs --ssl-certfile (the certificate chain)")
    for header in config.headers:
        name, sep, _ = header.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"--header must look like 'Name: value', not {header!r}")


def _validate_ssl_version(config: Config) -> None:
    version = config.ssl_version
    if version in SSL_PROTOCOLS_NEGOTIATED:
        return
    if version == SSL_PROTOCOL_TLS12:
        if config.ssl_min_version == "TLSv1.3":
            raise ConfigError(
                "--ssl-version 5 pins TLS 1.2, which --ssl-min-version TLSv1.3 refuses"
            )
        return
    if version in (3, 4):  # PROTOCOL_TLSv1, PROTOCOL_TLSv1_1
        raise ConfigError(
            f"--ssl-version {version}: TLS 1.0 and 1.1 are deprecated (RFC 8996) and not served; "
            "use 17 (negotiate) or 5 (TLS 1.2)"
        )
    if version == 16:  # PROTOCOL_TLS_CLIENT
        raise ConfigError("--ssl-version 16 is the client-side protocol; a server uses 17")
    raise ConfigError(
        f"--ssl-version {version} is not an ssl.PROTOCOL_* number a server can use: "
        "17 (negotiate), 2 (the same) or 5 (TLS 1.2 only)"
    )


# --------------------------------------------------------------------------- introspection
def fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(Config)


def flag_of(name: str) -> str:
    for f in fields():
        if f.name == name:
            return f.metadata.get("flag") or "--" + name.replace("_", "-")
    raise KeyError(name)


_HINTS: dict[str, Any] = {}


def hint_of(name: str) -> Any:
    """The resolved type annotation of a setting."""
    if not _HINTS:
        _HINTS.update(get_type_hints(Config))
    return _HINTS[name]


def base_type(hint: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), True
    return hint, False


def choices_of(name: str) -> tuple[str, ...] | None:
    typ, _ = base_type(hint_of(name))
    if get_origin(typ) is Literal:
        return tuple(str(a) for a in get_args(typ))
    return None


def convert(name: str, raw: Any) -> Any:
    """Turn a string (environment) or TOML value into the setting's type."""
    typ, optional = base_type(hint_of(name))
    where = flag_of(name)
    if raw is None:
        return None
    if isinstance(raw, str) and optional and raw.lower() in ("", "none", "null"):
        return None
    if get_origin(typ) is list:
        if isinstance(raw, str):
            return [part.strip() for part in raw.split(",") if part.strip()]
        if isinstance(raw, list):
            return [str(item) for item in raw]
        raise ConfigError(f"{where} takes a list, not {raw!r}")
    if get_origin(typ) is Literal:
        allowed = get_args(typ)
        if raw not in allowed:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, allowed))}, not {raw!r}")
        return raw
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} takes true or false, not {raw!r}")
    if typ in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"{where} takes a number, not {raw!r}")
        try:
            return typ(raw)
        except (TypeError, ValueError):
            kind = "a whole number" if typ is int else "a number"
            raise ConfigError(f"{where} takes {kind}, not {raw!r}") from None
    if typ is str:
        if not isinstance(raw, str | int | float):
            raise ConfigError(f"{where} takes text, not {raw!r}")
        return str(raw)
    raise ConfigError(f"{where}: cannot read {raw!r}")


# --------------------------------------------------------------------------- sources
def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields():
        names = (ENV_PREFIX + f.name.upper(), *f.metadata.get("env", ()))
        for env_name in names:
            if env_name in environ:
                values[f.name] = convert(f.name, environ[env_name])
                break
    return values


def find_config_file(directory: Path) -> Path | None:
    for candidate in (directory / "pronghorn.toml", directory / "pyproject.toml"):
        if candidate.is_file():
            if candidate.name == "pyproject.toml":
                with candidate.open("rb") as fh:
                    try:
                        data = tomllib.load(fh)
                    except tomllib.TOMLDecodeError:
                        return None
                if "pronghorn" not in data.get("tool", {}):
                    continue
            return candidate
    return None


def from_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("pronghorn", {})
    known = {f.name for f in fields()}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        values[name] = convert(name, raw)
    return values


def load(
    cli: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    directory: Path | None = None,
) -> Config:
    """Merge the sources, CLI > environment > config file > default, into a Config."""
    environ = os.environ if environ is None else environ
    path = config_file or find_config_file(directory or Path.cwd())
    values: dict[str, Any] = {}
    if path is not None:
        values.update(from_file(path))
    values.update(from_environment(environ))
    values.update({k: v for k, v in (cli or {}).items() if v is not None})
    return Config(**values)


def replace(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, **changes)

"""Logging: the default configuration, access-log formats, and the per-request hook.

The server logs through two loggers: ``pronghorn.error`` (everything but requests; stderr) and
``pronghorn.access`` (one line per request; stdout). ``configure(config)`` sets them up once per
process, from ``--log-config`` when given, else from :func:`default_config`.

The server's per-request call, once per finished request::

    access = AccessLogger()                       # once, after configure()
    access.log(client, method, target, http_version, status, bytes_sent, duration_s)

    client        "host:port" of the peer, or "-" (str)
    method        "GET" (str or bytes, as received)
    target        the path with its query string (str, or the raw request-target as bytes)
    http_version  "1.1", "2" (str)
    status        200 (int)
    bytes_sent    response body bytes written (int)
    duration_s    seconds from request head to the end of the response (float)

It returns at once when ``pronghorn.access`` is disabled for INFO (``--no-access-log`` sets the
logger's level to WARNING), and otherwise builds one LogRecord whose ``args`` are those values,
so the text and JSON formatters share it. Request data is escaped (``\\x1b`` becomes the four
characters ``\\x1b``) so a client cannot forge log lines or drive the terminal.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import logging.config
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pronghorn.errors import ConfigError

if TYPE_CHECKING:
    from pronghorn.config import Config

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

ERROR_LOGGER = "pronghorn.error"
ACCESS_LOGGER = "pronghorn.access"

_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}

ACCESS_TEXT = '%s - "%s %s HTTP/%s" %d %d %.2fms'


# --------------------------------------------------------------------------- escaping
def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """Make request data safe for one log line: non-printable characters become escapes."""
    if text.isprintable():  # the fast path: one C-level scan
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def _text(value: str | bytes) -> str:
    if type(value) is bytes:
        # Non-ASCII bytes become \xNN; control bytes are left to escape().
        value = value.decode("ascii", "backslashreplace")
    return escape(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the hook
class AccessLogger:
    """The one call the server makes per request (signature in the module docstring)."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(ACCESS_LOGGER)

    @property
    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def log(
        self,
        client: str,
        method: str | bytes,
        target: str | bytes,
        http_version: str,
        status: int,
        bytes_sent: int,
        duration_s: float,
    ) -> None:
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        args = (
            escape(client),
            _text(method),
            _text(target),
            http_version,
            status,
            bytes_sent,
            duration_s * 1000.0,
        )
        # makeRecord + handle skips Logger._log's findCaller() stack walk, which would cost
        # more than everything else here; the caller's location is meaningless for this line.
        logger.handle(logger.makeRecord(logger.name, logging.INFO, "", 0, ACCESS_TEXT, args, None))


# --------------------------------------------------------------------------- formatters
_RESET = "\x1b[0m"
_LEVEL_COLOURS = {
    TRACE: "\x1b[34m",
    logging.DEBUG: "\x1b[36m",
    logging.INFO: "\x1b[32m",
    logging.WARNING: "\x1b[33m",
    logging.ERROR: "\x1b[31m",
    logging.CRITICAL: "\x1b[1;31m",
}
_STATUS_COLOURS = {1: "\x1b[37m", 2: "\x1b[32m", 3: "\x1b[36m", 4: "\x1b[33m", 5: "\x1b[31m"}


def _wants_colour(use_colors: bool | None, stream: TextIO) -> bool:
    if use_colors is not None:
        return use_colors
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _CachedTimeMixin:
    """formatTime at most once a second: strftime per line is a visible share of the cost."""

    _cached_second = -1
    _cached_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._cached_second:
            self._cached_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._cached_second = second
        return self._cached_text


class DefaultFormatter(_CachedTimeMixin, logging.Formatter):
    """``2026-01-01 12:00:00 INFO     message``, the level coloured on a terminal."""

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Any = "%",
        use_colors: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)-8s %(message)s", datefmt, style)
        self.use_colors = _wants_colour(use_colors, stream or sys.stderr)

    def formatMessage(self, record: logging.LogRecord) -> str:
        if self.use_colors:
            # A copy: the record is shared with every other handler, which must not see colour.
            record = copy.copy(record)
            name = record.levelname
            colour = _LEVEL_COLOURS.get(record.levelno, "")
            record.levelname = f"{colour}{name}{_RESET}" + " " * max(0, 8 - len(name))
        return super().formatMessage(record)


def _access_fields(record: logging.LogRecord) -> tuple[Any, ...] | None:
    """The AccessLogger.log values of an access record; None for any other record."""
    args = record.args
    if record.msg is ACCESS_TEXT and isinstance(args, tuple) and len(args) == 7:
        return args
    return None


class AccessFormatter(_CachedTimeMixin, logging.Formatter):
    """The text access line; on a terminal the status is coloured by its class."""

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Any = "%",
        use_colors: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        super().__init__(fmt or "%(asctime)s %(message)s", datefmt, style)
        self.use_colors = _wants_colour(use_colors, stream or sys.stdout)

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = _access_fields(record) if self.use_colors else None
        if fields is not None:
            client, method, target, version, status, sent, ms = fields
            colour = _STATUS_COLOURS.get(status // 100, "")
            record.message = (
                f'{client} - "{method} {target} HTTP/{version}" '
                f"{colour}{status}{_RESET} {sent} {ms:.2f}ms"
            )
        return super().formatMessage(record)


class JSONAccessFormatter(_CachedTimeMixin, logging.Formatter):
    """One JSON object per line; other records on the access logger keep their message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("use_colors", None)
        kwargs.pop("stream", None)
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname}
        fields = _access_fields(record)
        if fields is not None:
            client, method, target, version, status, sent, ms = fields
            entry.update(
                client=client,
                method=method,
                path=target,
                http_version=version,
                status=status,
                bytes=sent,
                duration_ms=round(ms, 3),
            )
        else:
            entry["message"] = record.getMessage()
        return json.dumps(entry, ensure_ascii=True)


# --------------------------------------------------------------------------- configuration
def default_config(config: Config) -> dict[str, Any]:
    """The dictConfig used when no ``--log-config`` is given."""
    access_formatter = "json" if config.access_log_format == "json" else "access"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {
                "()": "pronghorn.logging.DefaultFormatter",
                "use_colors": config.use_colors,
                "stream": "ext://sys.stderr",
            },
            "access": {
                "()": "pronghorn.logging.AccessFormatter",
                "use_colors": config.use_colors,
                "stream": "ext://sys.stdout",
            },
            "json": {"()": "pronghorn.logging.JSONAccessFormatter"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": access_formatter,
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            ERROR_LOGGER: {"handlers": ["default"], "level": "INFO", "propagate": False},
            ACCESS_LOGGER: {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def _load_config_file(path: Path) -> None:
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            with path.open(encoding="utf-8") as fh:
                logging.config.dictConfig(json.load(fh))
        elif suffix in (".yaml", ".yml"):
            try:
                # Optional dependency, imported by name so type-checking needs no stubs.
                yaml = importlib.import_module("yaml")
            except ImportError:
                raise ConfigError(
                    f"--log-config {path} is YAML, which needs PyYAML: pip install PyYAML"
                ) from None
            with path.open(encoding="utf-8") as fh:
                logging.config.dictConfig(yaml.safe_load(fh))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except ConfigError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read --log-config {path}: {exc.strerror}") from None
    except Exception as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ConfigError(f"--log-config {path} is not a valid logging config: {detail}") from None


def configure(config: Config) -> None:
    """Set up logging for one process: the ``--log-config`` file rules when given, otherwise
    the defaults with ``--log-level``; ``--no-access-log`` turns the access logger off either
    way."""
    if config.log_config:
        _load_config_file(Path(config.log_config))
    else:
        logging.config.dictConfig(default_config(config))
        level = _LEVELS[config.log_level]
        logging.getLogger(ERROR_LOGGER).setLevel(level)
        # As with uvicorn, a level quieter than info (warning...) hides the access lines too.
        logging.getLogger(ACCESS_LOGGER).setLevel(level)
    if not config.access_log:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)

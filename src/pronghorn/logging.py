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

It returns at once (0.1 µs) when ``pronghorn.access`` is disabled for INFO (``--no-access-log``
sets the logger's level to WARNING), and otherwise builds one LogRecord whose ``args`` are those
values, so the text and JSON formatters share it. Request data is escaped (``\\x1b`` becomes the
four characters ``\\x1b``) so a client cannot forge log lines or drive the terminal.

Cost with the default configuration, CPU time per logged request (``time.process_time``, the
flushing thread included): 1.6 µs for text, 4.9 µs for JSON, against 5.9 µs for a stock
``StreamHandler`` record. The default text line skips the LogRecord when nothing could observe
it and is queued as its values, formatted with the others when the queue is written: in a
server, formatting each line between requests cost 3.5-4 µs of CPU per request, its code cold
every time. The default access handler writes at most every 100 ms
(:class:`BufferedStreamHandler`), so a crash can lose that much of the access log; error lines
are written at once.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import logging.config
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

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
#: The default-format line (AccessFormatter's "%(asctime)s %(message)s"), built in one step.
_DIRECT_LINE = "%s " + ACCESS_TEXT
#: Methods as text, so the common ones skip decoding and escaping per line.
_METHOD_TEXT = {
    name.encode(): name
    for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
}


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


class _SecondText:
    """A timestamp's ``%Y-%m-%d %H:%M:%S`` text, made at most once a second: strftime per
    line is a visible share of a line's cost."""

    _cached_second = -1
    _cached_text = ""

    def time_text(self, created: float) -> str:
        second = int(created)
        if second != self._cached_second:
            self._cached_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._cached_second = second
        return self._cached_text


#: What AccessLogger.log queues on the direct path: time.time() then its own arguments.
AccessEntry = tuple[float, str, "str | bytes", "str | bytes", str, int, int, float]

_direct_clock = _SecondText()


def _queue_text(items: list[str | AccessEntry], terminator: str) -> str:
    """The text of a handler's queue: lines as they are, access entries formatted.

    An access entry becomes the default-format line (AccessFormatter's). One loop with the
    helpers inlined: 0.55 us a line here against 1.05 us through a function per line.
    """
    clock = _direct_clock
    methods = _METHOD_TEXT
    second = -1
    stamp = ""
    parts: list[str] = []
    append = parts.append
    for item in items:
        if type(item) is str:
            append(item)
            continue
        entry = cast(AccessEntry, item)
        created, client, method, target, version, status, sent, duration_s = entry
        if int(created) != second:  # the clock caches too; this skips even the call
            second = int(created)
            stamp = clock.time_text(created)
        if not client.isprintable():
            client = escape(client)
        method_text = methods.get(method) or _text(method)  # type: ignore[arg-type]
        if type(target) is bytes:
            target = target.decode("ascii", "backslashreplace")
        target_text = cast(str, target)
        if not target_text.isprintable():
            target_text = escape(target_text)
        # Plain {status} and {sent}: a format spec on an int costs twice as much.
        append(
            f'{stamp} {client} - "{method_text} {target_text} HTTP/{version}" '
            f"{int(status)} {int(sent)} {duration_s * 1000.0:.2f}ms{terminator}"
        )
    return "".join(parts)


# --------------------------------------------------------------------------- the hook
class AccessLogger:
    """The one call the server makes per request (signature in the module docstring)."""

    __slots__ = ("_logger", "_template", "_template_key")

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(ACCESS_LOGGER)
        self._template: dict[str, Any] | None = None
        self._template_key: tuple[int, int] = (0, 0)

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
        if self._logger.isEnabledFor(logging.INFO):
            now = time.time()
            self.log_entries(
                [(now, client, method, target, http_version, status, bytes_sent, duration_s)]
            )

    def log_entries(self, entries: list[AccessEntry]) -> None:
        """Log several requests at once: ``log``'s values, each after its ``time.time()``.

        The server hands over each loop turn's lines together (server/access_log.py), so the
        checks below run once per batch rather than once per request.
        """
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = self._direct_handler(logger)
        if handler is not None:
            # The values are queued and become text when the handler writes them, many lines
            # in one loop: formatted one by one, between requests, a line cost 3.5-4 us of
            # server CPU (its code cold each time).
            handler.queue_access(entries)
            return
        for created, client, method, target, version, status, sent, duration_s in entries:
            args = (
                escape(client),
                _text(method),
                _text(target),
                version,
                status,
                sent,
                duration_s * 1000.0,
            )
            # handle() directly skips Logger._log's findCaller() stack walk, which would cost
            # more than everything else here; the caller's location is meaningless here.
            logger.handle(self._record(args, created))

    @staticmethod
    def _direct_handler(logger: logging.Logger) -> BufferedStreamHandler | None:
        """The handler of the default setup, when the line can skip the LogRecord.

        Only when nothing could observe the record: one BufferedStreamHandler with the default
        text format, no filters, no propagation, the stock record factory. Checked on every
        call (a few attribute reads), so reconfiguring logging at run time takes effect at once.
        A LogRecord and the handler chain cost more than half of a logged line.
        """
        handlers = logger.handlers
        if len(handlers) != 1 or logger.filters or logger.propagate:
            return None
        handler = handlers[0]
        if (
            type(handler) is not BufferedStreamHandler
            or handler.filters
            or handler.level > logging.INFO
            or type(handler.formatter) is not AccessFormatter
            or not handler.formatter._direct
            or logging.getLogRecordFactory() is not logging.LogRecord
        ):
            return None
        return handler

    def _record(self, args: tuple[Any, ...], now: float) -> logging.LogRecord:
        """A LogRecord for ``args``, copied from a template made by the real makeRecord.

        Everything but the time and the args is the same for every access line, and building
        a LogRecord from scratch (pid, thread and process names, path splitting) is the largest
        cost of a logged request. A custom record factory or makeRecord is honoured as is.
        """
        logger = self._logger
        if (
            logging.getLogRecordFactory() is not logging.LogRecord
            or type(logger).makeRecord is not logging.Logger.makeRecord
        ):
            made = logger.makeRecord(logger.name, logging.INFO, "", 0, ACCESS_TEXT, args, None)
            made.created = now
            made.msecs = (now - int(now)) * 1000.0
            return made
        key = (os.getpid(), threading.get_ident())
        template = self._template
        if template is None or key != self._template_key:
            model = logger.makeRecord(logger.name, logging.INFO, "", 0, ACCESS_TEXT, (), None)
            template = self._template = dict(model.__dict__)
            if "taskName" in template:  # Python 3.12+: the model's task is not the next one's
                template["taskName"] = None
            self._template_key = key
        fields = template.copy()
        fields["args"] = args
        fields["created"] = now
        fields["msecs"] = (now - int(now)) * 1000.0
        fields["relativeCreated"] = template["relativeCreated"] + (now - template["created"]) * 1e3
        record: logging.LogRecord = _new_object(logging.LogRecord)
        record.__dict__ = fields
        return record


_new_object = object.__new__


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes at most every ``interval`` seconds instead of every line.

    Lines wait in a queue (an append, a tenth of a microsecond); a background thread writes what
    is pending as one string and flushes the stream, so the last lines never wait for the next
    request, and ``logging.shutdown()`` (run at exit) writes the rest. A write per access line
    costs a lock and the text layer's encoding per request, and a flush per line a syscall (more
    on a pipe to a log collector). A crash loses at most ``interval`` seconds of lines; past
    ``max_pending`` lines the logging thread writes them itself, so a stalled flusher cannot grow
    the queue without bound.
    """

    def __init__(
        self, stream: TextIO | None = None, interval: float = 0.1, max_pending: int = 1024
    ) -> None:
        super().__init__(stream)
        self.interval = interval
        self.max_pending = max_pending
        #: Lines not written yet, or the values of access lines still to be formatted.
        #: deque.append and popleft are atomic, so the logging thread appends without the
        #: handler's lock; writers take the lock among themselves.
        self._pending: deque[str | AccessEntry] = deque()
        self._dirty = False
        self._wake = threading.Event()
        self._flusher_pid = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        self.write_line(line, terminated=True)

    def write_line(self, line: str, terminated: bool = False) -> None:
        """Queue one formatted line as emit() would, without a record."""
        self._queue(line if terminated else line + self.terminator)

    def queue_access(self, entries: list[AccessEntry]) -> None:
        """Queue default-format access lines as their values (AccessLogger's direct path);
        they are formatted when the queue is written."""
        self._pending.extend(entries)
        self._queued()

    def _queue(self, item: str) -> None:
        self._pending.append(item)
        self._queued()

    def _queued(self) -> None:
        pending = self._pending
        if len(pending) >= self.max_pending:
            self._write_pending()
        if not self._dirty:
            self._dirty = True
            if self._flusher_pid != os.getpid():  # first line, or first after a fork
                self._start_flusher()
            self._wake.set()

    def _start_flusher(self) -> None:
        self._flusher_pid = os.getpid()
        self._wake = threading.Event()
        thread = threading.Thread(target=self._flush_loop, name="pronghorn-log-flush", daemon=True)
        thread.start()

    def _flush_loop(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            wake.clear()
            time.sleep(self.interval)
            self.flush()

    def _write_pending(self) -> None:
        """Write the queued lines in one call; a failing stream is reported as logging does."""
        pending = self._pending
        self.acquire()
        try:
            count = len(pending)
            if not count:
                return
            items = [pending.popleft() for _ in range(count)]
            text = ""
            try:
                text = _queue_text(items, self.terminator)
                if self.stream is not None:
                    self.stream.write(text)
            except RecursionError:
                raise
            except Exception:
                self.handleError(self._lost_record(text or repr(items[0]), count))
        finally:
            self.release()

    def _lost_record(self, text: str, count: int) -> logging.LogRecord:
        """A record for handleError naming what a failed write lost (its first line)."""
        first = text.split(self.terminator, 1)[0]
        message = first if count == 1 else f"{first} (and {count - 1} more lines)"
        return logging.LogRecord(self.name or "", logging.INFO, "", 0, message, None, None)

    def flush(self) -> None:
        self._write_pending()
        self.acquire()
        try:
            self._dirty = False
            if self.stream is not None and hasattr(self.stream, "flush"):
                self.stream.flush()
        except ValueError:  # the stream was closed under us at exit
            pass
        finally:
            self.release()


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


class _CachedTimeMixin(_SecondText):
    """formatTime at most once a second."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.time_text(record.created)


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
        # With the default format the line is built directly: Formatter.format's generic
        # path (usesTime, the style's % mapping, exception checks) is a third of its cost.
        self._direct = fmt is None and not self.use_colors

    def format(self, record: logging.LogRecord) -> str:
        if self._direct:
            fields = _access_fields(record)
            if fields is not None and record.exc_info is None:
                return self.access_line(record.created, fields)
        return super().format(record)

    def access_line(self, created: float, fields: tuple[Any, ...]) -> str:
        """The default-format line for AccessLogger.log's values (``_direct`` formatters)."""
        return _DIRECT_LINE % (self.time_text(created), *fields)

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


class JSONAccessFormatter(logging.Formatter):
    """One JSON object per line; other records on the access logger keep their message.

    ``time`` is ISO 8601 with milliseconds and the UTC offset. The access object is assembled
    from C-escaped strings rather than ``json.dumps`` of a dict, which would double its cost.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("use_colors", None)
        kwargs.pop("stream", None)
        super().__init__(*args, **kwargs)
        self._cached_second = -1
        self._cached_prefix = ""
        self._cached_zone = ""

    def _iso_time(self, created: float) -> str:
        second = int(created)
        if second != self._cached_second:
            moment = time.localtime(second)
            self._cached_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", moment)
            self._cached_zone = time.strftime("%z", moment)
            self._cached_second = second
        millis = int((created - second) * 1000)
        return f"{self._cached_prefix}.{millis:03d}{self._cached_zone}"

    def format(self, record: logging.LogRecord) -> str:
        stamp = self._iso_time(record.created)
        fields = _access_fields(record)
        if fields is None:
            entry = {"time": stamp, "level": record.levelname, "message": record.getMessage()}
            return json.dumps(entry, ensure_ascii=True)
        client, method, target, version, status, sent, ms = fields
        return (
            f'{{"time": "{stamp}", "level": "{record.levelname}", "client": {_json_str(client)}, '
            f'"method": {_json_str(method)}, "path": {_json_str(target)}, '
            f'"http_version": {_json_str(version)}, "status": {int(status)}, '
            f'"bytes": {int(sent)}, "duration_ms": {round(float(ms), 3)!r}}}'
        )


_json_str: Any = getattr(json.encoder, "encode_basestring_ascii", json.dumps)


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
                "class": "pronghorn.logging.BufferedStreamHandler",
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

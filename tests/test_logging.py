"""logging.py: escaping, the access line (text and JSON), colours, and --log-config formats."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pronghorn.config import Config
from pronghorn.errors import ConfigError
from pronghorn.logging import (
    ACCESS_LOGGER,
    ERROR_LOGGER,
    TRACE,
    AccessFormatter,
    AccessLogger,
    BufferedStreamHandler,
    DefaultFormatter,
    JSONAccessFormatter,
    configure,
    escape,
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure() changes process-wide loggers; put them back after each test."""
    names = ["", "pronghorn", ERROR_LOGGER, ACCESS_LOGGER, "custom"]
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
    yield
    for name, (level, handlers, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = disabled


def capture(formatter: logging.Formatter) -> tuple[AccessLogger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("pronghorn.test.access")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return AccessLogger(logger), stream


# --------------------------------------------------------------------------- escaping
@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("/plain/path?q=1", "/plain/path?q=1"),
        ("/caf\u00e9", "/caf\u00e9"),  # printable non-ASCII stays readable
        ("/\x1b[31mred", "/\\x1b[31mred"),
        ("/a\r\nFAKE 200", "/a\\x0d\\x0aFAKE 200"),
        ("/\x00\x7f\x85", "/\\x00\\x7f\\x85"),
        ("/line\u2028sep", "/line\\u2028sep"),
    ],
)
def test_escape(raw: str, shown: str) -> None:
    assert escape(raw) == shown


def test_access_line_text() -> None:
    access, stream = capture(logging.Formatter("%(message)s"))
    access.log("127.0.0.1:5000", "GET", "/path?q=1", "1.1", 200, 13, 0.0015)
    assert stream.getvalue() == '127.0.0.1:5000 - "GET /path?q=1 HTTP/1.1" 200 13 1.50ms\n'


def test_access_line_from_raw_bytes_cannot_forge_lines() -> None:
    access, stream = capture(logging.Formatter("%(message)s"))
    access.log("10.0.0.1:1", b"GET", b"/x\r\n\x1b[2J\xff", "1.1", 404, 0, 0.0)
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert "\x1b" not in line
    assert '"GET /x\\x0d\\x0a\\x1b[2J\\xff HTTP/1.1" 404 0 0.00ms' in line


def test_access_client_is_escaped() -> None:
    # X-Forwarded-For from a trusted proxy can still carry what a client put there.
    access, stream = capture(logging.Formatter("%(message)s"))
    access.log("evil\nINFO fake", "GET", "/", "2", 200, 0, 0.0)
    assert stream.getvalue().startswith("evil\\x0aINFO fake - ")


def test_access_logger_disabled_logs_nothing() -> None:
    access, stream = capture(logging.Formatter("%(message)s"))
    logging.getLogger("pronghorn.test.access").setLevel(logging.WARNING)
    assert not access.enabled
    access.log("c", "GET", "/", "1.1", 200, 0, 0.0)
    assert stream.getvalue() == ""


def test_json_access_format() -> None:
    access, stream = capture(JSONAccessFormatter())
    access.log("127.0.0.1:5000", "POST", b"/api?\x1b", "2", 201, 1024, 0.25)
    entry = json.loads(stream.getvalue())
    assert entry["client"] == "127.0.0.1:5000"
    assert entry["method"] == "POST"
    assert entry["path"] == "/api?\\x1b"
    assert entry["http_version"] == "2"
    assert entry["status"] == 201
    assert entry["bytes"] == 1024
    assert entry["duration_ms"] == 250.0
    assert entry["level"] == "INFO"
    assert "time" in entry


def test_json_formatter_keeps_other_records() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONAccessFormatter())
    logger = logging.getLogger("custom")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning("hello %s", "world")
    assert json.loads(stream.getvalue())["message"] == "hello world"


def test_colours_only_when_asked_or_on_a_tty() -> None:
    access, stream = capture(AccessFormatter("%(message)s", use_colors=True))
    access.log("c", "GET", "/", "1.1", 500, 0, 0.0)
    assert "\x1b[31m500\x1b[0m" in stream.getvalue()

    not_a_tty = io.StringIO()
    assert AccessFormatter(use_colors=None, stream=not_a_tty).use_colors is False
    assert DefaultFormatter(use_colors=None, stream=not_a_tty).use_colors is False


def test_default_formatter_colours_level() -> None:
    record = logging.LogRecord("x", logging.WARNING, "", 0, "careful", None, None)
    text = DefaultFormatter("%(levelname)s %(message)s", use_colors=True).format(record)
    assert text.startswith("\x1b[33mWARNING\x1b[0m")
    plain = DefaultFormatter("%(levelname)s|%(message)s", use_colors=False).format(record)
    assert plain == "WARNING|careful"


# --------------------------------------------------------------------------- configure()
def test_configure_defaults() -> None:
    configure(Config())
    error = logging.getLogger(ERROR_LOGGER)
    access = logging.getLogger(ACCESS_LOGGER)
    assert error.level == logging.INFO
    assert access.isEnabledFor(logging.INFO)
    assert isinstance(access.handlers[0].formatter, AccessFormatter)
    assert logging.getLevelName(TRACE) == "TRACE"


def test_configure_trace_and_json() -> None:
    configure(Config(log_level="trace", access_log_format="json"))
    assert logging.getLogger(ERROR_LOGGER).isEnabledFor(TRACE)
    assert isinstance(logging.getLogger(ACCESS_LOGGER).handlers[0].formatter, JSONAccessFormatter)


def test_no_access_log_and_quiet_levels_disable_access() -> None:
    configure(Config(access_log=False))
    assert not AccessLogger().enabled
    configure(Config(log_level="warning"))
    assert not AccessLogger().enabled
    configure(Config())
    assert AccessLogger().enabled


def _dict_config(path: Path) -> dict[str, object]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(path), "level": "DEBUG"}
        },
        "loggers": {ERROR_LOGGER: {"handlers": ["file"], "level": "DEBUG", "propagate": False}},
    }


def _check_file_logging(path: Path) -> None:
    logger = logging.getLogger(ERROR_LOGGER)
    assert logger.isEnabledFor(logging.DEBUG)
    logger.debug("to the file")
    for handler in logger.handlers:
        handler.flush()
    assert "to the file" in path.read_text()


def test_log_config_json(tmp_path: Path) -> None:
    config_file = tmp_path / "logging.json"
    config_file.write_text(json.dumps(_dict_config(tmp_path / "out.log")))
    configure(Config(log_config=str(config_file)))
    _check_file_logging(tmp_path / "out.log")


def test_log_config_yaml(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    config_file = tmp_path / "logging.yaml"
    config_file.write_text(yaml.safe_dump(_dict_config(tmp_path / "out.log")))
    configure(Config(log_config=str(config_file)))
    _check_file_logging(tmp_path / "out.log")


def test_log_config_yaml_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "logging.yml"
    config_file.write_text("version: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    with pytest.raises(ConfigError, match="needs PyYAML"):
        configure(Config(log_config=str(config_file)))


def test_log_config_ini(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    config_file = tmp_path / "logging.ini"
    config_file.write_text(
        f"""
[loggers]
keys=root,error

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_error]
level=DEBUG
handlers=file
qualname={ERROR_LOGGER}
propagate=0

[handler_file]
class=FileHandler
level=DEBUG
formatter=plain
args=({str(out)!r},)

[formatter_plain]
format=%(message)s
"""
    )
    configure(Config(log_config=str(config_file)))
    _check_file_logging(out)


def test_log_config_errors_are_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}')
    with pytest.raises(ConfigError) as info:
        configure(Config(log_config=str(broken)))
    assert "\n" not in str(info.value)
    assert "is not a valid logging config" in str(info.value)

    with pytest.raises(ConfigError, match="cannot read --log-config"):
        configure(Config(log_config=str(tmp_path / "missing.json")))


def test_no_access_log_wins_over_log_config(tmp_path: Path) -> None:
    config_file = tmp_path / "logging.json"
    config_file.write_text(json.dumps({"version": 1, "disable_existing_loggers": False}))
    configure(Config(log_config=str(config_file), access_log=False))
    assert not AccessLogger().enabled


def test_json_line_with_quotes_and_backslashes_is_valid() -> None:
    access, stream = capture(JSONAccessFormatter())
    access.log('a"b\\c', "GET", '/"quoted"\\path\u00e9', "1.1", 200, 0, 0.001)
    entry = json.loads(stream.getvalue())
    assert entry["client"] == 'a"b\\c'
    assert entry["path"] == '/"quoted"\\path\u00e9'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}", entry["time"])


def test_records_from_the_template_are_fresh() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("pronghorn.test.records")
    logger.handlers[:] = [Keep()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    access = AccessLogger(logger)
    access.log("a", "GET", "/1", "1.1", 200, 1, 0.0)
    time.sleep(0.01)
    access.log("b", "GET", "/2", "1.1", 404, 2, 0.0)
    first, second = seen
    assert first.getMessage().startswith("a - ")
    assert second.getMessage().startswith("b - ")
    assert second.created > first.created
    assert second.relativeCreated > first.relativeCreated
    assert first.name == "pronghorn.test.records"
    assert first.levelname == "INFO"
    assert first.process == os.getpid()
    assert first.thread == threading.get_ident()


def test_custom_record_factory_is_honoured() -> None:
    original = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = original(*args, **kwargs)
        record.tagged = True
        return record

    logging.setLogRecordFactory(factory)
    try:
        access, stream = capture(logging.Formatter("%(tagged)s %(message)s"))
        access.log("c", "GET", "/", "1.1", 200, 0, 0.0)
    finally:
        logging.setLogRecordFactory(original)
    assert stream.getvalue().startswith("True c - ")


def test_buffered_handler_flushes_soon_without_more_lines() -> None:
    class Stream(io.StringIO):
        flushed = threading.Event()

        def flush(self) -> None:
            self.flushed.set()

    stream = Stream()
    handler = BufferedStreamHandler(stream, interval=0.05)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(logging.LogRecord("x", logging.INFO, "", 0, "one line", None, None))
    assert stream.flushed.wait(5), "the pending line was never flushed"
    assert stream.getvalue() == "one line\n"
    handler.close()


def test_buffered_handler_writes_queued_lines_in_order_in_one_write() -> None:
    writes: list[str] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return super().write(text)

    stream = Stream()
    handler = BufferedStreamHandler(stream, interval=60)  # only flush() writes here
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.write_line("direct one")
    handler.handle(logging.LogRecord("x", logging.INFO, "", 0, "record two", None, None))
    handler.write_line("direct three")
    assert stream.getvalue() == "", "lines are queued, not written per line"
    handler.flush()
    assert writes == ["direct one\nrecord two\ndirect three\n"]
    handler.close()


def test_buffered_handler_bounds_its_queue() -> None:
    stream = io.StringIO()
    handler = BufferedStreamHandler(stream, interval=60, max_pending=10)
    for number in range(25):
        handler.write_line(f"line {number}")
    # The logging thread wrote the queue itself at 10 and 20 lines: 5 are still pending.
    assert stream.getvalue().splitlines() == [f"line {number}" for number in range(20)]
    assert len(handler._pending) == 5
    handler.flush()
    assert stream.getvalue().splitlines() == [f"line {number}" for number in range(25)]
    handler.close()


def test_default_access_line_matches_the_generic_formatter() -> None:
    direct, direct_stream = capture(AccessFormatter())
    direct.log("c", "GET", "/x", "1.1", 200, 5, 0.002)
    generic, generic_stream = capture(AccessFormatter("%(asctime)s %(message)s"))
    generic.log("c", "GET", "/x", "1.1", 200, 5, 0.002)
    assert direct_stream.getvalue().split(" ", 2)[2] == generic_stream.getvalue().split(" ", 2)[2]
    assert re.fullmatch(
        r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d c - "GET /x HTTP/1\.1" 200 5 2\.00ms\n',
        direct_stream.getvalue(),
    )


def buffered_capture() -> tuple[AccessLogger, BufferedStreamHandler, io.StringIO]:
    """The default access setup: one BufferedStreamHandler with the default text format."""
    stream = io.StringIO()
    handler = BufferedStreamHandler(stream)
    handler.setFormatter(AccessFormatter())
    logger = logging.getLogger("pronghorn.test.direct")
    logger.handlers[:] = [handler]
    logger.filters.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return AccessLogger(logger), handler, stream


def test_the_direct_line_is_the_record_line() -> None:
    """The default setup writes without a LogRecord; the line is the one a record makes."""
    direct, handler, direct_stream = buffered_capture()
    direct.log("c\x1b", b"GET", b"/x\r\n", "1.1", 200, 5, 0.002)
    handler.flush()
    recorded, recorded_stream = capture(AccessFormatter())
    recorded.log("c\x1b", b"GET", b"/x\r\n", "1.1", 200, 5, 0.002)
    assert direct_stream.getvalue().split(" ", 2)[2] == recorded_stream.getvalue().split(" ", 2)[2]
    assert direct_stream.getvalue().endswith('c\\x1b - "GET /x\\x0d\\x0a HTTP/1.1" 200 5 2.00ms\n')
    handler.close()


def test_queued_access_lines_keep_their_request_time_and_order() -> None:
    """The direct path queues values; formatting at write time must not change the line."""
    _, handler, stream = buffered_capture()
    created = time.mktime((2020, 1, 2, 3, 4, 5, 0, 0, -1))
    handler.queue_access([(created, "c", b"GET", b"/a", "1.1", 200, 1, 0.001)])
    handler.write_line("between")
    handler.queue_access([(created + 1, "c", b"PURGE", b"/\xff", "2", 404, 0, 0.0)])
    assert stream.getvalue() == ""
    handler.flush()
    assert stream.getvalue().splitlines() == [
        '2020-01-02 03:04:05 c - "GET /a HTTP/1.1" 200 1 1.00ms',
        "between",
        '2020-01-02 03:04:06 c - "PURGE /\\xff HTTP/2" 404 0 0.00ms',
    ]
    handler.close()


def test_a_filter_still_sees_every_access_record() -> None:
    access, handler, stream = buffered_capture()
    seen: list[str] = []

    def keep_errors(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return record.args is not None and record.args[4] >= 400  # type: ignore[index]

    handler.addFilter(keep_errors)
    access.log("c", "GET", "/ok", "1.1", 200, 0, 0.0)
    access.log("c", "GET", "/missing", "1.1", 404, 0, 0.0)
    assert len(seen) == 2
    handler.flush()
    assert "/ok" not in stream.getvalue()
    assert "/missing" in stream.getvalue()
    handler.close()


def test_a_failing_stream_is_reported_as_logging_does(monkeypatch: pytest.MonkeyPatch) -> None:
    access, handler, _ = buffered_capture()
    errors: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", errors.append)

    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    handler.setStream(Broken())
    access.log("c", "GET", "/", "1.1", 200, 0, 0.0)  # never raises into the server
    access.log("c", "GET", "/second", "1.1", 200, 0, 0.0)
    handler.flush()  # the queued lines are written (and lost) here
    assert len(errors) == 1
    assert errors[0].getMessage().endswith("(and 1 more lines)")
    assert " c - " in errors[0].getMessage()
    handler.close()

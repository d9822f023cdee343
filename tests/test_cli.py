"""cli.py: the parser generated from Config, uvicorn-compatible flags, precedence, exit codes."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pronghorn import __version__, cli, config
from pronghorn.compiled import pure_python_requested
from pronghorn.config import Config
from pronghorn.errors import AppImportError, LifespanFailure, StartupError

CLEAN_ENV: dict[str, str] = {}


def parse(*argv: str) -> dict[str, Any]:
    values, _ = cli.parse_cli(list(argv))
    return values


def load(*argv: str, environ: dict[str, str] | None = None, directory: Path) -> Config:
    values, config_file = cli.parse_cli(list(argv))
    return config.load(
        values, environ=environ or CLEAN_ENV, config_file=config_file, directory=directory
    )


# --------------------------------------------------------------------------- generation
def test_every_setting_has_a_flag() -> None:
    parser = cli.build_parser()
    options = {opt for action in parser._actions for opt in action.option_strings}
    for field in config.fields():
        if field.metadata.get("cli", True):
            assert config.flag_of(field.name) in options, field.name
            if field.metadata.get("short"):
                assert field.metadata["short"] in options


def test_help_is_grouped() -> None:
    text = cli.build_parser().format_help()
    for title in (
        "application:",
        "sockets:",
        "processes:",
        "HTTP:",
        "WebSocket:",
        "TLS:",
        "logging:",
    ):
        assert title in text
    assert "[default: 8000]" in text


def test_only_given_flags_are_returned() -> None:
    assert parse() == {}
    assert parse("--port", "9000") == {"port": 9000}
    assert parse("main:app") == {"app": "main:app"}


def test_flag_styles() -> None:
    assert parse("--access-log") == {"access_log": True}
    assert parse("--no-access-log") == {"access_log": False}
    assert parse("--reload-dir", "a", "--reload-dir", "b") == {"reload_dirs": ["a", "b"]}
    assert parse("-H", "X-A: 1", "--header", "X-B: 2") == {"headers": ["X-A: 1", "X-B: 2"]}
    assert parse("-b", "127.0.0.1:1", "--bind", "unix:/tmp/s") == {
        "bind": ["127.0.0.1:1", "unix:/tmp/s"]
    }
    assert parse("--lifespan", "off") == {"lifespan": "off"}
    assert parse("--timeout-keep-alive", "2.5") == {"timeout_keep_alive": 2.5}
    assert parse("--limit-concurrency", "none") == {"limit_concurrency": None}
    assert parse("--use-colors") == {"use_colors": True}
    assert parse("--no-use-colors") == {"use_colors": False}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--ws-per-message-deflate", "false"], {"ws_per_message_deflate": False}),
        (["--ws-per-message-deflate=true"], {"ws_per_message_deflate": True}),
        (["--proxy-headers=no"], {"proxy_headers": False}),
        (["--reload", "app:app"], {"reload": True, "app": "app:app"}),
        (["--reload", "1", "app:app"], {"reload": True, "app": "app:app"}),
        (["--", "--reload"], {"app": "--reload"}),
    ],
)
def test_boolean_flags_take_optional_values(argv: list[str], expected: dict[str, Any]) -> None:
    assert parse(*argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "abc"],
        ["--lifespan", "sometimes"],
        ["--timeout-keep-alive", "soon"],
        ["--no-such-flag"],
        ["--port"],
        ["--workers", "none"],
    ],
)
def test_bad_flags_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("pronghorn: error: ")
    assert err.count("\n") == 1


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    build = "pure-Python" if pure_python_requested() else "compiled"
    assert capsys.readouterr().out.startswith(f"pronghorn {__version__} ({build} hot path) with ")


# --------------------------------------------------------------------------- uvicorn parity
UVICORN_ARGV = [
    "main:app",
    "--host", "0.0.0.0",
    "--port", "9001",
    "--uds", "/tmp/app.sock",
    "--fd", "3",
    "--reload",
    "--reload-dir", "src",
    "--reload-dir", "lib",
    "--reload-include", "*.toml",
    "--reload-exclude", "*.tmp",
    "--reload-delay", "0.5",
    "--workers", "3",
    "--loop", "asyncio",
    "--ws-max-size", "1000",
    "--ws-max-queue", "8",
    "--ws-ping-interval", "5",
    "--ws-ping-timeout", "6",
    "--ws-per-message-deflate", "false",
    "--lifespan", "on",
    "--interface", "asgi3",
    "--env-file", "prod.env",
    "--log-config", "log.json",
    "--log-level", "debug",
    "--no-access-log",
    "--use-colors",
    "--no-proxy-headers",
    "--no-server-header",
    "--no-date-header",
    "--forwarded-allow-ips", "10.0.0.1,10.0.0.2",
    "--root-path", "/api",
    "--limit-concurrency", "50",
    "--backlog", "128",
    "--limit-max-requests", "1000",
    "--timeout-keep-alive", "7",
    "--timeout-graceful-shutdown", "9",
    "--ssl-keyfile", "key.pem",
    "--ssl-certfile", "cert.pem",
    "--ssl-keyfile-password", "secret",
    "--ssl-cert-reqs", "2",
    "--ssl-ca-certs", "ca.pem",
    "--ssl-ciphers", "ECDHE",
    "--header", "X-Served-By: test",
    "--app-dir", "srcdir",
    "--factory",
    "--http", "h11",
    "--ws", "wsproto",
    "--ssl-version", "5",
    "--h11-max-incomplete-event-size", "32768",
    "--reset-contextvars",
]  # fmt: skip


def _header_pairs(headers: list[Any]) -> list[tuple[str, str]]:
    pairs = []
    for header in headers:
        name, value = header.split(":", 1) if isinstance(header, str) else header
        pairs.append((name.strip(), value.strip()))
    return pairs


def test_uvicorn_argv_parses_like_uvicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uvicorn_main = pytest.importorskip("uvicorn.main")
    monkeypatch.chdir(tmp_path)  # uvicorn checks that these paths exist
    for directory in ("src", "lib", "srcdir"):
        (tmp_path / directory).mkdir()
    for file in ("prod.env", "log.json"):
        (tmp_path / file).write_text("")
    ours = parse(*UVICORN_ARGV)
    context = uvicorn_main.main.make_context("uvicorn", list(UVICORN_ARGV))
    theirs = context.params
    compared = 0
    for name, value in ours.items():
        if name not in theirs:
            continue
        expected = theirs[name]
        if isinstance(expected, tuple):
            expected = list(expected)
        if name == "ws_per_message_deflate" or isinstance(value, bool):
            expected = bool(expected)
        if name == "headers":
            # uvicorn >= 0.5x splits "Name: value" into pairs at parse time; older ones later.
            value, expected = _header_pairs(value), _header_pairs(expected)
        assert value == expected, name
        compared += 1
    assert compared >= 40
    # Every uvicorn-compatible value above also makes a valid Config.
    Config(**ours)


def test_every_uvicorn_flag_is_accepted() -> None:
    # Whatever uvicorn version is installed: each of its options (and --no- forms) is ours too,
    # and each of its fixed choices is one of ours.
    uvicorn_main = pytest.importorskip("uvicorn.main")
    click = pytest.importorskip("click")
    command = getattr(uvicorn_main.main, "__self__", uvicorn_main.main)
    ours = {
        flag: action for action in cli.build_parser()._actions for flag in action.option_strings
    }
    checked = 0
    for param in command.params:
        for flag in [*param.opts, *param.secondary_opts]:
            if flag.startswith("-"):
                assert flag in ours, f"uvicorn's {flag} is not accepted"
                checked += 1
        if isinstance(param.type, click.Choice) and param.opts[0] in ours:
            assert set(param.type.choices) <= set(ours[param.opts[0]].choices or ())
    assert checked >= 50


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--http", "h11"], {"http": "h11"}),
        (["--ws", "websockets-sansio"], {"ws": "websockets-sansio"}),
        (["--ssl-version", "5"], {"ssl_version": 5}),
        (["--h11-max-incomplete-event-size", "1000"], {"h11_max_incomplete_event_size": 1000}),
        (["--reset-contextvars"], {"reset_contextvars": True}),
    ],
)
def test_uvicorn_only_flags(argv: list[str], expected: dict[str, Any]) -> None:
    assert parse(*argv) == expected
    Config(**expected)


def test_unknown_implementations_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.parse_cli(["--http", "mymodule:Protocol"])
    assert info.value.code == 2
    assert "invalid choice: 'mymodule:Protocol'" in capsys.readouterr().err


# --------------------------------------------------------------------------- precedence
def test_precedence_cli_env_file_default(tmp_path: Path) -> None:
    (tmp_path / "pronghorn.toml").write_text(
        'port = 1111\nroot-path = "/from-file"\nbacklog = 10\nlog_level = "warning"\n'
    )
    environ = {
        "PRONGHORN_PORT": "2222",
        "PRONGHORN_ROOT_PATH": "/from-env",
        "PRONGHORN_BACKLOG": "20",
    }
    settings = load("--port", "3333", environ=environ, directory=tmp_path)
    assert settings.port == 3333  # CLI wins
    assert settings.root_path == "/from-env"  # env beats the file
    assert settings.backlog == 20
    assert settings.log_level == "warning"  # only the file says
    assert settings.host == "127.0.0.1"  # nobody says: default


def test_pyproject_tool_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.pronghorn]\nworkers = 4\n"
    )
    assert load(directory=tmp_path).workers == 4
    assert load("--workers", "2", directory=tmp_path).workers == 2


def test_extra_env_names(tmp_path: Path) -> None:
    environ = {"PORT": "5000", "WEB_CONCURRENCY": "3", "FORWARDED_ALLOW_IPS": "*"}
    settings = load(environ=environ, directory=tmp_path)
    assert (settings.port, settings.workers, settings.forwarded_allow_ips) == (5000, 3, "*")
    # The PRONGHORN_ name comes first.
    assert load(environ={**environ, "PRONGHORN_PORT": "6000"}, directory=tmp_path).port == 6000


def test_explicit_config_file(tmp_path: Path) -> None:
    other = tmp_path / "deploy.toml"
    other.write_text("port = 4444\n")
    (tmp_path / "pronghorn.toml").write_text("port = 1111\n")
    assert load("--config", str(other), directory=tmp_path).port == 4444


def test_cli_none_overrides_file(tmp_path: Path) -> None:
    (tmp_path / "pronghorn.toml").write_text("limit_concurrency = 10\n")
    values, _ = cli.parse_cli(["--limit-concurrency", "none"])
    settings = cli.load_settings(values, None, environ={}, directory=tmp_path)
    assert settings.limit_concurrency is None
    assert cli.load_settings({}, None, environ={}, directory=tmp_path).limit_concurrency == 10


# --------------------------------------------------------------------------- main()
@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Config]:
    """Record what main() would serve, without serving (main's own logic is under test)."""
    seen: list[Config] = []

    def fake_serve(settings: Config, app: object | None = None) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr("pronghorn.runner.serve", fake_serve)
    monkeypatch.chdir(tmp_path)
    for name in ("PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    return seen


def test_main_reads_all_sources(
    served: list[Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pronghorn.toml").write_text('app = "from_file:app"\nport = 1\nworkers = 1\n')
    monkeypatch.setenv("PRONGHORN_PORT", "2")
    assert cli.main(["--host", "0.0.0.0"]) == 0
    (settings,) = served
    assert (settings.app, settings.port, settings.host) == ("from_file:app", 2, "0.0.0.0")


def test_main_bad_setting_value_exits_2(
    served: list[Config], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--port", "70000"]) == 2
    assert capsys.readouterr().err == (
        "pronghorn: error: --port must be between 0 and 65535, not 70000\n"
    )
    assert served == []


def test_main_bad_env_value_exits_2(
    served: list[Config], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRONGHORN_WORKERS", "many")
    assert cli.main([]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AppImportError("Could not import module 'x'."), 1),
        (StartupError("[Errno 98] address already in use"), 1),
        (LifespanFailure("the app failed its startup"), 3),
    ],
)
def test_main_maps_errors_to_exit_codes(
    error: Exception,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    def failing_serve(settings: Config, app: object | None = None) -> int:
        raise error

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("pronghorn.runner.serve", failing_serve)
    assert cli.main([]) == code
    assert capsys.readouterr().err == f"pronghorn: error: {error}\n"


def test_parser_defaults_are_suppressed() -> None:
    parser = cli.build_parser()
    for action in parser._actions:
        if action.dest not in ("help", "version"):
            assert action.default is argparse.SUPPRESS, action.dest


def test_config_fields_unchanged_by_cli() -> None:
    # The CLI never declares a setting of its own: every dest is a Config field (or --config).
    names = {f.name for f in dataclasses.fields(Config)} | {"config_file", "help", "version"}
    assert {a.dest for a in cli.build_parser()._actions} <= names

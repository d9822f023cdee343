"""config.py: conversion of environment/TOML values, validation, file discovery, precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pronghorn import config
from pronghorn.config import Config
from pronghorn.errors import ConfigError


def test_defaults_are_valid_and_match_the_design() -> None:
    settings = Config()
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.timeout_keep_alive == 5.0
    assert settings.limit_request_header_size == 65536
    assert settings.ws_max_size == 16 * 1024 * 1024


def test_every_setting_has_help_and_group() -> None:
    for field in config.fields():
        assert field.metadata["help"].endswith((".", ")")), field.name
        assert field.metadata["group"], field.name


def test_list_defaults_are_not_shared() -> None:
    first, second = Config(), Config()
    assert first.headers is not second.headers


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("port", "8080", 8080),
        ("timeout_keep_alive", "2.5", 2.5),
        ("limit_concurrency", "none", None),
        ("limit_concurrency", "", None),
        ("limit_concurrency", 10, 10),
        ("reload", "yes", True),
        ("reload", "OFF", False),
        ("reload", True, True),
        ("use_colors", "null", None),
        ("headers", "X-A: 1, X-B: 2", ["X-A: 1", "X-B: 2"]),
        ("reload_dirs", ["a", "b"], ["a", "b"]),
        ("lifespan", "on", "on"),
        ("host", "::1", "::1"),
        ("uds_permissions", 660, "660"),
    ],
)
def test_convert(name: str, raw: Any, value: Any) -> None:
    assert config.convert(name, raw) == value


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("port", "eighty", "--port takes a whole number, not 'eighty'"),
        ("timeout_keep_alive", "soon", "--timeout-keep-alive takes a number, not 'soon'"),
        ("port", True, "--port takes a number, not True"),
        ("reload", "maybe", "--reload takes true or false, not 'maybe'"),
        ("lifespan", "sometimes", "--lifespan must be one of auto, on, off, not 'sometimes'"),
        ("headers", 5, "--header takes a list, not 5"),
    ],
)
def test_convert_errors_name_the_flag(name: str, raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.convert(name, raw)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"port": 70000}, "--port must be between 0 and 65535"),
        ({"workers": 0}, "--workers must be at least 1"),
        ({"backlog": 0}, "--backlog must be positive"),
        ({"wsgi_threads": -1}, "--wsgi-threads must be positive"),
        ({"headers": ["no colon"]}, "--header must look like 'Name: value'"),
        ({"ssl_cert_reqs": 5}, "--ssl-cert-reqs must be 0, 1 or 2"),
        ({"ssl_version": 3}, "--ssl-version 3: TLS 1.0 and 1.1 are deprecated"),
        ({"ssl_version": 4}, "--ssl-version 4: TLS 1.0 and 1.1 are deprecated"),
        ({"ssl_version": 16}, "--ssl-version 16 is the client-side protocol"),
        ({"ssl_version": 99}, "--ssl-version 99 is not an ssl.PROTOCOL_"),
        (
            {"ssl_version": 5, "ssl_min_version": "TLSv1.3"},
            "--ssl-version 5 pins TLS 1.2, which --ssl-min-version TLSv1.3 refuses",
        ),
        ({"h11_max_incomplete_event_size": 0}, "--h11-max-incomplete-event-size must be positive"),
    ],
)
def test_validation(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**settings)


def test_flag_and_choice_introspection() -> None:
    assert config.flag_of("reload_dirs") == "--reload-dir"
    assert config.flag_of("timeout_keep_alive") == "--timeout-keep-alive"
    assert config.choices_of("log_level") == (
        "critical",
        "error",
        "warning",
        "info",
        "debug",
        "trace",
    )
    assert config.choices_of("port") is None
    assert config.base_type(config.hint_of("fd")) == (int, True)
    with pytest.raises(KeyError):
        config.flag_of("nope")


def test_environment() -> None:
    values = config.from_environment({"PRONGHORN_WORKERS": "3", "UNRELATED": "x"})
    assert values == {"workers": 3}


def test_config_file_discovery(tmp_path: Path) -> None:
    assert config.find_config_file(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert config.find_config_file(tmp_path) is None  # no [tool.pronghorn]
    (tmp_path / "pyproject.toml").write_text("[tool.pronghorn]\nport = 1\n")
    assert config.find_config_file(tmp_path) == tmp_path / "pyproject.toml"
    (tmp_path / "pronghorn.toml").write_text("port = 2\n")
    assert config.find_config_file(tmp_path) == tmp_path / "pronghorn.toml"


def test_config_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "pronghorn.toml"
    bad.write_text("port = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        config.from_file(bad)
    bad.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        config.from_file(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.from_file(tmp_path / "missing.toml")


def test_file_values_use_dashes_or_underscores(tmp_path: Path) -> None:
    path = tmp_path / "pronghorn.toml"
    path.write_text('root-path = "/a"\nws_max_size = 10\nheaders = ["X-A: 1"]\n')
    assert config.from_file(path) == {"root_path": "/a", "ws_max_size": 10, "headers": ["X-A: 1"]}


def test_load_precedence(tmp_path: Path) -> None:
    (tmp_path / "pronghorn.toml").write_text("port = 1\nbacklog = 5\nhost = '0.0.0.0'\n")
    settings = config.load(
        {"port": 3, "workers": None},
        environ={"PRONGHORN_PORT": "2", "PRONGHORN_BACKLOG": "6"},
        directory=tmp_path,
    )
    assert (settings.port, settings.backlog, settings.host, settings.workers) == (
        3,
        6,
        "0.0.0.0",
        1,
    )

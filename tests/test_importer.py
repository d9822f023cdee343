"""importer.py: APP strings to ASGI 3 callables; every failure is one line."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pronghorn.config import Config
from pronghorn.errors import AppImportError
from pronghorn.importer import (
    ASGI2Adapter,
    detect_interface,
    import_from_string,
    load_app,
    load_env_file,
    parse_env,
)
from pronghorn.server.wsgi import WSGIAdapter


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path whose modules are forgotten after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(directory: Path, name: str, source: str) -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def one_line_error(import_str: str) -> str:
    with pytest.raises(AppImportError) as info:
        import_from_string(import_str)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- import_from_string
def test_imports_nested_attribute(app_dir: Path) -> None:
    write(app_dir, "nested_app.py", "class Holder:\n    class Inner:\n        value = 42\n")
    assert import_from_string("nested_app:Holder.Inner.value") == 42


def test_imports_from_package(app_dir: Path) -> None:
    write(app_dir, "pkg_app/__init__.py", "")
    write(app_dir, "pkg_app/main.py", "app = 'the app'\n")
    assert import_from_string("pkg_app.main:app") == "the app"


@pytest.mark.parametrize("bad", ["noattr", "module:", ":app", ""])
def test_bad_format(bad: str) -> None:
    assert "must be in format '<module>:<attribute>'" in one_line_error(bad)


def test_missing_module() -> None:
    message = one_line_error("no_such_module_xyz:app")
    assert message == "Could not import module 'no_such_module_xyz'."


def test_missing_submodule_of_existing_package(app_dir: Path) -> None:
    write(app_dir, "pkg_only/__init__.py", "")
    assert one_line_error("pkg_only.nope:app") == "Could not import module 'pkg_only.nope'."


def test_missing_attribute(app_dir: Path) -> None:
    write(app_dir, "attr_app.py", "app = 1\n")
    assert one_line_error("attr_app:nope") == "Attribute 'nope' not found in module 'attr_app'."
    assert "'app.sub'" in one_line_error("attr_app:app.sub")


def test_import_error_inside_user_module_is_not_a_missing_module(app_dir: Path) -> None:
    write(app_dir, "broken_dep.py", "import this_dependency_is_missing_xyz\napp = None\n")
    message = one_line_error("broken_dep:app")
    assert message.startswith("Error while importing module 'broken_dep': ModuleNotFoundError:")
    assert "this_dependency_is_missing_xyz" in message
    assert "broken_dep.py:1" in message


def test_exception_at_import_time_names_the_place(app_dir: Path) -> None:
    write(app_dir, "raising_app.py", "x = 1\nraise RuntimeError('boom\\nsecond line')\n")
    message = one_line_error("raising_app:app")
    assert "RuntimeError: boom second line" in message
    assert "raising_app.py:2" in message


def test_syntax_error_in_user_module(app_dir: Path) -> None:
    write(app_dir, "syntax_app.py", "def broken(:\n")
    message = one_line_error("syntax_app:app")
    assert "SyntaxError" in message
    assert "syntax_app.py" in message


def test_cause_is_kept_for_debugging(app_dir: Path) -> None:
    write(app_dir, "cause_app.py", "1 / 0\n")
    with pytest.raises(AppImportError) as info:
        import_from_string("cause_app:app")
    assert isinstance(info.value.__cause__, ZeroDivisionError)


# --------------------------------------------------------------------------- interface detection
async def asgi3(scope: Any, receive: Any, send: Any) -> None:
    pass


class ASGI3Class:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class ASGI2Class:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await send({"type": "seen", "scope": self.scope})


def asgi2_function(scope: Any) -> Any:
    async def instance(receive: Any, send: Any) -> None:
        pass

    return instance


def wsgi(environ: Any, start_response: Any) -> list[bytes]:
    return []


class WSGIClass:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


def sync_asgi3_shim(scope: Any, receive: Any, send: Any) -> Any:
    return asgi3(scope, receive, send)


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (asgi3, "asgi3"),
        (ASGI3Class(), "asgi3"),
        (ASGI2Class, "asgi2"),
        (asgi2_function, "asgi2"),
        (wsgi, "wsgi"),
        (WSGIClass(), "wsgi"),
        (sync_asgi3_shim, "asgi3"),
    ],
)
def test_detect_interface(app: Any, expected: str) -> None:
    assert detect_interface(app) == expected


def test_detects_real_frameworks() -> None:
    import flask
    import starlette.applications

    assert detect_interface(flask.Flask("x")) == "wsgi"
    assert detect_interface(starlette.applications.Starlette()) == "asgi3"


def test_load_app_wraps_by_interface() -> None:
    assert load_app(Config(), asgi3) is asgi3
    assert isinstance(load_app(Config(), ASGI2Class), ASGI2Adapter)
    assert isinstance(load_app(Config(), wsgi), WSGIAdapter)
    # --interface forces a choice over detection.
    assert isinstance(load_app(Config(interface="wsgi"), asgi3), WSGIAdapter)
    assert load_app(Config(interface="asgi3"), wsgi) is wsgi


def test_asgi2_adapter_calls_instance() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {}

    asyncio.run(ASGI2Adapter(ASGI2Class)({"type": "http"}, receive, send))
    assert sent == [{"type": "seen", "scope": {"type": "http"}}]


def test_load_app_default_is_demo() -> None:
    from pronghorn import demo

    assert load_app(Config()) is demo.app


def test_load_app_not_callable(app_dir: Path) -> None:
    write(app_dir, "notcallable_app.py", "app = 'a string'\n")
    with pytest.raises(AppImportError, match="not an application: it is a str"):
        load_app(Config(app="notcallable_app:app"))


def test_factory(app_dir: Path) -> None:
    write(
        app_dir,
        "factory_app.py",
        """
        async def app(scope, receive, send):
            pass

        def create():
            return app

        def create_nothing():
            return None

        def create_broken():
            raise ValueError("bad settings")
        """,
    )
    module_app = import_from_string("factory_app:app")
    assert load_app(Config(app="factory_app:create", factory=True)) is module_app
    with pytest.raises(AppImportError, match="not an application: it is a NoneType"):
        load_app(Config(app="factory_app:create_nothing", factory=True))
    with pytest.raises(AppImportError, match=r"Error calling the factory .*ValueError: bad"):
        load_app(Config(app="factory_app:create_broken", factory=True))


def test_app_dir_is_prepended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    write(tmp_path, "appdir_only_app.py", "async def app(scope, receive, send):\n    pass\n")
    try:
        app = load_app(Config(app="appdir_only_app:app", app_dir=str(tmp_path)))
        assert app.__module__ == "appdir_only_app"
        assert sys.path[0] == str(tmp_path)
    finally:
        sys.modules.pop("appdir_only_app", None)


# --------------------------------------------------------------------------- env files
def test_parse_env() -> None:
    text = textwrap.dedent(
        """
        # a comment
        PLAIN=value
        export EXPORTED=1
        SPACED = spaced value  # trailing comment
        DOUBLE="quoted # not a comment\\nnext"
        SINGLE='raw \\n kept'
        EMPTY=
        """
    )
    assert parse_env(text) == {
        "PLAIN": "value",
        "EXPORTED": "1",
        "SPACED": "spaced value",
        "DOUBLE": "quoted # not a comment\nnext",
        "SINGLE": "raw \\n kept",
        "EMPTY": "",
    }


def test_parse_env_rejects_garbage_in_one_line() -> None:
    with pytest.raises(AppImportError, match=r"^--env-file line 2 is not KEY=VALUE: 'oops'$"):
        parse_env("A=1\noops\n")


def test_env_file_does_not_override_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text("PRONGHORN_TEST_NEW=from-file\nPRONGHORN_TEST_SET=from-file\n")
    monkeypatch.setenv("PRONGHORN_TEST_SET", "from-env")
    monkeypatch.delenv("PRONGHORN_TEST_NEW", raising=False)
    load_env_file(str(env))
    try:
        assert os.environ["PRONGHORN_TEST_NEW"] == "from-file"
        assert os.environ["PRONGHORN_TEST_SET"] == "from-env"
    finally:
        os.environ.pop("PRONGHORN_TEST_NEW", None)


def test_env_file_is_applied_before_import(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRONGHORN_TEST_GREETING", raising=False)
    (app_dir / "app.env").write_text("PRONGHORN_TEST_GREETING=hello\n")
    write(
        app_dir,
        "env_app.py",
        """
        import os
        GREETING = os.environ["PRONGHORN_TEST_GREETING"]

        async def app(scope, receive, send):
            pass
        """,
    )
    try:
        load_app(Config(app="env_app:app", env_file=str(app_dir / "app.env")))
        assert sys.modules["env_app"].GREETING == "hello"
    finally:
        os.environ.pop("PRONGHORN_TEST_GREETING", None)


def test_missing_env_file() -> None:
    with pytest.raises(AppImportError, match=r"Cannot read --env-file /nonexistent/\.env"):
        load_env_file("/nonexistent/.env")

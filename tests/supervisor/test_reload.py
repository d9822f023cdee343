"""--reload: which changes count (pure), and a real server reloading a src-layout app factory."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from supervisor_harness import Pronghorn, get, reaped, served_by, wait_for, write_app

from pronghorn.config import Config
from pronghorn.supervisor.reload import ChangeFilter, Watcher, watched_directories


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path.resolve()


@pytest.mark.parametrize(
    ("relative", "counts"),
    [
        ("app.py", True),
        ("pkg/views.py", True),
        ("templates/index.html", False),
        (".app.py.swp", False),
        ("app.py~", False),
        ("#app.py#", False),
        (".#app.py", False),
        ("4913", False),
        ("pkg/__pycache__/views.cpython-311.pyc", False),
        (".git/hooks/pre-commit.py", False),
        (".venv/lib/python3.11/site-packages/x.py", False),
        ("node_modules/x/y.py", False),
        (".env", False),
    ],
)
def test_default_filter(root: Path, relative: str, counts: bool) -> None:
    assert ChangeFilter([root]).counts(str(root / relative)) is counts


def test_includes_and_excludes(root: Path) -> None:
    change_filter = ChangeFilter(
        [root], includes=["*.html", ".env"], excludes=["tests", "migrations/*.py"]
    )
    assert change_filter.counts(str(root / "templates" / "index.html"))
    assert change_filter.counts(str(root / ".env"))
    assert not change_filter.counts(str(root / "tests" / "test_app.py"))
    assert not change_filter.counts(str(root / "migrations" / "0001.py"))
    assert change_filter.counts(str(root / "app.py"))


def test_virtualenv_without_a_hidden_name(root: Path) -> None:
    (root / "env").mkdir()
    (root / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert not ChangeFilter([root]).counts(str(root / "env" / "lib" / "x.py"))
    assert ChangeFilter([root]).counts(str(root / "envtools" / "x.py"))


def test_outside_the_watched_directories(root: Path) -> None:
    assert not ChangeFilter([root / "a"]).counts(str(root / "b" / "app.py"))


def test_watched_directories_add_app_dir_outside(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "project" / "src").mkdir(parents=True)
    (root / "elsewhere").mkdir()
    monkeypatch.chdir(root / "project")
    assert watched_directories(Config(app_dir="src")) == [root / "project"]
    assert watched_directories(Config(app_dir=str(root / "elsewhere"))) == [
        root / "project",
        root / "elsewhere",
    ]
    assert watched_directories(Config(reload_dirs=[str(root), str(root / "project")])) == [root]


def test_env_file_reloads_without_an_include(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root)
    watcher = Watcher(Config(env_file=".env.local"), lambda paths: None)
    assert watcher.filter.counts(str(root / ".env.local"))
    assert not watcher.filter.counts(str(root / ".env"))


FACTORY = """
from pkg.app import app as _app

def create_app():
    return _app
"""


def test_reload_edit_break_fix(tmp_path: Path) -> None:
    """A src-layout app behind a factory: an edit serves new code; a syntax error stops the old
    worker and is reported once; the next good save serves again; an included template reloads."""
    package = tmp_path / "src" / "pkg"
    write_app(package, "v1", "app.py")
    (package / "__init__.py").write_text("")
    (package / "factory.py").write_text(FACTORY)
    (tmp_path / "templates").mkdir()
    server = Pronghorn(
        tmp_path, "pkg.factory:create_app", "--factory", "--app-dir", "src", "--reload",
        "--reload-delay", "0.05", "--reload-include", "*.html", "--port", "0",
    )  # fmt: skip
    try:
        port = server.port()
        server.wait_serving(1)
        status, body = get(port)
        assert (status, body.split()[0]) == (200, "v1")
        first = served_by(body)

        write_app(package, "v2", "app.py")
        wait_for(lambda: get(port)[1].startswith("v2"), 10, "the edit to be served")

        (package / "app.py").write_text("def broken(:\n")
        server.wait_log(r"failed to start .*; waiting for file changes", 10)
        assert server.log.count("SyntaxError") == 1, server.log
        assert server.log.count("waiting for file changes") == 1
        started = [int(p) for p in re.findall(r"Started worker process \[(\d+)\]", server.log)]
        wait_for(lambda: all(map(reaped, started)), 5, "every worker so far to be reaped")

        write_app(package, "v3", "app.py")
        wait_for(lambda: get(port)[1].startswith("v3"), 10, "the fix to be served")
        assert first not in server.worker_pids()

        before = served_by(get(port)[1])
        (tmp_path / "templates" / "index.html").write_text("<p>hi</p>")
        wait_for(lambda: served_by(get(port)[1]) != before, 10, "a template change to reload")

        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
        assert server.worker_pids() == []
    finally:
        server.stop()

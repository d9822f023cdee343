"""``python -m pronghorn`` as a real process: startup line, serving, SIGINT, exit codes."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import pronghorn
from pronghorn.errors import ConfigError

SRC = str(Path(pronghorn.__file__).resolve().parent.parent)
STARTUP = re.compile(r"Pronghorn running on (http://127\.0\.0\.1:(\d+)) \(Press CTRL\+C to quit\)")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRONGHORN_")}
    for name in ("PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"):
        env.pop(name, None)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class Pronghorn:
    """A pronghorn process whose output lines are collected by reader threads (bounded waits)."""

    def __init__(
        self,
        *args: str,
        cwd: Path,
        env: dict[str, str] | None = None,
        program: tuple[str, ...] = ("-m", "pronghorn"),
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *program, *args],
            cwd=cwd,
            env=env or environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put((name, line.rstrip("\n")))

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = 15.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                name, line = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines[name].append(line)
            match = pattern.search(line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern.pattern!r}; got {self.lines}")

    def finish(self, timeout: float = 20.0) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        self.close()
        while not self._queue.empty():
            name, line = self._queue.get_nowait()
            self.lines[name].append(line)
        return code

    def close(self) -> None:
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Pronghorn]]:
    started: list[Pronghorn] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(5)
        process.close()


def start(processes: list[Pronghorn], *args: str, cwd: Path, **env: str) -> Pronghorn:
    process = Pronghorn(*args, cwd=cwd, env=environment(**env))
    processes.append(process)
    return process


def run_to_exit(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pronghorn", *args],
        cwd=cwd,
        env=environment(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_demo_serves_and_stops_on_sigint(processes: list[Pronghorn], tmp_path: Path) -> None:
    server = start(processes, "--port", "0", cwd=tmp_path)
    url = server.wait_for_line(STARTUP).group(1)
    response = httpx.get(url + "/", timeout=5)
    assert response.status_code == 200
    assert "Pronghorn" in response.text
    server.wait_for_line(re.compile(r'"GET / HTTP/1\.1" 200 \d+'))  # the access line
    server.proc.send_signal(signal.SIGINT)
    assert server.finish() == 0
    startup_lines = [line for line in server.lines["stderr"] if STARTUP.search(line)]
    assert len(startup_lines) == 1, server.lines["stderr"]
    assert not any("Traceback" in line for line in server.lines["stderr"])


def test_json_access_log(processes: list[Pronghorn], tmp_path: Path) -> None:
    server = start(processes, "--port", "0", "--access-log-format", "json", cwd=tmp_path)
    url = server.wait_for_line(STARTUP).group(1)
    httpx.get(url + "/echo?x=%1b", timeout=5)
    line = server.wait_for_line(re.compile(r'^\{"time": ')).string
    entry = json.loads(line)
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/echo?x=%1b", 200)
    assert entry["client"].startswith("127.0.0.1:")
    assert entry["http_version"] == "1.1"
    server.proc.send_signal(signal.SIGINT)
    assert server.finish() == 0


def test_sigterm_also_stops_cleanly(processes: list[Pronghorn], tmp_path: Path) -> None:
    server = start(processes, "--port", "0", "--no-access-log", cwd=tmp_path)
    server.wait_for_line(STARTUP)
    server.proc.send_signal(signal.SIGTERM)
    assert server.finish() == 0


def test_app_from_cwd_with_settings_from_env_and_file(
    processes: list[Pronghorn], tmp_path: Path
) -> None:
    (tmp_path / "hello.py").write_text(
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                if scope["type"] != "http":
                    return
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"hello from cwd"})
            """
        )
    )
    (tmp_path / "pronghorn.toml").write_text('app = "hello:app"\nport = 1\nlifespan = "off"\n')
    # The environment beats the file's port; the CLI beats both for the access log.
    server = start(processes, "--no-access-log", cwd=tmp_path, PRONGHORN_PORT="0")
    url = server.wait_for_line(STARTUP).group(1)
    assert httpx.get(url + "/", timeout=5).text == "hello from cwd"
    server.proc.send_signal(signal.SIGINT)
    assert server.finish() == 0
    assert server.lines["stdout"] == []  # no access lines


def test_wsgi_app_by_detection(processes: list[Pronghorn], tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "flaskapp.py").write_text(
        textwrap.dedent(
            """
            import flask

            app = flask.Flask(__name__)

            @app.get("/")
            def index():
                return "flask says hi"
            """
        )
    )
    server = start(processes, "flaskapp:app", "--app-dir", "apps", "--port", "0", cwd=tmp_path)
    url = server.wait_for_line(STARTUP).group(1)
    assert httpx.get(url + "/", timeout=5).text == "flask says hi"
    server.proc.send_signal(signal.SIGINT)
    assert server.finish() == 0


def test_workers_go_through_the_supervisor(processes: list[Pronghorn], tmp_path: Path) -> None:
    server = start(processes, "--workers", "2", "--port", "0", "--no-access-log", cwd=tmp_path)
    server.wait_for_line(re.compile(r"Started supervisor process \[\d+\]"))
    url = server.wait_for_line(STARTUP).group(1)
    assert httpx.get(url + "/", timeout=5).status_code == 200
    server.proc.send_signal(signal.SIGINT)
    assert server.finish() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_module_here:app"], "Could not import module 'no_such_module_here'."),
        (["notanappstring"], "must be in format '<module>:<attribute>'"),
        (["json:nothing_here"], "Attribute 'nothing_here' not found in module 'json'."),
        (["json:dumps.__name__"], "is not an application: it is a str"),
    ],
)
def test_bad_app_exits_1_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_to_exit(*args, "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pronghorn: error: ")
    assert message in lines[0]


def test_import_time_error_exits_1_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "crashing.py").write_text("import os\nos.environ['NOPE_NOT_SET_XYZ']\n")
    result = run_to_exit("crashing:app", cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "Error while importing module 'crashing': KeyError: 'NOPE_NOT_SET_XYZ'" in line
    assert "crashing.py:2" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "crashing.py").write_text("raise ValueError('why')\n")
    result = run_to_exit("crashing:app", "--log-level", "debug", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("pronghorn: error: ")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--port", "abc"], {}),
        (["--lifespan", "maybe"], {}),
        (["--port", "99999"], {}),
        ([], {"PRONGHORN_WORKERS": "lots"}),
    ],
)
def test_bad_setting_exits_2_with_one_line(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    result = run_to_exit(*args, cwd=tmp_path, **env)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("pronghorn: error: ")


def test_lifespan_failure_exits_3(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                if scope["type"] == "lifespan":
                    await receive()
                    await send({"type": "lifespan.startup.failed", "message": "no database"})
            """
        )
    )
    result = run_to_exit("failing:app", "--port", "0", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "no database" in result.stderr


def test_port_in_use_exits_1(processes: list[Pronghorn], tmp_path: Path) -> None:
    server = start(processes, "--port", "0", cwd=tmp_path)
    port = server.wait_for_line(STARTUP).group(2)
    result = run_to_exit("--port", port, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("pronghorn: error: ")
    server.proc.send_signal(signal.SIGINT)
    assert server.finish() == 0


def test_version_and_help(tmp_path: Path) -> None:
    version = run_to_exit("--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.startswith(f"pronghorn {pronghorn.__version__} ")
    help_text = run_to_exit("--help", cwd=tmp_path)
    assert help_text.returncode == 0
    assert "--proxy-headers, --no-proxy-headers" in help_text.stdout


# --------------------------------------------------------------------------- pronghorn.run()
RUN_SCRIPT = """
import sys
import flask
import pronghorn

async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"asgi object"})

wsgi_app = flask.Flask(__name__)
wsgi_app.get("/")(lambda: "wsgi object")

if __name__ == "__main__":
    target = {"asgi": asgi_app, "wsgi": wsgi_app, "string": "embedded:asgi_app"}[sys.argv[1]]
    pronghorn.run(target, port=0, lifespan="off", access_log=False)
"""


@pytest.mark.parametrize(("kind", "body"), [("asgi", "asgi object"), ("wsgi", "wsgi object"),
                                            ("string", "asgi object")])  # fmt: skip
def test_run_embedding(kind: str, body: str, processes: list[Pronghorn], tmp_path: Path) -> None:
    (tmp_path / "embedded.py").write_text(RUN_SCRIPT)
    process = Pronghorn(kind, cwd=tmp_path, program=("embedded.py",))
    processes.append(process)
    url = process.wait_for_line(STARTUP).group(1)
    assert httpx.get(url + "/", timeout=5).text == body
    process.proc.send_signal(signal.SIGINT)
    assert process.finish() == 0


def test_run_rejects_unknown_settings() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*: prot"):
        pronghorn.run("x:app", prot=1)
    with pytest.raises(ConfigError, match="import string"):
        pronghorn.run(lambda scope, receive, send: None, workers=2)


def test_run_raises_on_lifespan_failure(tmp_path: Path) -> None:
    (tmp_path / "failing_run.py").write_text(
        textwrap.dedent(
            """
            import pronghorn
            from pronghorn.errors import LifespanFailure

            async def app(scope, receive, send):
                await receive()
                await send({"type": "lifespan.startup.failed", "message": "nope"})

            try:
                pronghorn.run(app, port=0)
            except LifespanFailure as exc:
                print("raised:", exc)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "failing_run.py"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "raised: the application failed its lifespan startup"


DJANGO_APP = """
from django.conf import settings

settings.configure(
    DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="test-only",
    MIDDLEWARE=[],
)

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse(f"django {request.method} {request.path} {request.body.decode()}")


urlpatterns = [path("hello/", index)]
wsgi = get_wsgi_application()
asgi = get_asgi_application()
"""


@pytest.mark.parametrize("attribute", ["wsgi", "asgi"])
def test_django_wsgi_and_asgi_are_detected(
    attribute: str, processes: list[Pronghorn], tmp_path: Path
) -> None:
    (tmp_path / "djapp.py").write_text(DJANGO_APP)
    server = start(
        processes, f"djapp:{attribute}", "--port", "0", "--root-path", "/site", cwd=tmp_path
    )
    url = server.wait_for_line(STARTUP).group(1)
    response = httpx.post(url + "/hello/", content=b"body!", timeout=10)
    assert response.text == "django POST /site/hello/ body!"
    server.proc.send_signal(signal.SIGINT)
    assert server.finish() == 0

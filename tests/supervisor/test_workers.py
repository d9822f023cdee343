"""Workers: real supervisor and worker processes, real signals, real sockets on 127.0.0.1.

Every wait is bounded and every process is killed in ``finally`` (see supervisor_harness)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import pytest
from supervisor_harness import Pronghorn, alive, get, served_by, wait_for, write_app

from pronghorn.config import Config
from pronghorn.supervisor.workers import Supervisor, backoff


def test_statistics_before_any_worker() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    supervisor = Supervisor(Config(workers=3), [listener])
    try:
        assert supervisor.statistics() == {
            "target": 3, "starting": 0, "serving": 0, "stopping": 0,
            "started_total": 0, "crashed_total": 0,
        }  # fmt: skip
    finally:
        supervisor.close()
        listener.close()


def test_backoff_grows_and_is_capped() -> None:
    assert backoff(1) == 0.0
    assert 0 < backoff(2) < backoff(3) < backoff(4)
    assert backoff(50) == 10.0


class Load:
    """Requests on fresh connections from a thread, recording every outcome."""

    def __init__(self, port: int, path: str = "/") -> None:
        self.port = port
        self.path = path
        self.pids: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = get(self.port, self.path, timeout=10)
            except OSError as exc:
                self.failures.append(repr(exc))
            else:
                if status == 200:
                    self.pids.append(served_by(body))
                else:
                    self.failures.append(f"status {status}")
            time.sleep(0.005)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_app(tmp_path)
    return tmp_path


def start(app_dir: Path, *args: str, env: dict[str, str] | None = None) -> Pronghorn:
    return Pronghorn(app_dir, "app:app", "--port", "0", "--no-access-log", *args, env=env)


def test_two_workers_serve_concurrently_then_sigterm_exits_0(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2")
    try:
        port = server.port()
        server.wait_serving(2)
        # The first request blocks its worker's loop, so the second can only reach the other.
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(get, port, "/block?0.6")
            time.sleep(0.2)
            second = pool.submit(get, port, "/")
            bodies = [first.result(10)[1], second.result(10)[1]]
        assert len({served_by(b) for b in bodies}) == 2
        pids = server.worker_pids()
        assert len(pids) == 2
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
        assert not any(alive(pid) for pid in pids)
    finally:
        server.stop()


def test_kill_9_replaces_the_worker_and_the_survivor_keeps_serving(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2")
    try:
        port = server.port()
        server.wait_serving(2)
        victim, survivor = server.worker_pids()
        # A keep-alive connection pinned to the survivor: none of its requests may fail.
        pinned = None
        for _ in range(50):
            candidate = HTTPConnection("127.0.0.1", port, timeout=5)
            candidate.request("GET", "/")
            if served_by(candidate.getresponse().read().decode()) == survivor:
                pinned = candidate
                break
            candidate.close()
        assert pinned is not None, "no connection reached the surviving worker"
        with Load(port) as load:
            os.kill(victim, signal.SIGKILL)
            for _ in range(40):
                pinned.request("GET", "/")
                assert served_by(pinned.getresponse().read().decode()) == survivor
                time.sleep(0.02)
            server.wait_log(r"died \(killed by SIGKILL\); restarting it", 5)
            server.wait_serving(3)
            replacement = (set(server.worker_pids()) - {survivor}).pop()
            wait_for(lambda: replacement in load.pids, 10, "the replacement to serve")
        pinned.close()
        assert not alive(victim)
    finally:
        server.stop()


def test_a_crashing_worker_is_restarted_with_backoff(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2")
    try:
        port = server.port()
        server.wait_serving(2)
        for crashes in range(1, 5):
            with pytest.raises(ConnectionError):
                get(port, "/exit")
            server.wait_log(r"died \(exit status 1\)", 5, count=crashes)
        # Four crashes over two slots: some slot crashed twice in a row and waits before starting.
        assert re.search(r"died \(exit status 1\); restarting it in 0\.\d+ s", server.log)
        wait_for(lambda: len(server.worker_pids()) == 2, 10, "both slots to be filled again")
        assert get(port)[0] == 200
    finally:
        server.stop()


def test_sighup_rolling_restart_under_load_loses_no_request(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2")
    try:
        port = server.port()
        server.wait_serving(2)
        old = set(server.worker_pids())
        with Load(port) as load:
            time.sleep(0.2)
            server.signal(signal.SIGHUP)
            server.wait_log(r"Stopped worker process", 20, count=2)
            new = set(server.worker_pids())
            wait_for(lambda: new <= set(load.pids[-50:]), 10, "both new workers to serve")
        assert not new & old
        assert len(new) == 2
        assert load.failures == []
        # A new worker served before the first old one was told to stop.
        log = server.log
        third_serving = [m.start() for m in re.finditer("Pronghorn running on", log)][2]
        assert third_serving < log.index("Stopped worker process")
    finally:
        server.stop()


def test_ttin_ttou_change_the_number_of_workers(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2")
    try:
        server.port()
        server.wait_serving(2)
        server.signal(signal.SIGTTIN)
        server.wait_serving(3)
        wait_for(lambda: len(server.worker_pids()) == 3, 5, "three workers")
        server.signal(signal.SIGTTOU)
        server.wait_log(r"Stopped worker process", 10)
        wait_for(lambda: len(server.worker_pids()) == 2, 5, "two workers")
        time.sleep(0.3)  # and it is not replaced
        assert len(server.worker_pids()) == 2
    finally:
        server.stop()


def test_max_requests_recycles_without_failures(app_dir: Path) -> None:
    server = start(
        app_dir, "--workers", "2", "--limit-max-requests", "3", "--limit-max-requests-jitter", "2"
    )
    try:
        port = server.port()
        server.wait_serving(2)
        pids = [served_by(get(port)[1]) for _ in range(20)]
        assert len(set(pids)) >= 4
        server.wait_log(r"reached its request limit", 5)
        assert "died" not in server.log
    finally:
        server.stop()


def test_hung_worker_is_killed_and_replaced(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2", "--timeout-worker-healthcheck", "0.5")
    try:
        port = server.port()
        server.wait_serving(2)
        with pytest.raises(ConnectionError):  # the connection dies with the worker
            get(port, "/block?30", timeout=10)
        [hung] = server.wait_log(r"Killed worker process \[(\d+)\]: it did not answer", 5)
        server.wait_serving(3)
        assert not alive(int(hung))
        assert int(hung) not in {served_by(get(port)[1]) for _ in range(6)}
    finally:
        server.stop()


def test_sigterm_lets_the_in_flight_request_finish(app_dir: Path) -> None:
    server = start(app_dir, env={"WEB_CONCURRENCY": "2"})
    try:
        port = server.port()
        server.wait_serving(2)
        pids = server.worker_pids()
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(get, port, "/slow?1.0")
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            status, body = slow.result(timeout=10)
        assert status == 200
        assert body.startswith("v1")
        assert server.wait(10) == 0
        assert not any(alive(pid) for pid in pids)
    finally:
        server.stop()


def test_app_that_fails_to_start_exits_3(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2", env={"FAIL_STARTUP": "1"})
    try:
        assert server.wait(20) == 3
        assert "failed to start" in server.log
        assert server.log.count("Started worker process") == 2  # no restart loop
    finally:
        server.stop()


def test_worker_too_slow_to_start_exits_1(app_dir: Path) -> None:
    server = start(
        app_dir, "--workers", "2", "--timeout-worker-startup", "1", env={"SLOW_STARTUP": "30"}
    )
    try:
        assert server.wait(15) == 1
        assert "did not start in time" in server.log
        assert "Traceback" not in server.log
    finally:
        server.stop()


def test_sigterm_during_a_slow_startup_exits_promptly(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2", env={"SLOW_STARTUP": "30"})
    try:
        server.port()
        wait_for(lambda: len(server.worker_pids()) == 2, 10, "two workers starting")
        time.sleep(1.0)  # inside lifespan startup by now
        server.signal(signal.SIGTERM)
        assert server.wait(5) == 0
        assert "Traceback" not in server.log
    finally:
        server.stop()


def test_import_error_exits_1_as_in_one_process(app_dir: Path) -> None:
    # The CLI's statuses whatever the worker count: 1 could not start, 3 lifespan failed.
    server = Pronghorn(app_dir, "missing_module:app", "--workers", "2", "--port", "0")
    try:
        assert server.wait(20) == 1
        assert "missing_module" in server.log
    finally:
        server.stop()


def test_port_in_use_is_one_line(app_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Pronghorn(app_dir, "app:app", "--workers", "2", "--port", str(port))
        try:
            assert server.wait(15) != 0
            lines = server.log.strip().splitlines()
            assert len(lines) == 1, lines
            assert "address already in use" in lines[0]
            assert f"127.0.0.1:{port}" in lines[0]
        finally:
            server.stop()


# Exec pronghorn as systemd does: the socket on fd 3, LISTEN_PID naming the pronghorn process.
SYSTEMD_EXEC = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
    "os.execv(sys.executable, [sys.executable, '-m', 'pronghorn', *sys.argv[2:]])"
)


def test_socket_activation_and_readiness(app_dir: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    notify_path = app_dir / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(15)
    argv = [sys.executable, "-c", SYSTEMD_EXEC, str(listener.fileno())]
    env = {"LISTEN_FDS": "1", "NOTIFY_SOCKET": str(notify_path)}
    server = Pronghorn(
        app_dir, "app:app", "--workers", "2", env=env, argv=argv, pass_fds=(listener.fileno(),)
    )
    listener.close()  # only the server holds it now
    try:
        assert notify.recv(100) == b"READY=1"
        assert get(port)[0] == 200
        # The workers were not told they are the service (no NOTIFY_SOCKET, LISTEN_* for them).
        for pid in server.worker_pids():
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert not [v for v in environ if v.startswith((b"NOTIFY_SOCKET=", b"LISTEN_"))]
        # systemctl reload with Type=notify-reload: SIGHUP, then RELOADING=1 ... READY=1.
        server.signal(signal.SIGHUP)
        assert notify.recv(100).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert notify.recv(100) == b"READY=1"
        server.wait_log(r"Stopped worker process", 10, count=2)  # both replaced
        assert get(port)[0] == 200
        server.signal(signal.SIGTERM)
        assert notify.recv(100) == b"STOPPING=1"
        assert server.wait(15) == 0
    finally:
        notify.close()
        server.stop()


def test_worker_main_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pronghorn.supervisor.worker_main"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert b"usage" in result.stderr


def get_unix(path: Path) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode()


def test_reuse_port_several_binds_and_uds(app_dir: Path) -> None:
    uds = app_dir / "app.sock"
    server = start(
        app_dir, "--workers", "2", "--reuse-port", "--bind", "127.0.0.1:0",
        "--bind", f"unix:{uds}", "--uds-permissions", "600",
    )  # fmt: skip
    try:
        port = server.port()
        server.wait_serving(2)
        assert get_unix(uds).startswith("HTTP/1.1 200")
        assert oct(uds.stat().st_mode & 0o777) == "0o600"
        pids = {served_by(get(port)[1]) for _ in range(40)}
        assert pids == set(server.worker_pids())  # each worker's own socket gets connections
        with Load(port) as load:
            server.signal(signal.SIGHUP)
            server.wait_log(r"Stopped worker process", 20, count=2)
            time.sleep(0.2)
        assert load.failures == []
        assert get_unix(uds).startswith("HTTP/1.1 200")  # no old worker removed the file
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0
        assert not uds.exists()  # the supervisor bound it, so it removes it
    finally:
        server.stop()


def test_second_signal_forces_exit(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2", "--timeout-graceful-shutdown", "30")
    try:
        port = server.port()
        server.wait_serving(2)
        pids = server.worker_pids()
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(get, port, "/slow?20")
            time.sleep(0.3)
            server.signal(signal.SIGINT)
            server.wait_log("stopping the workers", 5)
            started = time.monotonic()
            server.signal(signal.SIGINT)
            assert server.wait(5) == 1
            assert time.monotonic() - started < 3
            with pytest.raises(ConnectionError):
                slow.result(10)
        assert not any(alive(pid) for pid in pids)
    finally:
        server.stop()


def test_max_rss_replaces_the_worker_gracefully(app_dir: Path) -> None:
    # Every interpreter is past 1 MiB, so each worker is replaced once it has served a moment.
    server = start(
        app_dir, "--workers", "2", "--limit-max-rss", "1", "--timeout-worker-healthcheck", "2"
    )
    try:
        port = server.port()
        server.wait_serving(2)
        first = set(server.worker_pids())
        with Load(port) as load:
            server.wait_log(r"over --limit-max-rss 1; replacing it", 5)
            server.wait_log(r"Stopped worker process", 10)
        assert load.failures == []
        assert set(server.worker_pids()) - first
    finally:
        server.stop()


def test_workers_leave_when_the_supervisor_is_killed(app_dir: Path) -> None:
    server = start(app_dir, "--workers", "2")
    try:
        server.port()
        server.wait_serving(2)
        pids = server.worker_pids()
        os.kill(server.pid, signal.SIGKILL)
        server.wait(5)
        # End of file on the control channel: each worker drains and exits by itself.
        wait_for(lambda: not any(alive(pid) for pid in pids), 10, "the orphaned workers to exit")
    finally:
        server.stop()

"""Binding in the parent: addresses, failures as one StartupError line, UNIX sockets, reuse-port,
systemd activation and notification. In-process, real sockets on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from pronghorn import sockets, systemd
from pronghorn.config import Config
from pronghorn.errors import ConfigError, StartupError
from pronghorn.sockets import Address, parse_bind


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:8000", Address("tcp", host="127.0.0.1", port=8000)),
        ("localhost:0", Address("tcp", host="localhost", port=0)),
        (":8080", Address("tcp", host="0.0.0.0", port=8080)),
        ("[::1]:8001", Address("tcp", host="::1", port=8001)),
        ("[::]:80", Address("tcp", host="::", port=80)),
        ("unix:/run/app.sock", Address("unix", path="/run/app.sock")),
        ("fd://3", Address("fd", fd=3)),
    ],
)
def test_parse_bind(spec: str, expected: Address) -> None:
    assert parse_bind(spec) == expected


@pytest.mark.parametrize(
    "spec", ["127.0.0.1", "host:http", "::1:80", "[::1]80", "unix:", "fd://x", "h:70000"]
)
def test_parse_bind_rejects(spec: str) -> None:
    with pytest.raises(ConfigError, match="--bind"):
        parse_bind(spec)


def test_host_port_when_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    [sock] = sockets.bind_sockets(Config(port=0))
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
        assert sock.getsockname()[1] > 0
        assert sockets.describe(sock).startswith("http://127.0.0.1:")
    finally:
        sock.close()


def test_several_binds_and_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    config = Config(bind=["127.0.0.1:0", "[::1]:0"])
    try:
        bound = sockets.bind_sockets(config)
    except StartupError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert [s.family for s in bound] == [socket.AF_INET, socket.AF_INET6]
        assert sockets.describe(bound[1]).startswith("http://[::1]:")
    finally:
        sockets.close_sockets(bound)


def test_port_in_use_is_one_line_and_closes_the_others() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError) as info:
            sockets.bind_sockets(Config(bind=["127.0.0.1:0", f"127.0.0.1:{port}"]))
    message = str(info.value)
    assert message == f"cannot listen on 127.0.0.1:{port}: address already in use"
    assert "\n" not in message


def test_unknown_host() -> None:
    with pytest.raises(StartupError, match="unknown host"):
        sockets.bind_sockets(Config(host="no-such-host.invalid", port=0))


def test_uds_with_permissions_and_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    [sock] = sockets.bind_sockets(Config(uds=str(path), uds_permissions="600"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sockets.describe(sock) == f"unix:{path}"
    sockets.close_sockets([sock])
    assert not path.exists()


def test_uds_stale_socket_is_replaced_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a crashed server's leftover
    [sock] = sockets.bind_sockets(Config(uds=str(path)))
    try:
        with pytest.raises(StartupError, match="address already in use"):
            sockets.bind_sockets(Config(uds=str(path)))
    finally:
        sockets.close_sockets([sock])


def test_uds_bad_path_and_regular_file(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"^cannot listen on unix:.*: no such directory$"):
        sockets.bind_sockets(Config(uds=str(tmp_path / "missing" / "app.sock")))
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(StartupError, match="not a socket"):
        sockets.bind_sockets(Config(uds=str(regular)))
    assert regular.exists()


def test_uds_permissions_must_be_octal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--uds-permissions"):
        sockets.bind_sockets(Config(uds=str(tmp_path / "s"), uds_permissions="rw"))


def test_fd_adopted_and_not_a_socket_rejected(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    [sock] = sockets.bind_sockets(Config(fd=listener.detach()))
    try:
        assert sock.family == socket.AF_INET
    finally:
        sock.close()
    with open(tmp_path / "f", "w") as regular, pytest.raises(StartupError, match="fd://"):
        sockets.bind_sockets(Config(fd=os.dup(regular.fileno())))


def test_reuse_port_copies_share_the_port() -> None:
    [first] = sockets.bind_sockets(Config(port=0, reuse_port=True))
    copies = sockets.reuse_port_copies([first], backlog=16)
    try:
        assert copies[0] is not first
        assert copies[0].getsockname() == first.getsockname()
        assert sockets.has_reuse_port(copies[0])
    finally:
        sockets.close_sockets([first, *copies])


def test_shared_sockets_are_not_copied_without_reuse_port() -> None:
    [first] = sockets.bind_sockets(Config(port=0))
    try:
        assert sockets.reuse_port_copies([first], backlog=16) == [first]
    finally:
        first.close()


def test_listen_fds_claims_and_clears(monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    # Activation numbers descriptors from 3; make a free slot look like systemd's first one.
    saved = os.dup(3) if _is_open(3) else None
    os.dup2(listener.fileno(), 3)
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"}
    try:
        [sock] = systemd.listen_sockets(env)
        assert sock.fileno() == 3
        assert sock.getsockname() == listener.getsockname()
        assert env == {}
        assert systemd.listen_sockets(env) == []
        sock.detach()
    finally:
        if saved is not None:
            os.dup2(saved, 3)
            os.close(saved)
        else:
            os.close(3)
        listener.close()


def test_listen_fds_for_another_process_is_ignored() -> None:
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}
    assert systemd.listen_sockets(env) == []
    assert env == {}


def test_notify(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        assert systemd.notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert receiver.recv(100) == b"READY=1"
    assert not systemd.notify("READY=1", {})
    assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True

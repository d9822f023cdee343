"""Binding listening sockets from Config: TCP (IPv4/IPv6), UNIX, inherited fds.

A leaf module (it imports only config and errors), so both the single-process Server and the
supervisor's parent process bind the same way.
"""

from __future__ import annotations

import os
import socket
import stat

from pronghorn.config import Config
from pronghorn.errors import StartupError


def _tcp(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _unix(path: str, backlog: int, permissions: str | None) -> socket.socket:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from a previous run
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StartupError(f"cannot use unix socket {path}: {exc.strerror}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if permissions is not None:
            os.chmod(path, int(permissions, 8))
        sock.listen(backlog)
    except (OSError, ValueError) as exc:
        sock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StartupError(f"cannot listen on unix socket {path}: {reason}") from None
    sock.setblocking(False)
    return sock


def _from_fd(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise StartupError(f"file descriptor {fd} is not a socket: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def bind_one(address: str, config: Config, reuse_port: bool = False) -> socket.socket:
    """One --bind value: HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N."""
    if address.startswith("unix:"):
        return _unix(address[5:], config.backlog, config.uds_permissions)
    if address.startswith("fd://"):
        try:
            return _from_fd(int(address[5:]))
        except ValueError:
            raise StartupError(f"--bind {address!r}: fd:// needs a number") from None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise StartupError(f"--bind {address!r}: expected HOST:PORT, unix:PATH or fd://N")
    return _tcp(host or "0.0.0.0", int(port), config.backlog, reuse_port)


def bind_sockets(config: Config, *, reuse_port: bool | None = None) -> list[socket.socket]:
    """Every socket the config asks for; --bind, --uds and --fd replace --host/--port."""
    reuse = config.reuse_port if reuse_port is None else reuse_port
    sockets: list[socket.socket] = []
    try:
        sockets.extend(bind_one(address, config, reuse) for address in config.bind)
        if config.uds:
            sockets.append(_unix(config.uds, config.backlog, config.uds_permissions))
        if config.fd is not None:
            sockets.append(_from_fd(config.fd))
        if not sockets:
            sockets.append(_tcp(config.host, config.port, config.backlog, reuse))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets

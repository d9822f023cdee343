"""Listening sockets: bound once, in the parent, from the socket settings.

Sources, all at once: sockets from systemd socket activation, each ``--bind``, ``--uds`` and
``--fd``; ``--host``/``--port`` only when none of those gave a socket. Any failure (port in use,
no permission, a bad path) closes what was already bound and raises one
:class:`~pronghorn.errors.StartupError` line. Importing this module has no side effects and
imports nothing of the protocol layers, so the server may bind with it too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from dataclasses import dataclass
from typing import Literal

from pronghorn import systemd
from pronghorn.config import Config
from pronghorn.errors import ConfigError, StartupError

AddressKind = Literal["tcp", "unix", "fd"]

# UNIX socket files this process created, the only ones close_sockets() may remove: a socket
# inherited through --fd or systemd belongs to whoever bound it.
_BOUND_PATHS: set[str] = set()

# Friendlier than strerror for the failures users actually meet on startup.
_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied",
    errno.EADDRNOTAVAIL: "address not available on this machine",
    errno.ENOENT: "no such directory",
}


@dataclass(frozen=True, slots=True)
class Address:
    kind: AddressKind
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(spec: str) -> Address:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``unix:PATH`` or ``fd://N`` -> :class:`Address`."""
    if spec.startswith("unix:"):
        path = spec.removeprefix("unix:")
        if not path:
            raise ConfigError(f"--bind {spec!r}: unix: needs a path")
        return Address("unix", path=path)
    if spec.startswith("fd://"):
        number = spec.removeprefix("fd://")
        if not number.isdigit():
            raise ConfigError(f"--bind {spec!r}: fd:// needs a descriptor number")
        return Address("fd", fd=int(number))
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"--bind {spec!r}: expected [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = spec.rpartition(":")
        if not sep:
            host, port_text = spec, ""
        if ":" in host:
            raise ConfigError(f"--bind {spec!r}: write IPv6 addresses as [ADDRESS]:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"--bind {spec!r}: expected HOST:PORT with a port from 0 to 65535")
    return Address("tcp", host=host or "0.0.0.0", port=int(port_text))


def addresses(config: Config) -> list[Address]:
    """The addresses the settings name, before systemd sockets are counted."""
    result = [parse_bind(spec) for spec in config.bind]
    if config.uds:
        result.append(Address("unix", path=config.uds))
    if config.fd is not None:
        result.append(Address("fd", fd=config.fd))
    return result


def bind_sockets(config: Config) -> list[socket.socket]:
    """Bind every configured socket, or raise StartupError having closed the ones already bound."""
    permissions = _permissions(config.uds_permissions)
    wanted = addresses(config)
    sockets = systemd.listen_sockets()
    if not sockets and not wanted:
        wanted.append(Address("tcp", host=config.host.strip("[]"), port=config.port))
    try:
        for address in wanted:
            sockets.append(bind_one(address, config.backlog, config.reuse_port, permissions))
    except BaseException:
        close_sockets(sockets)
        raise
    return sockets


def bind_one(
    address: Address, backlog: int, reuse_port: bool = False, permissions: int | None = None
) -> socket.socket:
    if address.kind == "fd":
        return _adopt_fd(address.fd)
    if address.kind == "unix":
        return _bind_unix(address.path, backlog, permissions)
    return _bind_tcp(address, backlog, reuse_port)


def reuse_port_copies(sockets: list[socket.socket], backlog: int) -> list[socket.socket]:
    """One more worker's sockets for ``--reuse-port``: a fresh socket for each TCP socket that has
    SO_REUSEPORT, bound to the same address; every other socket is shared as it is."""
    copies: list[socket.socket] = []
    try:
        for sock in sockets:
            if has_reuse_port(sock):
                host, port = sock.getsockname()[:2]
                copies.append(_bind_tcp(Address("tcp", host=host, port=port), backlog, True))
            else:
                copies.append(sock)
    except BaseException:
        close_sockets([c for c in copies if c not in sockets])
        raise
    return copies


def has_reuse_port(sock: socket.socket) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket, "SO_REUSEPORT"):
        return False
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))


def describe(sock: socket.socket) -> str:
    """How a log line names a listening socket: ``http://127.0.0.1:8000``, ``unix:/run/app``."""
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def close_sockets(sockets: list[socket.socket]) -> None:
    """Close the sockets, removing the files of UNIX sockets this process bound."""
    for sock in sockets:
        path = sock.getsockname() if sock.family == socket.AF_UNIX and sock.fileno() >= 0 else ""
        sock.close()
        if isinstance(path, str) and path in _BOUND_PATHS:
            _BOUND_PATHS.discard(path)
            with contextlib.suppress(OSError):
                os.unlink(path)


def _permissions(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise ConfigError(f"--uds-permissions must be octal like 660, not {text!r}")
    return mode


def _failure(address: Address | str, exc: OSError) -> StartupError:
    reason = _REASONS.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()
    return StartupError(f"cannot listen on {address}: {reason}")


def _bind_tcp(address: Address, backlog: int, reuse_port: bool) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {address}: unknown host ({exc.strerror})") from None
    family, _, _, _, sockaddr = infos[0]
    # IPPROTO_TCP explicitly: asyncio's own loop sets TCP_NODELAY on accepted sockets only when
    # the protocol number says TCP, and Nagle's delay would hold back small HTTP/2 frames.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Without SO_REUSEADDR a restart fails for a minute while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise StartupError("--reuse-port is not supported on this platform")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _failure(address, exc) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_unix(path: str, backlog: int, permissions: int | None) -> socket.socket:
    _remove_stale_socket_file(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # Before listen(): no client can connect through looser permissions in between.
        if permissions is not None:
            os.chmod(path, permissions)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _failure(f"unix:{path}", exc) from None
    _BOUND_PATHS.add(sock.getsockname())
    return sock


def _remove_stale_socket_file(path: str) -> None:
    """A socket file left by a crashed server blocks bind(); one a live server listens on must not
    be taken over, and a file that is not a socket is not ours to delete."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _failure(f"unix:{path}", exc) from None
    if not stat.S_ISSOCK(mode):
        raise StartupError(f"cannot listen on unix:{path}: the file exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
        except OSError as exc:
            raise _failure(f"unix:{path}", exc) from None
    raise StartupError(f"cannot listen on unix:{path}: address already in use")


def _adopt_fd(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise StartupError(f"cannot listen on fd://{fd}: {reason}") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise StartupError(f"cannot listen on fd://{fd}: not a stream socket")
    sock.set_inheritable(False)
    return sock

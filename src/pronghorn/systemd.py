"""The two systemd protocols a server speaks: socket activation and readiness notification.

Socket activation hands us listening sockets as file descriptors 3, 4, ... and says how many in
``LISTEN_FDS``; ``LISTEN_PID`` names the process they are meant for, so a child that inherited the
environment does not claim them too. Readiness is one datagram per state change (``READY=1``,
``RELOADING=1``, ``STOPPING=1``) to the socket named by ``NOTIFY_SOCKET``; ``@`` there means the
abstract namespace. Both are documented in sd_listen_fds(3) and sd_notify(3).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import MutableMapping

from pronghorn.errors import StartupError

LISTEN_FDS_START = 3
ACTIVATION_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
NOTIFY_VARIABLE = "NOTIFY_SOCKET"

logger = logging.getLogger("pronghorn.supervisor")


def listen_sockets(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """Claim the sockets systemd passed to this process, once.

    The variables are removed afterwards (as ``sd_listen_fds(1)`` does), so neither a second call
    nor a worker process mistakes them for its own.
    """
    env = os.environ if environ is None else environ
    pid, count = env.get("LISTEN_PID", ""), env.get("LISTEN_FDS", "")
    for name in ACTIVATION_VARIABLES:
        env.pop(name, None)
    if not count or pid != str(os.getpid()):
        return []
    try:
        number = int(count)
    except ValueError:
        raise StartupError(f"LISTEN_FDS must be a number, not {count!r}") from None
    sockets: list[socket.socket] = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + number):
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            for opened in sockets:
                opened.close()
            raise StartupError(
                f"socket activation: file descriptor {fd} is not a socket ({exc.strerror})"
            ) from None
        # Activated descriptors arrive inheritable; only the workers we start should get them.
        sock.set_inheritable(False)
        sockets.append(sock)
    return sockets


def notify(state: str, environ: MutableMapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the service manager; False when there is none.

    Failure is logged, never raised: a server must not stop serving because its supervisor's
    socket went away.
    """
    env = os.environ if environ is None else environ
    address = env.get(NOTIFY_VARIABLE, "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        logger.debug("sd_notify %r to %r failed: %s", state, address, exc)
        return False
    return True

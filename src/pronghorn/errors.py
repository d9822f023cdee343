"""The one exception hierarchy.

::

    PronghornError
    ├── ConfigError            a setting no server could run with (one line, exit 2)
    ├── AppImportError         APP could not be imported or is not an app (one line, exit 1)
    ├── StartupError           sockets, TLS files, lifespan startup failed (exit 1 / 3)
    │   └── LifespanFailure    the app said lifespan.startup.failed (exit 3)
    ├── AppProtocolError       the app broke the ASGI message rules (raised inside send())
    │   └── ResponseLengthError  body longer/shorter than its Content-Length
    └── LocalProtocolError     pronghorn broke a protocol itself: a bug, loud
    ClientDisconnected(OSError)  send() after the client left (ASGI spec 2.4)

Peer misbehaviour is never an exception: the cores queue the answer and emit ProtocolViolation.
"""

from __future__ import annotations


class PronghornError(Exception):
    """Base of every error pronghorn raises on purpose."""


class ConfigError(PronghornError):
    """A setting is invalid."""


class AppImportError(PronghornError):
    """The APP string could not be turned into an application."""


class StartupError(PronghornError):
    """The server could not start serving."""


class LifespanFailure(StartupError):
    """The app reported lifespan startup failure."""


class AppProtocolError(PronghornError, RuntimeError):
    """The application sent a message that is invalid at this point of the cycle."""


class ResponseLengthError(AppProtocolError):
    """The response body did not match its Content-Length."""


class LocalProtocolError(PronghornError):
    """Pronghorn itself tried to do something the protocol forbids."""


class ClientDisconnected(OSError):
    """The client is gone; raised by send() as the ASGI spec (2.4) asks."""

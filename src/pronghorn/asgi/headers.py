"""Header lists from the app, checked once for every ASGI message that carries them."""

from __future__ import annotations

from collections.abc import Iterable

from pronghorn.errors import AppProtocolError
from pronghorn.protocols.events import COLON, SPACE, Headers, has_bad_byte


def app_headers(value: object, what: str) -> Headers:
    """``value`` as a list of (name, value) byte pairs, or AppProtocolError naming ``what``.

    Every field is checked here, before the caller changes any state, so no core refuses one
    later (a refused field would leave a response half-sent).
    """
    if value is None:
        return []
    if not isinstance(value, Iterable) or isinstance(value, (bytes, str)):
        raise AppProtocolError(f"{what} must be an iterable of [name, value] byte pairs")
    headers: Headers = []
    for pair in value:
        try:
            name, val = pair
        except (TypeError, ValueError):
            raise AppProtocolError(f"{what}: {pair!r} is not a [name, value] pair") from None
        if not isinstance(name, bytes) or not isinstance(val, bytes):
            raise AppProtocolError(f"{what}: header names and values must be bytes: {pair!r}")
        if not name or has_bad_byte(name) or COLON in name or SPACE in name or has_bad_byte(val):
            raise AppProtocolError(f"{what}: invalid header field {pair!r}")
        headers.append((name, val))
    return headers

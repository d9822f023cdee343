"""Reading an app's ``send()`` message: its fields as a dict, and its type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pronghorn.errors import AppProtocolError

Message = dict[str, Any]
AppMessage = Mapping[str, Any]


def read_message(message: AppMessage) -> tuple[Message, str]:
    """(fields, type) of an app's message; AppProtocolError when it has no str ``type``.

    The fields are a dict, which compiled code reads directly: a Mapping's ``get()`` is a
    method call (1k instructions of a hello response's five reads). Apps send dicts; any
    other Mapping is copied into one.
    """
    if type(message) is dict:
        fields = cast("Message", message)
    elif isinstance(message, Mapping):
        fields = dict(message)
    else:
        raise AppProtocolError(f"ASGI message without a 'type': {message!r}")
    try:
        kind = fields["type"]
    except KeyError:
        raise AppProtocolError(f"ASGI message without a 'type': {message!r}") from None
    if type(kind) is not str:
        raise AppProtocolError(f"ASGI message 'type' must be a str: {kind!r}")
    return fields, kind

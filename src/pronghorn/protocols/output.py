"""How a core hands out queued output: one bytes object, or its parts when copying costs.

``take_output()`` on the HTTP/1.1 and tunnel cores returns either; a list is for
``transport.writelines``, which gathers the parts into one system call (uvloop), so a large
body is never copied in Python just to be joined to its few header bytes.
"""

from __future__ import annotations

from typing import Final

#: Output at least this large is handed out as its parts, not joined into one copy.
COPY_LIMIT: Final = 4096


def joined_unless_large(out: list[bytes]) -> bytes | list[bytes]:
    """``out`` joined into one bytes object, or ``out`` itself when that would copy a lot."""
    if len(out) == 1:
        return out[0]
    if sum(map(len, out)) < COPY_LIMIT:
        return b"".join(out)
    return out


def joined(output: bytes | list[bytes]) -> bytes:
    """``take_output()``'s result as one bytes object (for callers that need one)."""
    return output if isinstance(output, bytes) else b"".join(output)

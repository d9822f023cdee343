"""A bounded memo of the work a core does on an app's response header list.

Most apps send the same few header lists again and again, so each core validates and encodes a
distinct list once (``http1._HeadInfo``, ``http2_send._AppHead``) and looks it up after that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from pronghorn.protocols.events import AppHeaders

__all__ = ["HEAD_CACHE_SIZE", "HeadKey", "remember"]

#: Distinct app header lists remembered per cache.
HEAD_CACHE_SIZE: Final = 256

HeadKey = tuple[tuple[bytes, bytes], ...]
T = TypeVar("T")


def remember(cache: dict[HeadKey, T], headers: AppHeaders, build: Callable[[AppHeaders], T]) -> T:
    """``build(headers)``, from ``cache`` when this list was built before. ``build`` raises
    ValueError for a list no peer could accept, and nothing is remembered then."""
    try:
        key = tuple(headers)
        found = cache.get(key)
    except TypeError:  # not hashable (lists, bytearrays): build it every time
        return build(headers)
    if found is None:
        found = build(headers)
        if len(cache) >= HEAD_CACHE_SIZE:
            cache.clear()  # apps that vary their headers per request: start over
        cache[key] = found
    return found

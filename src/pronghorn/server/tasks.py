"""Starting app coroutines as tasks, eagerly where the interpreter can.

On Python 3.12+ a task is started eagerly: its first step runs inside the caller (here, inside
``data_received``), so a handler that never suspends completes without waiting for a loop
iteration. A real Task is still created, because apps rely on ``asyncio.current_task()``
(``asyncio.timeout``, anyio cancel scopes); driving the bare coroutine would break them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

EAGER = sys.version_info >= (3, 12)


def start_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    if EAGER:
        return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
    return loop.create_task(coro)

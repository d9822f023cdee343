"""Starting app coroutines as tasks, eagerly.

A task's first step runs inside the caller (here, inside ``data_received``), so a handler that
never suspends is answered before the caller returns, without waiting for a loop iteration. A
real Task is still created, because apps rely on ``asyncio.current_task()`` (``asyncio.timeout``,
anyio cancel scopes); driving the bare coroutine would break them.

Python 3.12+ does this itself (``eager_start``). On 3.11 a new Task asks its loop to
``call_soon`` its first step. For that one call the loop's ``call_soon`` is shadowed by an
instance attribute that runs the step at once, in the task's context, through the Task's own
step code: so ``current_task()``, exceptions and cancellation behave exactly as when the loop
runs it. Without this, a loop iteration that read from N connections held N requests' objects
(task, coroutine, scope, exchange) before running any of them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any

EAGER = sys.version_info >= (3, 12)
#: The loop -> running task map 3.11's Task steps keep (``asyncio.current_task`` reads it
#: through a Python function).
_CURRENT_TASKS: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] = getattr(
    asyncio.tasks, "_current_tasks", {}
)
#: Where a loop keeps its stand-in ``call_soon`` (in its own attributes: one per loop).
_RUN_NOW = "_pronghorn_run_first_step"


def start_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    if EAGER:
        return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
    if _CURRENT_TASKS.get(loop) is not None or loop.get_task_factory() is not None:
        # Inside another task (a pipelined request started by the one before it finishing),
        # whose step may not be interrupted by a second one; or a factory whose calls we
        # cannot vouch for: the loop runs the first step on its next turn.
        return loop.create_task(coro)
    attributes = loop.__dict__
    run_now = attributes.get(_RUN_NOW)
    if run_now is None:
        run_now = attributes[_RUN_NOW] = _first_step_runner(attributes)
    attributes["call_soon"] = run_now
    try:
        return loop.create_task(coro)
    finally:
        attributes.pop("call_soon", None)


def _first_step_runner(
    attributes: dict[str, Any],
) -> Callable[..., None]:
    """The stand-in for one loop's ``call_soon``, made once per loop."""

    def run_first_step(
        callback: Callable[..., object], *args: object, context: Context | None = None
    ) -> None:
        # Only this one call: the step itself schedules (futures, other tasks) as usual.
        del attributes["call_soon"]
        if context is None:
            callback(*args)
        else:
            context.run(callback, *args)

    return run_first_step

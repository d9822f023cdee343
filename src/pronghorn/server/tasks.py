"""Starting app coroutines as tasks, eagerly where that pays.

A task's first step can run inside the caller (here, inside ``data_received``), so a handler
that never suspends is answered before the caller returns, without waiting for a loop
iteration. A real Task is still created, because apps rely on ``asyncio.current_task()``
(``asyncio.timeout``, anyio cancel scopes); driving the bare coroutine would break them.

Python 3.12+ does this itself (``eager_start``), and it is the cheaper way there.

On 3.11 a new Task asks its loop to ``call_soon`` its first step. Letting the loop run those
steps on its next turn, all together, is cheaper per request (about 1.5 us in the connection
micro benchmark, on one or 64 connections per turn: no stand-in call, and each phase's code
stays hot) as long as few wait. When a turn reads from many connections (hundreds at 1000
connections) the waiting requests' objects (task, coroutine, scope, exchange) pile up, leave
the CPU cache and fill the collector's youngest generation within the turn. So each turn defers
the first ``DEFERRED_PER_TURN`` starts and runs the rest eagerly: for those, the loop's
``call_soon`` is shadowed by an instance attribute that runs the step at once, in the task's
context, through the Task's own step code, so ``current_task()``, exceptions and cancellation
behave exactly as when the loop runs it.

A turn that started more than that is followed by one that starts every request eagerly. A
deferred answer is written after the loop's next I/O phase (uvloop sends small writes at the
end of an I/O phase, and the deferred steps run before the next one), and with hundreds of
ready connections that phase lasts a whole iteration: at 1000 connections the deferred 64 of
each turn, 5-7% of the requests, waited twice as long as the rest (p95 38 ms, p99 67 ms).
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
_QUOTA = "_pronghorn_turn_quota"
#: First steps one loop turn leaves to the loop on 3.11 before starting the rest eagerly. At 64
#: connections a turn starts 25-50 requests; at 1000 connections, 165 on average.
DEFERRED_PER_TURN = 64


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
    quota = attributes.get(_QUOTA)
    if quota is None:
        quota = turn_quota(loop)
    started = quota.started
    if started == 0:
        # Queued ahead of this turn's first deferred step: the steps of the next turn see how
        # many were started together, and the counts start again.
        loop.call_soon(quota.reset)
    quota.started = started + 1
    if started < DEFERRED_PER_TURN and not quota.crowded:
        quota.deferred += 1
        return loop.create_task(coro)
    run_now = attributes.get(_RUN_NOW)
    if run_now is None:
        run_now = attributes[_RUN_NOW] = _first_step_runner(attributes)
    attributes["call_soon"] = run_now
    try:
        return loop.create_task(coro)
    finally:
        attributes.pop("call_soon", None)


class TurnQuota:
    """First steps one loop turn left to the loop, and how many the running batch had."""

    __slots__ = ("batch", "crowded", "deferred", "started")

    def __init__(self) -> None:
        #: Starts in this turn so far, and how many of them were deferred (3.11).
        self.started = 0
        self.deferred = 0
        #: The last turn started more than DEFERRED_PER_TURN: this one defers none.
        self.crowded = False
        #: How many deferred first steps the loop is running in this pass (0 when none, and
        #: always on 3.12+): an answer completed among others is written with them.
        self.batch = 0

    def reset(self) -> None:
        self.batch = self.deferred
        self.crowded = self.started > DEFERRED_PER_TURN
        self.started = 0
        self.deferred = 0


def turn_quota(loop: asyncio.AbstractEventLoop) -> TurnQuota:
    """The loop's one TurnQuota."""
    attributes = getattr(loop, "__dict__", None)
    if attributes is None:  # a loop without attributes: nothing is deferred by count
        return TurnQuota()
    quota: TurnQuota | None = attributes.get(_QUOTA)
    if quota is None:
        quota = attributes[_QUOTA] = TurnQuota()
    return quota


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

"""Starting app coroutines as tasks, and counting the first steps a loop pass runs together.

Every request's app runs as a real Task (apps rely on ``asyncio.current_task()``:
``asyncio.timeout``, anyio cancel scopes), created the plain way: its first step runs when the
loop next runs its callbacks, after every ready connection was read. A loop turn that reads N
requests thus parses N, then runs N first steps back to back, then writes N answers in one
flush callback; each phase's code stays hot in the CPU's caches.

Starting the first step eagerly instead, inside ``data_received`` (3.12's ``eager_start``, or
on 3.11 a stand-in for the loop's ``call_soon``), was the design until the measurements on an
Intel Xeon said otherwise (server CPU per request, server and wrk each pinned to a core):

============================  ================  ==================
hello                         eager             first step deferred
============================  ================  ==================
3.12, 64 connections          43.7-44.0k req/s  50.4-54.1k req/s
3.12, 1000 connections        40.2-40.6k        43.9-44.8k
3.11, 256 connections         39.0k             47.4k
3.11, 1000 connections        37.4k             47.4k (p99 50 -> 30 ms)
3.11, Starlette, 1000         22.0k             27.9k
============================  ================  ==================

(3.11 "eager" there deferred the first 64 starts of a turn and ran the rest eagerly.) An eager
answer is written at the end of the loop's I/O phase, a deferred one at the end of the next:
with every start deferred that next phase has almost nothing to read, the clients waiting for
their answers, so the latency is no worse.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine
from typing import Any, Final

_BATCH: Final = "_pronghorn_turn_batch"
#: 3.12+ can start a task eagerly from inside another task (3.11 cannot: one task's step may
#: not run inside another's).
EAGER_IN_TASK: Final = sys.version_info >= (3, 12)
_current_task = asyncio.current_task
_Task: Final = asyncio.Task
#: What every request's task is called (``asyncio.all_tasks()`` in a debugger shows them).
TASK_NAME: Final = "pronghorn request"


def start_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, None],
    context: contextvars.Context,
    batch: TurnBatch,
) -> asyncio.Task[None]:
    """Start ``coro`` as a Task running in ``context``, counted in the loop's ``batch``.

    The context is given, never inherited: a request started from its predecessor's task (a
    pipelined request, a body read resuming the connection) would otherwise run in a copy of
    that task's context and see the variables the previous request set.
    """
    # Asked each time: an app may set a task factory while serving (in its lifespan startup).
    factory = loop.get_task_factory()
    if EAGER_IN_TASK and factory is None and _current_task(loop) is not None:
        # A pipelined request started by its predecessor's task finishing: running its first
        # step now, inside that task, spares the pipeline a loop pass per request.
        return _Task(coro, loop=loop, eager_start=True, context=context, name=TASK_NAME)  # type: ignore[call-arg,unused-ignore]
    started = batch.started
    if started == 0:
        # Queued ahead of this first step: when the loop runs the steps, their batch knows
        # how many run together, and the count starts again.
        loop.call_soon(batch.reset)
    batch.started = started + 1
    if factory is None:
        # The Task uvloop's create_task would make, named here: unnamed, the C Task formats a
        # "Task-N" name for each (about 1.3k instructions per request on 3.11).
        return _Task(coro, loop=loop, context=context, name=TASK_NAME)
    return loop.create_task(coro, context=context)


class TurnBatch:
    """First steps started since the loop last ran its callbacks, and how many run now."""

    __slots__ = ("running", "started")

    def __init__(self) -> None:
        #: Tasks started since the last reset, whose first steps wait for the loop.
        self.started = 0
        #: How many first steps the loop is running in this pass (0 after the pass's flush
        #: callback): an answer completed among others is written with them.
        self.running = 0

    def reset(self) -> None:
        self.running = self.started
        self.started = 0


def turn_batch(loop: asyncio.AbstractEventLoop) -> TurnBatch:
    """The loop's one TurnBatch (kept in the loop's attributes)."""
    attributes = getattr(loop, "__dict__", None)
    if attributes is None:  # a loop without attributes: counted per caller, never batched
        return TurnBatch()
    batch: TurnBatch | None = attributes.get(_BATCH)
    if batch is None:
        batch = attributes[_BATCH] = TurnBatch()
    return batch

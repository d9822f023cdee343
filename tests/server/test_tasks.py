"""start_task: an app's first step runs as a real Task, when the loop next runs its callbacks.

Run on uvloop and on the stdlib loop; each case starts tasks from a plain loop callback, as
``data_received`` does, then lets the loop settle. A start from inside another task (a
pipelined request started by its predecessor) is eager on 3.12+.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from pronghorn.server.state import FlushScheduler
from pronghorn.server.tasks import EAGER_IN_TASK, TASK_NAME, start_task, turn_batch

uvloop = pytest.importorskip("uvloop")

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


@pytest.fixture(params=["uvloop", "asyncio"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    made = uvloop.new_event_loop() if request.param == "uvloop" else asyncio.new_event_loop()
    yield made
    made.close()


async def filler() -> None:
    pass


def in_callback(loop: asyncio.AbstractEventLoop, body: Callable[[], Any]) -> Any:
    """Run ``body`` from a loop callback (no task current), then let the loop settle."""
    result: list[Any] = []
    loop.call_soon(lambda: result.append(body()))
    loop.run_until_complete(asyncio.sleep(0.05))
    return result[0]


def test_the_first_step_runs_after_the_caller_returns(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[object] = []

    async def app() -> None:
        seen.append(asyncio.current_task())

    started, seen_at_return = in_callback(
        loop, lambda: (start_task(loop, app(), contextvars.Context(), turn_batch(loop)), list(seen))
    )
    assert seen_at_return == []
    assert started.done()
    assert started.exception() is None
    assert seen == [started]  # it ran as the task itself


def test_request_tasks_carry_one_name_on_either_path(loop: asyncio.AbstractEventLoop) -> None:
    # Named by us: an unnamed C Task formats a "Task-N" name for each request.
    async def app() -> None:
        pass

    deferred = in_callback(
        loop, lambda: start_task(loop, app(), contextvars.Context(), turn_batch(loop))
    )

    async def predecessor() -> asyncio.Task[None]:
        return start_task(loop, app(), contextvars.Context(), turn_batch(loop))  # eager on 3.12+

    nested = loop.run_until_complete(predecessor())
    loop.run_until_complete(asyncio.sleep(0.01))
    assert deferred.get_name() == nested.get_name() == TASK_NAME
    assert deferred.done()
    assert nested.done()


def test_a_suspending_handler_continues_in_its_task(loop: asyncio.AbstractEventLoop) -> None:
    steps: list[str] = []

    async def app() -> None:
        VAR.set("inner")
        steps.append("first")
        await asyncio.sleep(0.001)
        steps.append(f"second {VAR.get()}")

    def body() -> tuple[asyncio.Task[None], list[str]]:
        return start_task(loop, app(), contextvars.Context(), turn_batch(loop)), list(steps)

    task, at_return = in_callback(loop, body)
    assert at_return == []
    assert task.done()
    assert steps == ["first", "second inner"]
    assert VAR.get() == "outer"  # the task ran in its own context


def test_an_exception_in_the_first_step_is_the_tasks(loop: asyncio.AbstractEventLoop) -> None:
    async def app() -> None:
        raise ValueError("boom")

    task = in_callback(
        loop, lambda: start_task(loop, app(), contextvars.Context(), turn_batch(loop))
    )
    assert task.done()
    assert isinstance(task.exception(), ValueError)


def test_cancelling_after_the_first_step_reaches_the_app(loop: asyncio.AbstractEventLoop) -> None:
    outcome: list[str] = []

    async def app() -> None:
        try:
            outcome.append("started")
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    task = in_callback(
        loop, lambda: start_task(loop, app(), contextvars.Context(), turn_batch(loop))
    )
    assert outcome == ["started"]
    task.cancel()
    loop.run_until_complete(asyncio.sleep(0.01))
    assert task.cancelled()
    assert outcome == ["started", "cancelled"]


def test_cancelling_before_the_first_step_never_runs_the_app(
    loop: asyncio.AbstractEventLoop,
) -> None:
    outcome: list[str] = []

    async def app() -> None:
        outcome.append("started")

    def body() -> asyncio.Task[None]:
        task = start_task(loop, app(), contextvars.Context(), turn_batch(loop))
        task.cancel()  # a connection lost in the same loop turn as its request arrived
        return task

    task = in_callback(loop, body)
    assert task.cancelled()
    assert outcome == []


def test_started_from_inside_a_task_still_runs(loop: asyncio.AbstractEventLoop) -> None:
    # A pipelined request is started by its predecessor's task finishing; on 3.11 its first
    # step waits for the loop (a task's step cannot be interrupted), on 3.12+ it is eager,
    # so the pipeline's answers need no loop turn each.
    ran: list[str] = []

    async def app() -> None:
        ran.append("app")

    async def predecessor() -> tuple[asyncio.Task[None], list[str]]:
        return start_task(loop, app(), contextvars.Context(), turn_batch(loop)), list(ran)

    task, at_return = loop.run_until_complete(predecessor())
    loop.run_until_complete(asyncio.sleep(0.01))
    assert task.done()
    assert ran == ["app"]
    assert at_return == (["app"] if EAGER_IN_TASK else [])


def test_a_task_factory_is_respected(loop: asyncio.AbstractEventLoop) -> None:
    made: list[Coroutine[Any, Any, Any]] = []

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        if getattr(coro, "__name__", "") == "app":
            made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)  # type: ignore[arg-type]

    async def app() -> None:
        pass

    task = in_callback(
        loop, lambda: start_task(loop, app(), contextvars.Context(), turn_batch(loop))
    )
    assert task.done()
    assert len(made) == 1

    async def predecessor() -> asyncio.Task[None]:
        # not eager when the app set a factory
        return start_task(loop, app(), contextvars.Context(), turn_batch(loop))

    nested = loop.run_until_complete(predecessor())
    loop.run_until_complete(asyncio.sleep(0.01))
    assert nested.done()
    assert len(made) == 2


def test_deferred_first_steps_all_run(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[int] = []

    async def app(number: int) -> None:
        ran.append(number)

    def start_some() -> list[asyncio.Task[None]]:
        return [
            start_task(loop, app(number), contextvars.Context(), turn_batch(loop))
            for number in range(10)
        ]

    tasks = in_callback(loop, start_some)
    assert all(task.done() for task in tasks)
    assert ran == list(range(10))  # in the order they were started


def test_deferred_first_steps_know_how_many_run_together(loop: asyncio.AbstractEventLoop) -> None:
    # An answer completed among others waits to be written with them (ConnectionProtocol);
    # a lone one is written at once.
    seen: list[int] = []

    async def app() -> None:
        seen.append(turn_batch(loop).running)

    in_callback(
        loop,
        lambda: [
            start_task(loop, app(), contextvars.Context(), turn_batch(loop)) for _ in range(5)
        ],
    )
    in_callback(loop, lambda: start_task(loop, app(), contextvars.Context(), turn_batch(loop)))
    assert seen == [5] * 5 + [1]


def test_the_flush_callback_ends_the_batch(loop: asyncio.AbstractEventLoop) -> None:
    flusher = FlushScheduler(loop)
    assert flusher.turn is turn_batch(loop)
    flusher.turn.running = 7
    flusher.run()
    assert flusher.turn.running == 0


@pytest.mark.parametrize("from_task", [False, True], ids=["from-callback", "from-a-task"])
def test_the_task_runs_in_the_given_context_not_its_starters(
    loop: asyncio.AbstractEventLoop, from_task: bool
) -> None:
    # A pipelined request is started from its predecessor's task, which set VAR: the new
    # request must see the context it was given (the server's), not the predecessor's.
    base = contextvars.Context()
    base.run(VAR.set, "server")
    seen: list[str] = []

    async def app() -> None:
        seen.append(VAR.get())
        VAR.set("set by this request")

    async def predecessor() -> asyncio.Task[None]:
        VAR.set("set by the previous request")
        return start_task(loop, app(), base.copy(), turn_batch(loop))

    def from_callback() -> asyncio.Task[None]:
        VAR.set("set in the callback's context")
        return start_task(loop, app(), base.copy(), turn_batch(loop))

    if from_task:
        task = loop.run_until_complete(predecessor())
        loop.run_until_complete(asyncio.sleep(0.01))
    else:
        task = in_callback(loop, from_callback)
    assert task.done()
    assert seen == ["server"]
    assert base.run(VAR.get) == "server"  # each task ran in a copy

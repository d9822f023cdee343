"""start_task: an app's first step runs as a real Task, at once where that pays.

Run on uvloop and on the stdlib loop; each case starts tasks from a plain loop callback, as
``data_received`` does. On 3.11 the first ``DEFERRED_PER_TURN`` starts of a loop turn leave
their first step to the loop and the rest run at once; the eager cases start that many
fillers first (``past_quota``).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from pronghorn.server.state import FlushScheduler
from pronghorn.server.tasks import DEFERRED_PER_TURN, EAGER, start_task, turn_quota

uvloop = pytest.importorskip("uvloop")

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


@pytest.fixture(params=["uvloop", "asyncio"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    made = uvloop.new_event_loop() if request.param == "uvloop" else asyncio.new_event_loop()
    yield made
    made.close()


async def filler() -> None:
    pass


def in_callback(
    loop: asyncio.AbstractEventLoop, body: Callable[[], Any], *, past_quota: bool = True
) -> Any:
    """Run ``body`` from a loop callback (no task current), then let the loop settle.

    ``past_quota``: first use up the turn's deferred starts, so ``body``'s starts are eager.
    """
    result: list[Any] = []

    def callback() -> None:
        if past_quota and not EAGER:
            for _ in range(DEFERRED_PER_TURN):
                start_task(loop, filler())
        result.append(body())

    loop.call_soon(callback)
    loop.run_until_complete(asyncio.sleep(0.05))
    return result[0]


def test_a_handler_that_never_suspends_is_done_on_return(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[object] = []

    async def app() -> None:
        seen.append(asyncio.current_task())

    task = in_callback(loop, lambda: (start_task(loop, app()), list(seen)))
    started, seen_at_return = task
    assert started.done()
    assert started.exception() is None
    # It ran before start_task returned, as the task itself.
    assert seen_at_return == [started]
    assert "call_soon" not in getattr(loop, "__dict__", {})  # the loop's own method again


def test_a_suspending_handler_continues_in_its_task(loop: asyncio.AbstractEventLoop) -> None:
    steps: list[str] = []

    async def app() -> None:
        VAR.set("inner")
        steps.append("first")
        await asyncio.sleep(0.001)
        steps.append(f"second {VAR.get()}")

    def body() -> tuple[asyncio.Task[None], list[str]]:
        return start_task(loop, app()), list(steps)

    task, at_return = in_callback(loop, body)
    assert at_return == ["first"]
    assert task.done()
    assert steps == ["first", "second inner"]
    assert VAR.get() == "outer"  # the task ran in its own context


def test_an_exception_in_the_first_step_is_the_tasks(loop: asyncio.AbstractEventLoop) -> None:
    async def app() -> None:
        raise ValueError("boom")

    task = in_callback(loop, lambda: start_task(loop, app()))
    assert task.done()
    assert isinstance(task.exception(), ValueError)


def test_cancelling_after_the_first_step_reaches_the_app(loop: asyncio.AbstractEventLoop) -> None:
    outcome: list[str] = []

    async def app() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    def body() -> asyncio.Task[None]:
        task = start_task(loop, app())
        task.cancel()
        return task

    task = in_callback(loop, body)
    assert task.cancelled()
    assert outcome == ["cancelled"]


def test_started_from_inside_a_task_still_runs(loop: asyncio.AbstractEventLoop) -> None:
    # A pipelined request is started by its predecessor's task finishing; on 3.11 its first
    # step waits for the loop (a task's step cannot be interrupted), on 3.12+ it is eager.
    ran: list[str] = []

    async def app() -> None:
        ran.append("app")

    async def predecessor() -> tuple[asyncio.Task[None], list[str]]:
        return start_task(loop, app()), list(ran)

    task, at_return = loop.run_until_complete(predecessor())
    loop.run_until_complete(asyncio.sleep(0.01))
    assert task.done()
    assert ran == ["app"]
    assert at_return == (["app"] if EAGER else [])


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

    task = in_callback(loop, lambda: start_task(loop, app()))
    assert task.done()
    # 3.12's eager start builds its Task itself; 3.11 leaves the factory to create it.
    assert len(made) == (0 if EAGER else 1)


def test_the_first_starts_of_a_turn_wait_for_the_loop_on_311(
    loop: asyncio.AbstractEventLoop,
) -> None:
    def start_many() -> list[bool]:
        tasks = [start_task(loop, filler()) for _ in range(DEFERRED_PER_TURN + 2)]
        return [task.done() for task in tasks]

    done_at_return = in_callback(loop, start_many, past_quota=False)
    if EAGER:
        assert all(done_at_return)
    else:
        assert done_at_return == [False] * DEFERRED_PER_TURN + [True, True]
    # A turn that started more than the quota is followed by one that defers nothing: its
    # answers leave in the same I/O phase instead of after the next one.
    done_at_return = in_callback(loop, start_many, past_quota=False)
    assert all(done_at_return)

    def start_one() -> bool:
        return start_task(loop, filler()).done()

    # Still crowded (that turn started 66): eager; a turn of one ends it.
    assert in_callback(loop, start_one, past_quota=False) is True
    # The count starts again: the first start of the turn is deferred on 3.11.
    assert in_callback(loop, start_one, past_quota=False) is EAGER


def test_deferred_first_steps_all_run(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[int] = []

    async def app(number: int) -> None:
        ran.append(number)

    def start_some() -> list[asyncio.Task[None]]:
        return [start_task(loop, app(number)) for number in range(10)]

    tasks = in_callback(loop, start_some, past_quota=False)
    assert all(task.done() for task in tasks)
    assert ran == list(range(10))  # in the order they were started


def test_deferred_first_steps_know_how_many_run_together(loop: asyncio.AbstractEventLoop) -> None:
    # An answer completed among others waits to be written with them (ConnectionProtocol);
    # a lone one is written at once.
    seen: list[int] = []

    async def app() -> None:
        seen.append(turn_quota(loop).batch)

    in_callback(loop, lambda: [start_task(loop, app()) for _ in range(5)], past_quota=False)
    in_callback(loop, lambda: start_task(loop, app()), past_quota=False)
    assert seen == ([0] * 6 if EAGER else [5] * 5 + [1])


def test_the_flush_callback_ends_the_batch(loop: asyncio.AbstractEventLoop) -> None:
    flusher = FlushScheduler(loop)
    assert flusher.turn is turn_quota(loop)
    flusher.turn.batch = 7
    flusher.run()
    assert flusher.turn.batch == 0

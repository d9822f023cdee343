"""server/awaits: compiled code's awaits pass a cancellation on in throw()'s one-argument form.

Every case runs with warnings as errors (the suite's setting), so the deprecated
three-argument form reaching a future or coroutine on 3.12+ would fail it.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from pronghorn.compiled import is_compiled
from pronghorn.server.awaits import COMPILED, THROW_TAKES_ONE_ARGUMENT, Delegate, delegate


def run(coro: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_delegate_wraps_only_compiled_awaits_where_the_three_argument_form_is_deprecated() -> None:
    async def coro() -> None:
        pass

    awaitable = coro()
    wrapped = delegate(awaitable)
    assert THROW_TAKES_ONE_ARGUMENT is (sys.version_info >= (3, 12))
    assert COMPILED is is_compiled("pronghorn.server.awaits")
    wraps = THROW_TAKES_ONE_ARGUMENT and COMPILED
    assert (type(wrapped) is Delegate) is wraps
    assert (wrapped is awaitable) is not wraps
    run(wrapped)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["coroutine", "future"])
def test_results_and_suspensions_pass_through(kind: str) -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        if kind == "future":
            future: asyncio.Future[int] = loop.create_future()
            loop.call_later(0.01, future.set_result, 7)
            return await Delegate(future)

        async def inner() -> int:
            await asyncio.sleep(0.01)  # suspends: the Delegate yields the sleep's future
            return 7

        return await Delegate(inner())

    assert run(main()) == 7


@pytest.mark.parametrize("kind", ["coroutine", "future"])
def test_a_three_argument_throw_arrives_as_the_exception_alone(kind: str) -> None:
    seen: list[BaseException] = []

    async def inner() -> None:
        try:
            await asyncio.sleep(10)
        except BaseException as exc:
            seen.append(exc)
            raise

    async def main() -> None:
        loop = asyncio.get_running_loop()
        target: Any = loop.create_future() if kind == "future" else inner()
        steps = Delegate(target).__await__()
        steps.send(None)  # suspended at its first await
        error = asyncio.CancelledError("stop")
        # What mypyc's compiled await does with a thrown exception.
        with pytest.raises(asyncio.CancelledError) as raised:
            steps.throw(type(error), error, error.__traceback__)  # type: ignore[call-overload]
        assert raised.value is error
        steps.close()

    run(main())
    if kind == "coroutine":
        assert len(seen) == 1
        assert isinstance(seen[0], asyncio.CancelledError)


def test_close_reaches_the_awaited_coroutine() -> None:
    closed: list[bool] = []

    async def inner() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            closed.append(True)

    async def main() -> None:
        steps = Delegate(inner()).__await__()
        steps.send(None)
        steps.close()

    run(main())
    assert closed == [True]

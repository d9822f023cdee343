"""``await delegate(x)``: how compiled code awaits what is not itself compiled.

A mypyc-compiled coroutine passes an exception thrown into it (a task's cancellation) on to the
future or coroutine it awaits with ``throw(type, value, traceback)``, a form CPython 3.12
deprecates: the future or coroutine then raises a DeprecationWarning, which is an error wherever
warnings are errors (a test suite's ``-W error``), in place of the CancelledError (mypyc issue
1214). The interpreter itself forwards a thrown exception in the one-argument form, and so does
a ``Delegate``: on 3.12+ compiled code awaits futures and asyncio's coroutines through one,
and behaves as the same code interpreted does. (The app is awaited by server/appcall.py,
interpreted on 3.12+, which needs none.) On 3.11 nothing is deprecated, and the
pure build's code is interpreted: there ``delegate`` hands the awaitable back as it is (a
Delegate is not free: itself, a method call per step, and its end raised as a StopIteration
through compiled code; around the app it cost 5k instructions per hello request on 3.12).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType, TracebackType
from typing import Any, Final, Generic, TypeVar, cast

__all__ = ["COMPILED", "THROW_TAKES_ONE_ARGUMENT", "Delegate", "delegate"]

T = TypeVar("T")

#: CPython 3.12 deprecated throw()'s three-argument form.
THROW_TAKES_ONE_ARGUMENT: Final = sys.version_info >= (3, 12)
#: This module is compiled exactly when its callers are (the build compiles all or none).
COMPILED: Final = not __file__.endswith(".py")


def delegate(awaitable: Awaitable[T]) -> Awaitable[T]:
    """What compiled code awaits in place of ``awaitable``."""
    if THROW_TAKES_ONE_ARGUMENT and COMPILED:
        return Delegate(awaitable)
    return awaitable


class Delegate(Generic[T]):
    """Awaits ``awaitable`` on the caller's behalf: an iterator over its steps that passes every
    send, throw and close on unchanged, except that throw passes the exception alone."""

    __slots__ = ("_steps",)

    def __init__(self, awaitable: Awaitable[T]) -> None:
        # A native coroutine is its own iterator: no __await__ wrapper object is needed.
        self._steps: Coroutine[Any, Any, T] | Generator[Any, Any, T] = (
            awaitable if type(awaitable) is CoroutineType else awaitable.__await__()
        )

    def __await__(self) -> Generator[Any, Any, T]:
        return cast("Generator[Any, Any, T]", self)

    def __iter__(self) -> Delegate[T]:
        return self

    def __next__(self) -> Any:
        return self._steps.send(None)

    def send(self, value: Any) -> Any:
        return self._steps.send(value)

    def throw(
        self,
        kind: type[BaseException] | BaseException,
        value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> Any:
        return self._steps.throw(kind if value is None else value)

    def close(self) -> None:
        self._steps.close()

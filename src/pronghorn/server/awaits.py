"""``await delegate(x)``: how compiled code awaits what is not itself compiled.

A mypyc-compiled coroutine passes an exception thrown into it (a task's cancellation) on to the
future or coroutine it awaits with ``throw(type, value, traceback)``, a form CPython 3.12
deprecates: the future or coroutine then raises a DeprecationWarning, which is an error wherever
warnings are errors (a test suite's ``-W error``), in place of the CancelledError (mypyc issue
1214). The interpreter itself forwards a thrown exception in the one-argument form, and so does
the delegate: compiled code awaits futures, the app and asyncio's coroutines through it, and
behaves as the same code interpreted does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

__all__ = ["Delegate"]

T = TypeVar("T")


class Delegate(Generic[T]):
    """Awaits ``awaitable`` on the caller's behalf: an iterator over its steps that passes every
    send, throw and close on unchanged, except that throw passes the exception alone."""

    __slots__ = ("_steps",)

    def __init__(self, awaitable: Awaitable[T]) -> None:
        self._steps: Generator[Any, Any, T] = awaitable.__await__()

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

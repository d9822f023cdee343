"""Turn the APP setting into an ASGI 3 callable.

``load_app(config, app=None)`` is the one entry point: it imports ``config.app`` ("module:attr",
or the built-in demo when unset) unless an object is given, applies ``--env-file``,
``--app-dir`` and ``--factory``, detects the interface (ASGI 3, ASGI 2 or WSGI; ``--interface``
forces one) and wraps ASGI 2 and WSGI apps so the server only ever sees ASGI 3.

Every failure is an :class:`AppImportError` with a one-line message; the original exception is
kept as ``__cause__`` so ``--log-level debug`` can still show its traceback.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pronghorn.errors import AppImportError

if TYPE_CHECKING:
    from pronghorn.config import Config

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEMO_APP = "pronghorn.demo:app"


def import_from_string(import_str: str) -> Any:
    """Import ``"module:attr.sub"`` and return the object it names."""
    module_str, sep, attrs_str = import_str.partition(":")
    if not sep or not module_str or not attrs_str:
        raise AppImportError(
            f"Import string {import_str!r} must be in format '<module>:<attribute>'."
        )
    module = _import_module(module_str)
    obj: Any = module
    for attr in attrs_str.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppImportError(
                f"Attribute {attrs_str!r} not found in module {module_str!r}."
            ) from None
    return obj


def _import_module(module_str: str) -> Any:
    try:
        return importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        # Only a missing *target* (or one of its parent packages) is "could not import";
        # a ModuleNotFoundError raised by an import inside the user's module is their bug.
        missing = exc.name or ""
        if missing and (module_str == missing or module_str.startswith(missing + ".")):
            raise AppImportError(f"Could not import module {module_str!r}.") from exc
        raise AppImportError(_describe_failure(module_str, exc)) from exc
    except Exception as exc:
        raise AppImportError(_describe_failure(module_str, exc)) from exc


def _describe_failure(module_str: str, exc: BaseException) -> str:
    """One line: what the user's module raised, and where."""
    where = ""
    # str() of a SyntaxError already names the file and line; other errors get their frame.
    if not isinstance(exc, SyntaxError):
        frames = traceback.extract_tb(exc.__traceback__)
        # The deepest frame outside importlib's bootstrap is where the user's code raised.
        user_frames = [f for f in frames if not f.filename.startswith("<frozen")]
        if user_frames:
            where = f" (at {user_frames[-1].filename}:{user_frames[-1].lineno})"
    return f"Error while importing module {module_str!r}: {_one_line(exc)}{where}"


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (a multi-line message would break the one-line rule)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


def load_env_file(path: str) -> None:
    """Set the variables of a simple ``.env`` file that are not already in the environment.

    Lines are ``KEY=VALUE`` (an ``export`` prefix, blank lines and ``#`` comments are allowed);
    values may be wrapped in single or double quotes. Existing variables win, as they do with
    the usual dotenv tools, so a deployment can still override a checked-in file.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AppImportError(f"Cannot read --env-file {path}: {exc.strerror}") from None
    for key, value in parse_env(text).items():
        os.environ.setdefault(key, value)


def parse_env(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise AppImportError(f"--env-file line {number} is not KEY=VALUE: {raw_line!r}")
        value = value.strip()
        quote = value[:1]
        if len(value) >= 2 and quote in ("'", '"') and value[-1] == quote:
            value = value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            # An unquoted value ends at an inline comment.
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def _prepend_app_dir(app_dir: str) -> None:
    # Like uvicorn, the current directory is importable even from the console script, where
    # sys.path does not start with it.
    directory = os.path.abspath(app_dir or ".")
    if directory not in sys.path:
        sys.path.insert(0, directory)


def load_app(config: Config, app: object | None = None) -> ASGIApp:
    """The ASGI 3 callable the server should run for ``config`` (or for the given ``app``)."""
    if config.env_file:
        load_env_file(config.env_file)
    name = "the app object"
    if app is None:
        name = config.app or DEMO_APP
        _prepend_app_dir(config.app_dir)
        app = import_from_string(name)
    if config.factory:
        if not callable(app):
            raise AppImportError(f"The factory {name} is not callable.")
        try:
            app = app()
        except Exception as exc:
            raise AppImportError(f"Error calling the factory {name}: {_one_line(exc)}") from exc
    if not callable(app):
        raise AppImportError(
            f"{name} is not an application: it is a {type(app).__name__}, not a callable."
        )
    interface = config.interface if config.interface != "auto" else detect_interface(app)
    if interface == "asgi2":
        return ASGI2Adapter(app)
    if interface == "wsgi":
        from pronghorn.server.wsgi import WSGIAdapter

        return WSGIAdapter(app, threads=config.wsgi_threads)
    return app  # type: ignore[no-any-return]


def _is_coroutine_callable(obj: Any) -> bool:
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - we want the method itself
    return inspect.iscoroutinefunction(call)


def _positional_count(obj: Any) -> int | None:
    """How many positional arguments ``obj`` takes; None when unknown or variadic."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    count = 0
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if param.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return count


def detect_interface(app: Any) -> str:
    """'asgi3', 'asgi2' or 'wsgi', from the shape of the callable.

    A coroutine callable is ASGI 3. Otherwise the number of positional parameters decides:
    one (``scope``; a class or a function returning the ASGI 2 instance) is ASGI 2, two
    (``environ, start_response``) is WSGI, anything else is taken for ASGI 3 (a plain function
    returning the awaitable, as some middleware is written).
    """
    if inspect.isclass(app):
        # Calling a class creates an instance: ``Class(scope)`` is the ASGI 2 shape (its async
        # ``__call__`` is the instance's, not the app's); an awaitable class is ASGI 3.
        return "asgi3" if hasattr(app, "__await__") else "asgi2"
    if _is_coroutine_callable(app):
        return "asgi3"
    count = _positional_count(app)
    if count == 1:
        return "asgi2"
    if count == 2:
        return "wsgi"
    return "asgi3"


class ASGI2Adapter:
    """Runs an ASGI 2 app (``app(scope)`` returns ``instance(receive, send)``) as ASGI 3."""

    __slots__ = ("app",)

    def __init__(self, app: Callable[[Scope], Callable[[Receive, Send], Awaitable[None]]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)

"""``pronghorn [APP] [flags]``: an argument parser generated from ``Config``'s field metadata.

Nothing here names a setting: each field of ``Config`` becomes one flag (its metadata gives the
flag, short form, help, group and metavar; its type gives the parsing), so a new setting needs no
CLI change. Only the flags the user actually gave reach ``config.load`` (every default is
``argparse.SUPPRESS``), which is what lets the environment and the config file fill the rest:
CLI > environment > config file > default.

Exit codes: 0 clean shutdown; 1 the app could not be loaded or the server could not start;
2 a bad flag or setting; 3 the app failed its lifespan startup. These failures print one line on
stderr, no traceback (``--log-level debug`` adds the underlying one).
"""

from __future__ import annotations

import argparse
import platform
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_origin

from pronghorn import __version__, config
from pronghorn.compiled import hot_path_compiled
from pronghorn.errors import ConfigError, LifespanFailure, PronghornError

PROG = "pronghorn"

_GROUP_TITLES = {
    "app": "application",
    "sockets": "sockets",
    "processes": "processes",
    "http": "HTTP",
    "websocket": "WebSocket",
    "tls": "TLS",
    "logging": "logging",
}

_TRUE_WORDS = frozenset(("1", "true", "yes", "on"))
_FALSE_WORDS = frozenset(("0", "false", "no", "off"))


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (like every other failure), still exit 2."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(kind: type[int] | type[float], optional: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and text.lower() in ("none", "null", ""):
            return None
        try:
            return kind(text)
        except ValueError:
            noun = "whole number" if kind is int else "number"
            extra = " or 'none'" if optional else ""
            raise argparse.ArgumentTypeError(f"expected a {noun}{extra}, not {text!r}") from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _default_text(value: Any) -> str:
    if value is None or value == [] or value == "":
        return ""
    if value is True:
        return " [default: on]"
    if value is False:
        return " [default: off]"
    return f" [default: {value}]"


def _env_text(name: str, extra: tuple[str, ...]) -> str:
    # The epilog explains PRONGHORN_<FLAG>; list it only where the flag is not the setting's
    # name (--reload-dir sets reload_dirs), plus any extra names.
    names = list(extra)
    if config.flag_of(name) != "--" + name.replace("_", "-"):
        names.insert(0, config.ENV_PREFIX + name.upper())
    return f" [env: {', '.join(names)}]" if names else ""


def _is_bool(name: str) -> bool:
    typ, _ = config.base_type(config.hint_of(name))
    return typ is bool


def _add_setting(group: argparse._ArgumentGroup, field: Any) -> None:
    name: str = field.name
    meta = field.metadata
    typ, optional = config.base_type(config.hint_of(name))
    flags = [config.flag_of(name)]
    if meta.get("short"):
        flags.insert(0, meta["short"])
    default = field.default_factory() if callable(field.default_factory) else field.default
    kwargs: dict[str, Any] = {
        "dest": name,
        "default": argparse.SUPPRESS,
        "help": meta["help"] + _default_text(default) + _env_text(name, meta.get("env", ())),
    }
    if typ is bool:
        if meta.get("negatable", True):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["action"] = "store_true"
    elif get_origin(typ) is list:
        kwargs["action"] = "append"
        kwargs["metavar"] = meta.get("metavar") or name.upper().rstrip("S")
    elif get_origin(typ) is Literal:
        kwargs["choices"] = config.choices_of(name)
    elif typ in (int, float):
        kwargs["type"] = _number(typ, optional)
        kwargs["metavar"] = meta.get("metavar") or typ.__name__.upper()
    else:
        kwargs["metavar"] = meta.get("metavar") or "TEXT"
    group.add_argument(*flags, **kwargs)


def version_text() -> str:
    build = "compiled" if hot_path_compiled() else "pure-Python"
    return (
        f"{PROG} {__version__} ({build} hot path) with {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s [APP] [options]",
        description="Serve an ASGI (or WSGI) application. Flags override PRONGHORN_* "
        "environment variables, which override pronghorn.toml / [tool.pronghorn].",
        epilog="Every flag can also be set as an environment variable: --timeout-keep-alive 3 "
        "is PRONGHORN_TIMEOUT_KEEP_ALIVE=3 (booleans take true/false, lists are "
        "comma-separated, 'none' unsets an optional number). Exit status: 0 clean stop, 1 the "
        "app or server failed to start, 2 a bad setting, 3 the app failed lifespan startup.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "app",
        nargs="?",
        default=argparse.SUPPRESS,
        metavar="APP",
        help="The app as 'module:attribute' (the built-in demo when omitted).",
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="Read settings from this TOML file instead of ./pronghorn.toml or "
        "./pyproject.toml [tool.pronghorn].",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in config.fields():
        if not field.metadata.get("cli", True):
            continue
        group_name = field.metadata.get("group", "server")
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(
                _GROUP_TITLES.get(group_name, group_name)
            )
        _add_setting(groups[group_name], field)
    return parser


def _bool_flags() -> dict[str, bool]:
    """``--flag`` -> whether it has a ``--no-flag``, for every boolean setting."""
    return {
        config.flag_of(field.name): field.metadata.get("negatable", True)
        for field in config.fields()
        if field.metadata.get("cli", True) and _is_bool(field.name)
    }


def normalise_argv(argv: Sequence[str]) -> list[str]:
    """Let a boolean flag take an explicit value, as uvicorn's ``--ws-per-message-deflate
    false`` does: ``--x=false`` or ``--x false`` becomes ``--no-x`` (and true, ``--x``).

    Only the words true/false/yes/no/on/off/1/0 are taken as a value, so ``--reload app:app``
    still reads APP.
    """
    flags = _bool_flags()
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        token = items[i]
        i += 1
        if token == "--":  # noqa: S105 - the end-of-options marker, not a password
            out.extend(items[i - 1 :])
            break
        flag, eq, value = token.partition("=")
        if flag not in flags:
            out.append(token)
            continue
        if not eq and i < len(items) and items[i].lower() in _TRUE_WORDS | _FALSE_WORDS:
            value = items[i]
            i += 1
        elif not eq:
            out.append(token)
            continue
        word = value.lower()
        if word in _TRUE_WORDS:
            out.append(flag)
        elif word in _FALSE_WORDS and flags[flag]:
            out.append("--no-" + flag[2:])
        elif word in _FALSE_WORDS:
            continue  # a store_true flag set to false is its default: nothing to pass on
        else:
            out.append(token)  # let argparse report the bad value
    return out


def parse_cli(argv: Sequence[str]) -> tuple[dict[str, Any], Path | None]:
    """The settings the user gave on the command line, and the ``--config`` file if any."""
    namespace = build_parser().parse_args(normalise_argv(argv))
    values = vars(namespace)
    config_file = values.pop("config_file", None)
    return values, Path(config_file) if config_file else None


def load_settings(
    values: Mapping[str, Any],
    config_file: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    directory: Path | None = None,
) -> config.Config:
    """Merge CLI values with the environment and config file (``config.load``).

    ``config.load`` reads a None CLI value as "not given"; a user who typed ``--x none`` did
    give it, so those are applied on top, over whatever the environment or file said.
    """
    settings = config.load(values, environ=environ, config_file=config_file, directory=directory)
    explicit_none = {name: None for name, value in values.items() if value is None}
    return config.replace(settings, **explicit_none) if explicit_none else settings


def _fail(exc: BaseException, code: int, *, debug: bool) -> int:
    if debug and exc.__cause__ is not None:
        traceback.print_exception(exc.__cause__, file=sys.stderr)
    print(f"{PROG}: error: {exc}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run pronghorn from the command line; returns the process exit code."""
    values, config_file = parse_cli(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings(values, config_file)
    except ConfigError as exc:
        return _fail(exc, 2, debug=False)

    from pronghorn.runner import serve

    debug = settings.log_level in ("debug", "trace")
    try:
        return serve(settings)
    except ConfigError as exc:
        return _fail(exc, 2, debug=debug)
    except LifespanFailure as exc:
        return _fail(exc, 3, debug=debug)
    except PronghornError as exc:  # AppImportError, StartupError
        return _fail(exc, 1, debug=debug)
    except KeyboardInterrupt:
        # Ctrl+C before the server installed its own signal handling (e.g. while importing).
        return 130

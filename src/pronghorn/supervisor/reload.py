"""``--reload``: which file changes count, and the thread that watches for them with watchfiles.

A change counts when the file matches an include pattern (``*.py`` always, plus each
``--reload-include`` and the ``--env-file``) and no exclude pattern. Patterns match the file name,
any directory on the way to it, or its path below the watched directory (``templates/*.html``).
The default excludes (hidden files, editor swap and backup files) give way to an explicit
include, so ``--reload-include .env`` works; an explicit ``--reload-exclude`` always wins. Files
inside hidden directories, ``__pycache__``, ``node_modules`` and virtual environments (a
directory holding ``pyvenv.cfg``) never count, since a ``git checkout`` or a ``pip install``
must not restart the server once per file.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath

from pronghorn.config import Config
from pronghorn.errors import StartupError

logger = logging.getLogger("pronghorn.error")

DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (
    ".*",  # hidden: .env, vim's .file.swp, emacs's .#file
    "*~",  # backups
    "#*#",  # emacs autosave
    "*.sw[a-p]",  # vim swap
    "*.py[cod]",
    "4913",  # vim's probe file, created and deleted on every save
)
# Directories whose contents never reload unless an include names the directory itself.
DEFAULT_DIRECTORY_EXCLUDES = (".*", "__pycache__", "node_modules", "site-packages")


class ChangeFilter:
    """Decides whether a changed path should reload the server."""

    def __init__(
        self,
        roots: Iterable[Path],
        includes: Iterable[str] = (),
        excludes: Iterable[str] = (),
    ) -> None:
        self.roots = [Path(root).resolve() for root in roots]
        self.user_includes = tuple(includes)
        self.excludes = tuple(excludes)

    def __call__(self, change: object, path: str) -> bool:
        return self.counts(path)

    def counts(self, path: str) -> bool:
        relative = self._relative(Path(path))
        if relative is None or self._matches(relative, self.excludes):
            return False
        directories = relative.parts[:-1]
        for part in directories:
            default_excluded = any(fnmatch.fnmatchcase(part, p) for p in DEFAULT_DIRECTORY_EXCLUDES)
            if default_excluded and not any(
                fnmatch.fnmatchcase(part, p) for p in self.user_includes
            ):
                return False
        if self._inside_virtualenv(Path(path)):
            return False
        if self._matches(relative, self.user_includes):
            return True
        return self._matches(relative, DEFAULT_INCLUDES) and not self._matches(
            relative, DEFAULT_EXCLUDES
        )

    def _relative(self, path: Path) -> PurePath | None:
        for root in self.roots:
            if path == root or root in path.parents:
                return path.relative_to(root)
        return None

    @staticmethod
    def _matches(relative: PurePath, patterns: Iterable[str]) -> bool:
        parts = relative.parts
        for pattern in patterns:
            if "/" in pattern:
                if relative.match(pattern):
                    return True
            elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
                return True
        return False

    def _inside_virtualenv(self, path: Path) -> bool:
        for parent in path.parents:
            if any(parent == root for root in self.roots) or parent == parent.parent:
                return False
            if (parent / "pyvenv.cfg").is_file():
                return True
        return False


def watched_directories(config: Config) -> list[Path]:
    """``--reload-dir`` values, or the current directory; plus ``--app-dir`` when it lies
    outside them, since that is where the app's code is."""
    dirs = [Path(d).resolve() for d in config.reload_dirs] or [Path.cwd()]
    if config.app_dir:
        app_dir = Path(config.app_dir).resolve()
        if not any(app_dir == d or d in app_dir.parents for d in dirs):
            dirs.append(app_dir)
    # Watching a directory inside another one would report each change twice.
    return [d for d in dirs if not any(o in d.parents for o in dirs)]


class Watcher:
    """Runs watchfiles in a daemon thread and hands each batch of changed paths to ``on_change``.

    The thread only reports; the supervisor's loop decides what to do, so no state is shared.
    """

    def __init__(self, config: Config, on_change: Callable[[list[str]], None]) -> None:
        try:
            import watchfiles
        except ImportError:
            raise StartupError("--reload needs the watchfiles package") from None
        self._watch = watchfiles.watch
        self.directories = watched_directories(config)
        for missing in (d for d in self.directories if not d.is_dir()):
            logger.warning("--reload-dir %s does not exist; not watching it", missing)
        self.directories = [d for d in self.directories if d.is_dir()]
        includes = list(config.reload_includes)
        if config.env_file:
            # The app reads it at import: editing it is editing the app.
            includes.append(Path(config.env_file).name)
        self.filter = ChangeFilter(self.directories, includes, config.reload_excludes)
        self.delay_ms = max(1, int(config.reload_delay * 1000))
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pronghorn-reload", daemon=True)

    def start(self) -> None:
        shown = ", ".join(map(str, self.directories))
        logger.info("Watching for file changes in %s", shown)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        try:
            for changes in self._watch(
                *self.directories,
                watch_filter=self.filter,
                step=self.delay_ms,
                stop_event=self._stop,
                rust_timeout=500,
                raise_interrupt=False,
                debounce=max(1600, self.delay_ms * 4),
            ):
                paths = sorted({os.path.relpath(path) for _, path in changes})
                self.on_change(paths)
        except Exception:  # a dead watcher must say so, or --reload silently stops working
            logger.exception("The file watcher stopped")

"""The supervisor: keeps N workers serving on the sockets it bound, in one synchronous loop.

Everything that happens to the workers is decided here, in the main thread, between two
``select()`` calls: signals, worker messages and exits, file changes (reload) and deadlines only
record themselves and wake the loop. The loop is deliberately not asyncio: this process never
serves, and keeping it free of the server code means a reload re-imports everything.

Policy:
- a worker that dies is replaced at once the first time, then with doubling backoff while its
  slot keeps crashing; one whose server stops by itself (request limit) is replaced as soon as
  it says it drains;
- a worker that leaves a health ping unanswered for ``--timeout-worker-healthcheck`` is killed;
- a worker that exits before it serves (its app failed to import or to start, or no ``ready``
  within ``--timeout-worker-startup``) stops the whole server with status 3 instead of looping,
  except during a rolling restart, where the old workers keep serving and the restart is
  abandoned, and under ``--reload``, where the next file change tries again;
- SIGHUP replaces the workers one at a time, each new one serving before its old one drains;
  a worker past ``--limit-max-rss`` is replaced the same way.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import selectors
import signal
import socket
import time
from types import FrameType
from typing import Any

from pronghorn import sockets, systemd
from pronghorn.config import Config, replace
from pronghorn.supervisor import channel
from pronghorn.supervisor.process import Worker, WorkerState, spawn

logger = logging.getLogger("pronghorn.error")

MIB = 1024 * 1024
STABLE_AFTER = 10.0  # seconds of serving after which a slot's crash count is forgotten
MAX_BACKOFF = 10.0
FORCED_EXIT = 1

HANDLED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGCHLD,
)


def backoff(crashes: int) -> float:
    """Seconds to wait before restarting a slot that crashed ``crashes`` times in a row."""
    return 0.0 if crashes <= 1 else min(0.25 * 2 ** (crashes - 2), MAX_BACKOFF)


class Supervisor:
    """Run with :meth:`run`; the reload watcher reports changes through :meth:`files_changed`."""

    def __init__(self, config: Config, listeners: list[socket.socket]) -> None:
        self.config = config
        self.target = config.workers
        # One socket list per slot. Without --reuse-port every slot shares the same sockets; with
        # it each slot keeps its own SO_REUSEPORT sockets for the supervisor's lifetime, so the
        # replacement of a worker inherits the connections queued on its predecessor's socket.
        self.slot_sockets: list[list[socket.socket]] = [listeners]
        self.workers: dict[int, Worker] = {}
        self.crashes: collections.Counter[int] = collections.Counter()
        self.restart_at: dict[int, float] = {}
        self.rolling: collections.deque[Worker] = collections.deque()
        self.replacing: Worker | None = None
        self.reload = config.reload
        self.waiting_for_change = False
        self.changes: collections.deque[list[str]] = collections.deque()
        self.stopping = False
        self.exit_code = channel.EXIT_OK
        self.announced_ready = False
        self.reloading = False  # a SIGHUP rolling restart is under way
        self.started_total = 0
        self.crashed_total = 0
        self._signals: collections.deque[int] = collections.deque()
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        for end in (self._wake_reader, self._wake_writer):
            end.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        interval = config.timeout_worker_healthcheck / 4
        self.ping_interval = min(max(interval, 0.05), 5.0)

    # ------------------------------------------------------------------ outside world
    def statistics(self) -> dict[str, int]:
        """A snapshot: wanted workers, workers by state, and what happened to them so far."""
        states = collections.Counter(w.state for w in self.workers.values())
        return {
            "target": self.target,
            "starting": states[WorkerState.STARTING],
            "serving": states[WorkerState.SERVING],
            "stopping": states[WorkerState.STOPPING],
            "started_total": self.started_total,
            "crashed_total": self.crashed_total,
        }

    def wake(self) -> None:
        """Thread-safe: make the loop look at its queues now."""
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def files_changed(self, paths: list[str]) -> None:
        """Called from the reload watcher's thread."""
        self.changes.append(paths)
        self.wake()

    def run(self) -> int:
        previous = self._install_signal_handlers()
        try:
            self._ensure_slots(self.target)
            self._loop()
        finally:
            self._restore_signal_handlers(previous)
            self.close()
        return self.exit_code

    def close(self) -> None:
        """Kill and reap any worker left (only after an error), release what __init__ opened."""
        for worker in list(self.workers.values()):
            worker.kill("the supervisor is exiting")
            worker.process.wait()
            self._forget(worker)
        for extra in self.slot_sockets[1:]:
            sockets.close_sockets([s for s in extra if s not in self.slot_sockets[0]])
        del self.slot_sockets[1:]
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            self._handle_signals(now)
            self._reap(now)
            self._handle_changes(now)
            self._maintain(now)
            if self.stopping and not self.workers:
                return
            timeout = max(0.0, self._next_deadline(now) - time.monotonic())
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_reader:
                    with contextlib.suppress(OSError):
                        self._wake_reader.recv(4096)
                else:
                    self._on_readable(key.data, time.monotonic())

    def _next_deadline(self, now: float) -> float:
        deadlines = [now + 1.0]  # a floor on how stale a missed SIGCHLD can make us
        deadlines.extend(self.restart_at.values())
        for worker in self.workers.values():
            if worker.state is WorkerState.STARTING:
                deadlines.append(worker.started_at + self.config.timeout_worker_startup)
            elif worker.state is WorkerState.SERVING:
                deadlines.append(self._ping_deadline(worker))
            elif worker.stop_deadline is not None:
                deadlines.append(worker.stop_deadline)
        return min(deadlines)

    def _ping_deadline(self, worker: Worker) -> float:
        if worker.ping_outstanding:
            return worker.last_ping + self.config.timeout_worker_healthcheck
        return worker.last_ping + self.ping_interval

    # ------------------------------------------------------------------ signals
    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {int(sig): signal.getsignal(sig) for sig in HANDLED_SIGNALS}
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._on_signal)
        previous[-1] = signal.set_wakeup_fd(self._wake_writer.fileno(), warn_on_full_buffer=False)
        return previous

    def _restore_signal_handlers(self, previous: dict[int, Any]) -> None:
        signal.set_wakeup_fd(previous.pop(-1))
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _handle_signals(self, now: float) -> None:
        while self._signals:
            signum = self._signals.popleft()
            if signum in (signal.SIGINT, signal.SIGTERM):
                if self.stopping:
                    self._force_exit()
                else:
                    logger.info("Received %s; stopping the workers", signal.Signals(signum).name)
                    self.shutdown(now, channel.EXIT_OK)
            elif self.stopping or signum == signal.SIGCHLD:
                continue
            elif signum == signal.SIGHUP:
                logger.info("Received SIGHUP; replacing the workers one at a time")
                # systemd's Type=notify-reload sends SIGHUP and waits for READY=1 again.
                systemd.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
                self.reloading = True
                self._start_rolling_restart()
            elif signum == signal.SIGTTIN:
                self._resize(self.target + 1, now)
            elif signum == signal.SIGTTOU:
                self._resize(self.target - 1, now)

    def _force_exit(self) -> None:
        logger.warning("Second signal: killing the workers")
        self.exit_code = FORCED_EXIT
        for worker in self.workers.values():
            worker.kill("forced exit")

    # ------------------------------------------------------------------ decisions
    def shutdown(self, now: float, exit_code: int) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.exit_code = exit_code
        self.rolling.clear()
        systemd.notify("STOPPING=1")
        deadline = now + self._drain_time()
        for worker in self.workers.values():
            worker.stop(deadline)

    def _drain_time(self) -> float:
        # The server drains within timeout_graceful_shutdown, then runs lifespan shutdown; SIGKILL
        # is the backstop for a worker that overruns both.
        config = self.config
        return config.timeout_graceful_shutdown + config.timeout_lifespan_shutdown + 1.0

    def _start_rolling_restart(self) -> None:
        queued = set(map(id, self.rolling))
        for worker in sorted(self.workers.values(), key=lambda w: w.slot):
            current = worker.state is not WorkerState.STOPPING and worker.replaces is None
            if current and id(worker) not in queued:
                self.rolling.append(worker)

    def _resize(self, target: int, now: float) -> None:
        if target < 1:
            logger.info("Received SIGTTOU with one worker left; keeping it")
            return
        logger.info("Number of workers: %d -> %d", self.target, target)
        self._ensure_slots(target)
        if target < self.target:
            for worker in self.workers.values():
                if worker.slot >= target:
                    worker.stop(now + self._drain_time())
            for slot in range(target, self.target):
                self.restart_at.pop(slot, None)
                self.crashes.pop(slot, None)
            for extra in self.slot_sockets[target:]:
                # The stopping worker holds its own copy of these until it exits.
                sockets.close_sockets([s for s in extra if s not in self.slot_sockets[0]])
            del self.slot_sockets[target:]
        self.target = target

    def _ensure_slots(self, count: int) -> None:
        base = self.slot_sockets[0]
        while len(self.slot_sockets) < count:
            if self.config.reuse_port:
                self.slot_sockets.append(sockets.reuse_port_copies(base, self.config.backlog))
            else:
                self.slot_sockets.append(base)

    def _maintain(self, now: float) -> None:
        for worker in list(self.workers.values()):
            if worker.state is WorkerState.STARTING:
                if now >= worker.started_at + self.config.timeout_worker_startup:
                    worker.kill("it did not start in time")
            elif worker.state is WorkerState.SERVING:
                self._check_health(worker, now)
            elif worker.stop_deadline is not None and now >= worker.stop_deadline:
                worker.kill("it did not stop in time")
        if self.stopping:
            return
        self._advance_rolling_restart(now)
        occupied = {w.slot for w in self.workers.values() if w.state is not WorkerState.STOPPING}
        for slot in range(self.target):
            if slot in occupied or self.waiting_for_change:
                continue
            if self.restart_at.get(slot, 0.0) > now:
                continue
            self.restart_at.pop(slot, None)
            self._spawn(slot, now)

    def _check_health(self, worker: Worker, now: float) -> None:
        if worker.ping_outstanding:
            if now >= worker.last_ping + self.config.timeout_worker_healthcheck:
                worker.kill("it did not answer the health check")
        elif now >= worker.last_ping + self.ping_interval:
            worker.ping(now)
        if worker.ready_at is not None and now - worker.ready_at >= STABLE_AFTER:
            self.crashes.pop(worker.slot, None)

    def _advance_rolling_restart(self, now: float) -> None:
        while self.replacing is None and self.rolling:
            old = self.rolling.popleft()
            if old.pid in self.workers and old.state is WorkerState.SERVING:
                self.replacing = self._spawn(old.slot, now, replaces=old)
        if self.reloading and self.replacing is None and not self.rolling:
            self.reloading = False
            logger.info("Rolling restart done")
            systemd.notify("READY=1")

    def _spawn(self, slot: int, now: float, replaces: Worker | None = None) -> Worker:
        config = self.config
        if config.limit_max_requests is not None:
            # Each worker draws its own limit, so workers started together do not all recycle
            # at the same moment.
            jitter = random.randint(0, max(0, config.limit_max_requests_jitter))  # noqa: S311
            config = replace(
                config,
                limit_max_requests=config.limit_max_requests + jitter,
                limit_max_requests_jitter=0,
            )
        worker = spawn(config, self.slot_sockets[slot], slot, now)
        worker.replaces = replaces
        self.started_total += 1
        self.workers[worker.pid] = worker
        self._selector.register(worker.control, selectors.EVENT_READ, worker)
        logger.info("Started worker process [%d]", worker.pid)
        return worker

    # ------------------------------------------------------------------ worker events
    def _on_readable(self, worker: Worker, now: float) -> None:
        lines = worker.read_lines()
        if lines is None:
            # The worker closed its end: it is exiting. Stop watching; _reap collects it.
            self._selector.unregister(worker.control)
            return
        for line in lines:
            word, _, argument = line.partition(" ")
            if word == channel.READY:
                self._on_ready(worker, now)
            elif word == channel.PONG:
                worker.answered(int(argument) if argument.isdigit() else 0)
                self._check_memory(worker, now)
            elif word == channel.DRAINING and not self.stopping:
                # Treated as our own stop request: its slot is free for a replacement at once,
                # and its exit is expected.
                logger.info("Worker process [%d] reached its request limit", worker.pid)
                worker.stop(now + self._drain_time())

    def _on_ready(self, worker: Worker, now: float) -> None:
        worker.mark_ready(now)
        old = worker.replaces
        if old is not None:
            worker.replaces = None
            old.stop(now + self._drain_time())
            if self.replacing is worker:
                self.replacing = None
        if not self.announced_ready and self._all_serving():
            self.announced_ready = True
            systemd.notify("READY=1")

    def _all_serving(self) -> bool:
        serving = {w.slot for w in self.workers.values() if w.state is WorkerState.SERVING}
        return len(serving) >= self.target

    def _check_memory(self, worker: Worker, now: float) -> None:
        limit = self.config.limit_max_rss
        if limit is None or worker.recycling or worker.rss <= limit * MIB:
            return
        if worker.state is WorkerState.SERVING and worker.replaces is None:
            logger.warning(
                "Worker [%d] uses %d MiB, over --limit-max-rss %d; replacing it",
                worker.pid,
                worker.rss // MIB,
                limit,
            )
            worker.recycling = True
            self.rolling.append(worker)

    def _reap(self, now: float) -> None:
        for worker in list(self.workers.values()):
            status = worker.poll()
            if status is not None:
                self._forget(worker)
                self._on_exit(worker, status, now)

    def _forget(self, worker: Worker) -> None:
        self.workers.pop(worker.pid, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.control)
        worker.close()

    def _on_exit(self, worker: Worker, status: int, now: float) -> None:
        described = _describe_status(status)
        if self.replacing is worker:
            self.replacing = None
        if worker.killed:
            logger.error("Killed worker process [%d]: %s", worker.pid, worker.killed)
        if worker.asked_to_stop or self.stopping:
            if not worker.killed:
                logger.info("Stopped worker process [%d]", worker.pid)
        elif worker.ready_at is None:
            self._on_failed_start(worker, status, described)
        elif status in (channel.EXIT_RECYCLE, channel.EXIT_OK) and not worker.killed:
            logger.info("Worker process [%d] finished; replacing it", worker.pid)
        else:
            self._on_crash(worker, described, now)

    def _on_failed_start(self, worker: Worker, status: int, described: str) -> None:
        if worker.replaces is not None:
            logger.error(
                "New worker [%d] failed to start (%s); the old workers keep serving",
                worker.pid,
                described,
            )
            self.rolling.clear()
        elif self.reload:
            logger.error(
                "Worker [%d] failed to start (%s); waiting for file changes", worker.pid, described
            )
            self.waiting_for_change = True
        else:
            # Whatever the cause (status 3, an exception, no "ready" in time, a signal), starting
            # again would most likely fail again: stop instead of looping, with the status one
            # server process would have had (3 only for a failed lifespan startup).
            logger.error("Worker [%d] failed to start (%s); shutting down", worker.pid, described)
            lifespan = status == channel.EXIT_LIFESPAN_FAILED
            self.shutdown(
                time.monotonic(), channel.EXIT_LIFESPAN_FAILED if lifespan else channel.EXIT_CRASHED
            )

    def _on_crash(self, worker: Worker, described: str, now: float) -> None:
        self.crashed_total += 1
        self.crashes[worker.slot] += 1
        delay = backoff(self.crashes[worker.slot])
        logger.error(
            "Worker process [%d] died (%s); restarting it%s",
            worker.pid,
            described,
            f" in {delay:.2f} s" if delay else "",
        )
        if delay:
            self.restart_at[worker.slot] = now + delay

    # ------------------------------------------------------------------ reload
    def _handle_changes(self, now: float) -> None:
        if not self.changes:
            return
        paths = sorted({p for batch in self.changes for p in batch})
        self.changes.clear()
        if self.stopping:
            return
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        logger.warning("Changes detected in %s; reloading", shown)
        self.waiting_for_change = False
        self.rolling.clear()
        self.replacing = None
        self.crashes.clear()
        self.restart_at.clear()
        for worker in self.workers.values():
            worker.stop(now + self._drain_time())


def _describe_status(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"

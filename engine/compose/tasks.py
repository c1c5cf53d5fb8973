"""Structured concurrency for the compose client, on threads: trio's nursery/cancel-scope
rules over the standard library, so that a `pyengine compose` command (a fresh process each
time) does not pay trio's import (~65 ms, more than `up -d` of a small project spends on its
requests). The daemon stays on trio; this is only the API client's scheduling of blocking
HTTP requests, which trio itself ran in worker threads here anyway (docs/DESIGN.md).

The rules kept from trio:
- a TaskGroup runs each task in its own thread and is joined when the `with` block ends;
  the first failing task cancels the others, and the failures are raised together as a
  BaseExceptionGroup once every task has ended (nothing outlives the block);
- cancellation is cooperative: it is seen at checkpoints (every API request, Event.wait,
  sleep, receive), where `Cancelled` is raised, and a cancelled CancelScope swallows its own
  `Cancelled` on exit; a blocking request already sent runs to its end, as trio's
  to_thread.run_sync did (abandon_on_cancel() is the exception, for endless streams);
- Ctrl-C while a group is waiting cancels the group, waits for its tasks, then raises
  KeyboardInterrupt.
Cancellation is noticed within POLL seconds by a waiting thread; a wake-up (Event.set, a
queued item) is immediate.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

POLL = 0.05  # seconds: how soon a waiting thread sees a cancellation

_lock = threading.Lock()  # the scope tree (parents, children, cancellation)
_local = threading.local()  # .scope: the innermost scope of this thread


class Cancelled(BaseException):
    """Raised at a checkpoint inside a cancelled scope; caught by that scope."""


def current_scope() -> "CancelScope | None":
    return getattr(_local, "scope", None)


def checkpoint() -> None:
    """Raise Cancelled if this thread's innermost scope is cancelled."""
    scope = current_scope()
    if scope is not None and scope._cancelled.is_set():
        raise Cancelled()


class CancelScope:
    """cancel() cancels everything inside (nested scopes and the tasks of groups opened
    inside, in any thread) but shielded scopes; `timeout` cancels it after that many
    seconds (trio's move_on_after). Exiting swallows the Cancelled it caused."""

    def __init__(self, *, shield: bool = False, timeout: float | None = None):
        self.shield = shield
        self.timeout = timeout
        self.cancel_called = False
        self.cancelled_caught = False
        self._cancelled = threading.Event()  # this scope or an unshielded ancestor
        self._children: list[CancelScope] = []
        self._parent: CancelScope | None = None
        self._timer: threading.Timer | None = None

    def cancel(self) -> None:
        with _lock:
            self.cancel_called = True
            self._propagate()

    def _propagate(self) -> None:  # under _lock
        self._cancelled.set()
        for child in self._children:
            if not child.shield and not child._cancelled.is_set():
                child._propagate()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __enter__(self) -> "CancelScope":
        parent = current_scope()
        with _lock:
            self._parent = parent
            if parent is not None:
                parent._children.append(self)
                if parent._cancelled.is_set() and not self.shield:
                    self._cancelled.set()
        _local.scope = self
        if self.timeout is not None:
            self._timer = threading.Timer(self.timeout, self.cancel)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, etype, exc, tb) -> bool:
        if self._timer is not None:
            self._timer.cancel()
        with _lock:
            if self._parent is not None:
                self._parent._children.remove(self)
        _local.scope = self._parent
        if isinstance(exc, Cancelled) and self.cancel_called:
            self.cancelled_caught = True
            return True
        return False


class TaskGroup:
    """trio's nursery over threads: `with TaskGroup() as group: group.start_soon(fn, …)`.
    Tasks may start more tasks in the group; the block ends once all have ended."""

    def __init__(self) -> None:
        self.cancel_scope = CancelScope()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def __enter__(self) -> "TaskGroup":
        self.cancel_scope.__enter__()
        return self

    def start_soon(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
        thread = threading.Thread(target=self._task, args=(fn, args, kw), daemon=True)
        with _lock:
            self._threads.append(thread)
        thread.start()

    def _task(self, fn: Callable[..., Any], args: tuple, kw: dict) -> None:
        _local.scope = self.cancel_scope
        try:
            fn(*args, **kw)
        except BaseException as exc:  # noqa: BLE001 - every failure ends the group
            with _lock:
                self._errors.append(exc)
            if not isinstance(exc, Cancelled):
                self.cancel_scope.cancel()

    def _join(self, cancel: bool) -> KeyboardInterrupt | None:
        """Wait until every task has ended, cancelling them first when `cancel`. A Ctrl-C
        may land at any instant in here: it cancels the tasks, is still waited out, and is
        returned for the caller to raise once they have all ended."""
        interrupted = None
        while True:
            try:
                if cancel:
                    self.cancel_scope.cancel()
                    cancel = False
                with _lock:
                    alive = [t for t in self._threads if t.is_alive()]
                if not alive:
                    return interrupted
                for thread in alive:
                    thread.join()
            except KeyboardInterrupt as exc:
                interrupted, cancel = exc, True

    def __exit__(self, etype, exc, tb) -> bool:
        interrupted = self._join(cancel=exc is not None and not isinstance(exc, Cancelled))
        errors = [e for e in ([exc] if exc is not None else []) + self._errors
                  if not isinstance(e, Cancelled)]
        if interrupted is not None:
            self.cancel_scope.__exit__(None, None, None)
            raise interrupted
        if errors:
            self.cancel_scope.__exit__(None, None, None)
            if len(errors) == 1 and errors[0] is exc:
                return False  # the block's own error, as it was
            raise BaseExceptionGroup("compose tasks failed", errors)
        cancelled = exc if isinstance(exc, Cancelled) else \
            next((e for e in self._errors if isinstance(e, Cancelled)), None)
        if cancelled is None:
            self.cancel_scope.__exit__(None, None, None)
            return False
        if self.cancel_scope.__exit__(Cancelled, cancelled, None):
            return True  # the group's own cancellation
        if cancelled is exc:
            return False
        raise cancelled


def _wait(ready: threading.Event) -> None:
    """Wait for `ready`, raising Cancelled if this thread's scope is cancelled first."""
    while not ready.wait(POLL):
        checkpoint()


class Event:
    """trio.Event: set once, waited for by any number of tasks (a cancellable wait)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self) -> None:
        if not self._event.is_set():
            _wait(self._event)


def sleep(seconds: float) -> None:
    """Sleep, or raise Cancelled as soon as this thread's scope is cancelled."""
    scope = current_scope()
    if scope is None:
        threading.Event().wait(seconds)
    elif scope._cancelled.wait(seconds):
        raise Cancelled()


def receive(q: queue.Queue) -> Any:
    """The next item of `q` (a cancellable get)."""
    while True:
        try:
            return q.get(timeout=POLL)
        except queue.Empty:
            checkpoint()


class Limiter:
    """At most `n` holders at once (trio.CapacityLimiter); acquiring is cancellable."""

    def __init__(self, n: int):
        self._sem = threading.BoundedSemaphore(n)

    @contextmanager
    def hold(self) -> Iterator[None]:
        while not self._sem.acquire(timeout=POLL):
            checkpoint()
        try:
            yield
        finally:
            self._sem.release()


def abandon_on_cancel(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in a helper thread; a cancellation abandons it (a blocking read of an
    endless stream — events, logs -f, wait — cannot be interrupted; it ends with the
    process), as trio.to_thread.run_sync(abandon_on_cancel=True) did."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting task
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    _wait(done)
    if "error" in box:
        raise box["error"]
    return box["value"]


@contextmanager
def signal_receiver(*signums: int) -> Iterator[queue.Queue]:
    """While open, the given signals are queued (their numbers) instead of acting; the
    main thread only (Python runs signal handlers there)."""
    import signal  # (its enums cost ~1 ms; only foreground `up` needs it)

    received: queue.Queue = queue.Queue()
    previous = {n: signal.signal(n, lambda num, frame: received.put(num)) for n in signums}
    try:
        yield received
    finally:
        for n, handler in previous.items():
            signal.signal(n, handler)


def run(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """fn(*args, **kw) in this thread under a root scope (trio.run's place)."""
    with CancelScope():
        return fn(*args, **kw)

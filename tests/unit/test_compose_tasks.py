"""engine.compose.tasks, the compose client's structured concurrency on threads: a group ends
only once all its tasks have; the first failure cancels the others (at their next
checkpoint) and is raised once; a cancelled scope swallows its own cancellation, a shielded
one is not reached; a timeout cancels; Ctrl-C cancels the group, waits for it, then raises."""

from __future__ import annotations

import signal
import threading

import pytest

from engine.compose import tasks

pytestmark = pytest.mark.timeout(20)


def test_a_failure_cancels_the_other_tasks_and_is_raised_once_all_ended():
    started, never = tasks.Event(), tasks.Event()
    ended = []

    def waiter() -> None:
        started.set()
        try:
            never.wait()
        finally:
            ended.append("waiter")

    def failing() -> None:
        started.wait()
        raise ValueError("boom")

    with pytest.raises(BaseExceptionGroup) as info:
        with tasks.TaskGroup() as group:
            group.start_soon(waiter)
            group.start_soon(failing)
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert ended == ["waiter"]  # the block ended only after the cancelled task did


def test_tasks_start_tasks_and_the_group_waits_for_them():
    done = []

    def child(n: int) -> None:
        done.append(n)

    def parent(group: tasks.TaskGroup) -> None:
        for n in range(5):
            group.start_soon(child, n)

    with tasks.TaskGroup() as group:
        group.start_soon(parent, group)
    assert sorted(done) == [0, 1, 2, 3, 4]


def test_cancel_scopes_timeout_and_shield():
    with tasks.CancelScope(timeout=0.05) as scope:
        tasks.Event().wait()  # never set: the timeout ends the wait
    assert scope.cancelled_caught

    reached = []
    with tasks.CancelScope() as outer:
        outer.cancel()
        with tasks.CancelScope(shield=True):
            tasks.checkpoint()  # not cancelled inside the shield
            reached.append("shielded")
        tasks.checkpoint()
        reached.append("after")  # never: the outer scope is cancelled
    assert reached == ["shielded"] and outer.cancelled_caught

    # a group's explicit cancel ends its waiting tasks quietly
    with tasks.TaskGroup() as group:
        group.start_soon(tasks.sleep, 60)
        group.start_soon(tasks.Event().wait)
        group.cancel_scope.cancel()


def test_ctrl_c_cancels_the_group_waits_for_it_then_raises():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals go to the main thread")
    cancelled = []

    def blocked() -> None:
        try:
            tasks.Event().wait()
        except tasks.Cancelled:
            cancelled.append(True)
            raise

    def interrupt() -> None:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with tasks.TaskGroup() as group:
                group.start_soon(blocked)
                group.start_soon(interrupt)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert cancelled == [True]  # raised only once the cancelled task had ended

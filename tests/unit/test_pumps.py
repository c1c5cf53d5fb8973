"""Output pumps: what the container side writes reaches the sink, whatever else shares the fd."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

from engine.containers.pumps import pump


@pytest.mark.timeout(30)
async def test_pump_is_not_blocked_by_a_dup_that_restores_blocking_mode():
    """A tty's stdin is an FdStream on a dup of the pty master: closing it puts the shared
    file description back in blocking mode. The pump must still never block the loop."""
    master, slave = os.openpty()
    stdin = trio.lowlevel.FdStream(os.dup(master))  # made first: it remembers "blocking"
    got: list[bytes] = []
    arrived = trio.Event()

    async def sink(stream_id: int, data: bytes) -> None:
        got.append(data)
        arrived.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump, master, 1, sink)
        await trio.testing.wait_all_tasks_blocked()
        await stdin.aclose()
        with trio.fail_after(10):
            await trio.testing.wait_all_tasks_blocked()  # the pump waits, the loop runs
            os.write(slave, b"hi\n")
            await arrived.wait()
        os.close(slave)  # EIO on the master: the pump ends
    assert b"".join(got).startswith(b"hi")

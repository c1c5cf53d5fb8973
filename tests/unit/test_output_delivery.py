"""Output of a short-lived process reaches its sinks: pumps that give up waiting for EOF still
deliver what is in the pipe; the attach hub holds output back for a slow subscriber instead
of dropping it (trio's MockClock: no real waiting)."""

import os

import trio
import trio.testing

from engine.containers import pumps
from engine.containers.hub import OutputHub


class ExitOn:
    """A process whose exit the test triggers."""

    def __init__(self):
        self.exited = trio.Event()

    async def wait(self):
        await self.exited.wait()
        return 0

    def send_signal(self, sig):
        pass


def test_pump_delivers_output_written_just_before_exit_despite_a_slow_sink_and_an_open_pipe():
    got = []

    async def main():
        r, w = os.pipe()
        process = ExitOn()

        async def slow_sink(stream_id, data):
            got.append(data)
            if len(got) == 1:
                # The process writes its last words and exits while the sink is still busy;
                # the pipe's write end stays open (an escaped child), so no EOF ever comes.
                os.write(w, b"last words")
                process.exited.set()
            await trio.sleep(pumps.DRAIN_TIMEOUT + 1)

        os.write(w, b"first")
        try:
            code = await pumps.drive(process, [(r, 1)], slow_sink)
        finally:
            os.close(w)
        assert code == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert b"".join(got) == b"firstlast words"


def test_pump_gives_up_on_a_pipe_held_open_without_output():
    async def main():
        r, w = os.pipe()
        process = ExitOn()
        process.exited.set()
        start = trio.current_time()
        try:
            assert await pumps.drive(process, [(r, 1)], None) == 0
        finally:
            os.close(w)
        assert trio.current_time() - start < pumps.DRAIN_TIMEOUT + 1

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_hub_holds_output_for_a_slow_subscriber_and_drops_a_stuck_one():
    async def main():
        hub = OutputHub()
        slow, stuck = hub.subscribe(), hub.subscribe()
        received = []

        async def reader():
            async for item in slow:
                received.append(item)
                await trio.sleep(0.001)  # slower than the publisher

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            for i in range(hub.BUFFER * 2):
                await hub.publish(1, b"%d" % i)
            hub.end_run()
        assert [data for _, data in received] == [b"%d" % i for i in range(hub.BUFFER * 2)]
        # The subscriber that never read was dropped (its stream ends), after a stall.
        assert hub.statistics()["subscribers"] == 0
        items = [item async for item in stuck]
        assert len(items) == hub.BUFFER

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

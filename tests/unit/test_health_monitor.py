"""Healthcheck state machine and monitor timing (trio's MockClock: no real waiting)."""

import pytest
import trio
import trio.testing

from engine import errors
from engine.api._container_json import healthcheck, healthcheck_shape
from engine.containers.health import (
    HEALTHY, STARTING, UNHEALTHY, Health, HealthConfig, LimitedBuffer, ProbeResult, go_duration, monitor,
    probe_loop)

S = 1_000_000_000


def result(code: int, output: str = "") -> ProbeResult:
    return ProbeResult(start_ns=1, end_ns=2, exit_code=code, output=output)


class ScriptedProbe:
    """Exit codes in order; records the (mock) time of each call."""

    def __init__(self, codes, duration=0.0):
        self.codes = list(codes)
        self.duration = duration
        self.times = []

    async def __call__(self, config):
        self.times.append(trio.current_time())
        await trio.sleep(self.duration)
        return result(self.codes.pop(0) if self.codes else 0)


def test_defaults_and_command():
    config = HealthConfig(test=("CMD-SHELL", "exit 1"))
    assert (config.interval, config.timeout_ns_effective, config.retries_effective, config.start_period) == (30, 30 * S, 3, 0)
    assert config.command() == ["/bin/sh", "-c", "exit 1"]
    assert config.command(["/bin/bash", "-ec"]) == ["/bin/bash", "-ec", "exit 1"]
    assert HealthConfig(test=("CMD", "true", "x")).command() == ["true", "x"]
    assert not HealthConfig(test=("NONE",)).enabled and not HealthConfig().enabled
    assert healthcheck(None) is None
    assert healthcheck({"Test": ["CMD", "true"], "Interval": 2 * S, "Retries": 5, "Timeout": None}) == \
        HealthConfig(test=("CMD", "true"), interval_ns=2 * S, retries=5)
    # inspect shows Go's omitempty fields, as dockerd does
    assert healthcheck_shape(HealthConfig(test=("CMD", "true"), interval_ns=2 * S, retries=5)) == \
        {"Test": ["CMD", "true"], "Interval": 2 * S, "Retries": 5}
    with pytest.raises(errors.InvalidParameter, match="invalid value for Healthcheck.Interval"):
        healthcheck({"Interval": "1s"})


def test_merge_over_image_and_validation():
    image = HealthConfig(test=("CMD-SHELL", "img"), interval_ns=5 * S, retries=2)
    assert HealthConfig(interval_ns=1 * S).over(image) == HealthConfig(test=("CMD-SHELL", "img"), interval_ns=1 * S, retries=2)
    assert HealthConfig(test=("NONE",)).over(image).test == ("NONE",)
    assert HealthConfig(test=("NONE",)).over(None) == HealthConfig(test=("NONE",))
    HealthConfig(test=("CMD", "true"), interval_ns=1_000_000).validate()
    with pytest.raises(errors.InvalidParameter, match="Interval in Healthcheck cannot be less than 1ms"):
        HealthConfig(interval_ns=999).validate()
    with pytest.raises(errors.InvalidParameter, match="Timeout in Healthcheck cannot be less than 1ms"):
        HealthConfig(timeout_ns=1).validate()
    with pytest.raises(errors.InvalidParameter, match="Retries in Healthcheck cannot be negative"):
        HealthConfig(retries=-1).validate()


def test_state_machine_retries_streak_and_log():
    config = HealthConfig(test=("CMD", "x"), retries=2)
    h = Health()
    assert h.status == STARTING
    assert not h.record(result(1), config, in_start_period=False)  # streak 1 < 2
    assert h.record(result(1), config, in_start_period=False) and h.status == UNHEALTHY
    assert h.failing_streak == 2
    assert h.record(result(0), config, in_start_period=False) and (h.status, h.failing_streak) == (HEALTHY, 0)
    for i in range(7):
        h.record(result(0, str(i)), config, in_start_period=False)
    assert [r.output for r in h.log] == ["2", "3", "4", "5", "6"]  # the last 5, oldest first
    h.reset()
    assert (h.status, h.failing_streak, len(h.log)) == (STARTING, 0, 5)


def test_start_period_failures_do_not_count_while_starting():
    config = HealthConfig(test=("CMD", "x"), retries=1)
    h = Health()
    assert not h.record(result(1), config, in_start_period=True)
    assert (h.status, h.failing_streak) == (STARTING, 0)
    h.record(result(0), config, in_start_period=True)
    # Once healthy, the start period no longer shields failures.
    assert h.record(result(1), config, in_start_period=True) and h.status == UNHEALTHY


def test_health_survives_the_record_round_trip():
    from engine.containers.model import State

    h = Health(status=HEALTHY, failing_streak=0, log=[result(0, "ok")])
    import attrs

    state = State(**attrs.asdict(State(health=h), recurse=True))
    assert state.health == h


def test_limited_buffer_and_go_durations():
    buf = LimitedBuffer(limit=4)
    trio.run(buf.write, 1, b"ab")
    assert buf.text() == "ab"
    trio.run(buf.write, 2, b"cdef")
    assert buf.text() == "abcd..."
    assert [go_duration(n) for n in (30 * S, 1500 * 1_000_000, 500 * 1_000_000, 90 * S, 3600 * S, 0, 1500)] == \
        ["30s", "1.5s", "500ms", "1m30s", "1h0m0s", "0s", "1.5µs"]


def test_probe_loop_first_probe_after_one_interval_then_every_interval():
    clock = trio.testing.MockClock(autojump_threshold=0)
    probe = ScriptedProbe([1, 1, 0, 0], duration=0.5)
    changes = []
    h = Health()
    config = HealthConfig(test=("CMD", "x"), interval_ns=10 * S, retries=2)

    async def main():
        with trio.move_on_after(43):
            await probe_loop(config, h, probe, changes.append, started_at=trio.current_time())

    trio.run(main, clock=clock)
    # Interval counts from the end of one probe to the start of the next (dockerd's timer).
    assert probe.times == [10, 20.5, 31, 41.5]
    assert changes == [UNHEALTHY, HEALTHY]


def test_probe_loop_start_period():
    clock = trio.testing.MockClock(autojump_threshold=0)
    probe = ScriptedProbe([1, 1, 1, 1])
    h = Health()
    config = HealthConfig(test=("CMD", "x"), interval_ns=1 * S, retries=1, start_period_ns=int(2.5 * S))
    changes = []

    async def main():
        with trio.move_on_after(3.5):
            await probe_loop(config, h, probe, changes.append, started_at=trio.current_time())

    trio.run(main, clock=clock)
    assert probe.times == [1, 2, 3]
    assert changes == [UNHEALTHY] and h.failing_streak == 1  # only the probe at 3s counted


def test_monitor_stops_while_paused_and_marks_unhealthy():
    clock = trio.testing.MockClock(autojump_threshold=0)
    probe = ScriptedProbe([0] * 10)
    h = Health()
    config = HealthConfig(test=("CMD", "x"), interval_ns=1 * S)
    paused = [False]
    changed = []
    statuses = []

    async def main():
        changed.append(trio.Event())

        def set_paused(value):
            paused[0] = value
            changed[0].set()
            changed[0] = trio.Event()

        async def wait_changed():
            await changed[0].wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: monitor(config, h, probe, statuses.append, is_paused=lambda: paused[0],
                                               wait_changed=wait_changed, started_at=trio.current_time()))
            await trio.sleep(2.5)
            assert h.status == HEALTHY and probe.times == [1, 2]
            set_paused(True)
            await trio.sleep(10)
            assert h.status == UNHEALTHY and probe.times == [1, 2]  # no probe while paused
            set_paused(False)
            await trio.sleep(1.5)
            assert h.status == HEALTHY and probe.times == [1, 2, 13.5]  # a fresh interval
            nursery.cancel_scope.cancel()
        assert h.status == UNHEALTHY  # stopped with the run

    trio.run(main, clock=clock)
    assert statuses == [HEALTHY, HEALTHY]

"""EventBus: shape, fan-out, history (since/until), Docker filters, lag handling."""

import datetime
import time

import pytest
import trio
import trio.testing

from engine.errors import InvalidParameter
from engine.events import LAGGED, EventBus, EventFilter, parse_filters, parse_time

NS = 1_000_000_000


class FakeClock:
    def __init__(self, t_ns=1_700_000_000 * NS):
        self.t = t_ns

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += int(seconds * NS)


async def drain(sub, limit=100):
    out = []
    async for ev in sub:
        out.append(ev)
        if len(out) >= limit:
            break
    return out


def test_publish_shape_container_has_legacy_fields():
    bus = EventBus(clock_ns=FakeClock())
    ev = bus.publish("container", "start", "abc123", {"name": "web", "image": "busybox:latest"})
    assert list(ev) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert ev["status"] == "start" and ev["id"] == "abc123" and ev["from"] == "busybox:latest"
    assert ev["Actor"] == {"ID": "abc123", "Attributes": {"name": "web", "image": "busybox:latest"}}
    assert ev["scope"] == "local"
    assert ev["time"] == 1_700_000_000 and ev["timeNano"] == 1_700_000_000 * NS


def test_publish_shape_other_types():
    bus = EventBus()
    img = bus.publish("image", "pull", "busybox:latest", {"name": "busybox"})
    assert img["status"] == "pull" and img["id"] == "busybox:latest" and "from" not in img
    net = bus.publish("network", "create", "n1", {"name": "front", "type": "bridge"})
    assert "status" not in net and "id" not in net
    assert net["Type"] == "network" and net["Actor"]["Attributes"]["type"] == "bridge"


async def test_live_fanout_to_two_subscribers():
    bus = EventBus()
    async with bus.subscribe() as a, bus.subscribe() as b:
        assert bus.statistics().subscribers == 2
        bus.publish("container", "create", "c1")
        bus.publish("container", "start", "c1")
        got_a = [await a.__anext__(), await a.__anext__()]
        got_b = [await b.__anext__(), await b.__anext__()]
    assert [e["Action"] for e in got_a] == ["create", "start"]
    assert got_a == got_b
    assert bus.statistics().subscribers == 0


async def test_no_history_without_since():
    bus = EventBus()
    bus.publish("container", "create", "old")
    async with bus.subscribe() as sub:
        bus.publish("container", "start", "new")
        ev = await sub.__anext__()
    assert ev["Actor"]["ID"] == "new"


async def test_since_replays_history_then_follows():
    clock = FakeClock()
    bus = EventBus(clock_ns=clock)
    bus.publish("container", "create", "a")
    clock.advance(10)
    t_mid = clock() / NS
    bus.publish("container", "start", "b")
    clock.advance(10)
    async with bus.subscribe(since=str(t_mid)) as sub:
        bus.publish("container", "die", "c")
        got = [await sub.__anext__(), await sub.__anext__()]
    assert [e["Actor"]["ID"] for e in got] == ["b", "c"]


async def test_until_in_the_past_only_replays_and_ends():
    clock = FakeClock()
    bus = EventBus(clock_ns=clock)
    bus.publish("container", "create", "a")
    clock.advance(5)
    until = clock() / NS
    clock.advance(5)
    bus.publish("container", "start", "b")
    async with bus.subscribe(since="0", until=until) as sub:
        got = await drain(sub)
    assert [e["Actor"]["ID"] for e in got] == ["a"]
    assert bus.statistics().subscribers == 0


async def test_until_only_replays_all_history_up_to_it():
    clock = FakeClock()
    bus = EventBus(clock_ns=clock)
    bus.publish("container", "create", "a")
    clock.advance(1)
    async with bus.subscribe(until=clock() / NS) as sub:
        got = await drain(sub)
    assert [e["Actor"]["ID"] for e in got] == ["a"]


async def test_until_in_the_future_ends_the_stream_then(autojump_clock):
    bus = EventBus()
    start = trio.current_time()
    async with bus.subscribe(until=time.time() + 30) as sub:
        bus.publish("container", "start", "x")
        got = await drain(sub)
    assert [e["Actor"]["ID"] for e in got] == ["x"]
    assert trio.current_time() - start == pytest.approx(30, abs=1)


async def test_slow_subscriber_is_dropped_with_lagged_marker():
    bus = EventBus(buffer=2)
    async with bus.subscribe() as slow, bus.subscribe(buffer=100) as fast:
        for i in range(5):
            bus.publish("container", "start", f"c{i}")  # never blocks
        assert bus.statistics().dropped_subscribers == 1
        assert bus.statistics().subscribers == 1
        got = await drain(slow)
        assert [e if e is LAGGED else e["Actor"]["ID"] for e in got] == ["c0", "c1", LAGGED]
        assert slow.lagged
        assert [(await fast.__anext__())["Actor"]["ID"] for _ in range(5)] == [f"c{i}" for i in range(5)]


async def test_history_is_a_ring():
    bus = EventBus(history=3)
    for i in range(5):
        bus.publish("container", "start", f"c{i}")
    assert [e["id"] for e in bus.history()] == ["c2", "c3", "c4"]
    assert bus.statistics().history == 3 and bus.statistics().published == 5


async def test_filters_on_subscribe():
    bus = EventBus()
    async with bus.subscribe(filters='{"event":{"start":true},"type":["container"]}') as sub:
        bus.publish("container", "create", "c1")
        bus.publish("image", "start", "i1")
        bus.publish("container", "start", "c1")
        ev = await sub.__anext__()
    assert (ev["Type"], ev["Action"]) == ("container", "start")


def _ev(type_, action, ident, **attrs):
    return EventBus(clock_ns=FakeClock()).publish(type_, action, ident, attrs)


@pytest.mark.parametrize(
    "filters, event, expected",
    [
        ({"type": ["container"]}, _ev("container", "start", "abc"), True),
        ({"type": ["image"]}, _ev("container", "start", "abc"), False),
        ({"event": ["start", "die"]}, _ev("container", "die", "abc"), True),
        ({"event": ["start"]}, _ev("container", "stop", "abc"), False),
        ({"event": ["exec_start"]}, _ev("container", "exec_start: sh -c true", "abc"), True),
        ({"event": ["health_status"]}, _ev("container", "health_status: healthy", "abc"), True),
        ({"container": ["abc"]}, _ev("container", "start", "abcdef"), True),  # id prefix
        ({"container": ["web"]}, _ev("container", "start", "abcdef", name="web"), True),
        ({"container": ["db"]}, _ev("container", "start", "abcdef", name="web"), False),
        ({"container": ["abc"]}, _ev("image", "pull", "busybox"), False),
        ({"image": ["busybox"]}, _ev("container", "start", "c1", image="busybox:latest"), True),
        ({"image": ["busybox:latest"]}, _ev("image", "tag", "sha256:1", name="busybox:latest"), True),
        ({"image": ["alpine"]}, _ev("container", "start", "c1", image="busybox"), False),
        ({"image": ["localhost:5000/app"]}, _ev("container", "start", "c", image="localhost:5000/app:1"), True),
        ({"label": ["com.x"]}, _ev("container", "start", "c1", **{"com.x": "1"}), True),
        ({"label": ["com.x=1"]}, _ev("container", "start", "c1", **{"com.x": "1"}), True),
        ({"label": ["com.x=2"]}, _ev("container", "start", "c1", **{"com.x": "1"}), False),
        ({"label": ["com.x", "com.y"]}, _ev("container", "start", "c1", **{"com.x": "1"}), False),
        ({"volume": ["data"]}, _ev("volume", "create", "data", driver="local"), True),
        ({"volume": ["data"]}, _ev("container", "start", "c1"), False),
        ({"network": ["front"]}, _ev("network", "connect", "n1234", name="front"), True),
        ({"daemon": ["d1"]}, _ev("daemon", "reload", "d1"), True),
        ({"daemon": ["d1"]}, _ev("container", "start", "d1"), False),
        ({"scope": ["local"]}, _ev("container", "start", "c"), True),
        ({"scope": ["swarm"]}, _ev("container", "start", "c"), False),
        ({}, _ev("container", "start", "c"), True),
    ],
)
def test_docker_filter_semantics(filters, event, expected):
    assert EventFilter(filters).include(event) is expected


def test_parse_filters_forms():
    assert parse_filters('{"type":{"container":true,"image":false}}') == {"type": ["container"]}
    assert parse_filters('{"label":["a=b","c"]}') == {"label": ["a=b", "c"]}
    assert parse_filters("") == {} and parse_filters(None) == {}
    with pytest.raises(InvalidParameter):
        parse_filters("{not json")
    with pytest.raises(InvalidParameter):
        parse_filters("[1, 2]")


def test_parse_time_formats():
    now = 1_700_000_000 * NS
    assert parse_time("1700000000", now) == 1_700_000_000 * NS
    assert parse_time("1700000000.5", now) == 1_700_000_000 * NS + NS // 2
    assert parse_time("1700000000.000000001", now) == 1_700_000_000 * NS + 1
    assert parse_time(1700000000.25, now) == 1_700_000_000 * NS + NS // 4
    assert parse_time(12, now) == 12 * NS
    assert parse_time("10m", now) == now - 600 * NS
    assert parse_time("1h30m", now) == now - 5400 * NS
    assert parse_time("-5s", now) == now - 5 * NS
    expected = int(datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc).timestamp()) * NS
    assert parse_time("2024-01-02T03:04:05Z", now) == expected
    assert parse_time("2024-01-02T03:04:05.123456789Z", now) == expected + 123456789
    assert parse_time("2024-01-02T05:04:05+02:00", now) == expected
    assert parse_time("", now) is None and parse_time(None, now) is None
    with pytest.raises(InvalidParameter):
        parse_time("yesterday", now)


async def test_publish_is_sync_and_never_blocks_even_with_a_stuck_subscriber():
    bus = EventBus(buffer=1)
    async with bus.subscribe():
        for i in range(10_000):
            bus.publish("container", "start", str(i))
    assert bus.statistics().published == 10_000

import functools
import json
import os
import time

import pytest
import trio
import trio.testing

from engine import errors
from engine.api._hijack import frame
from engine.api.containers import log_line as format_log_line
from engine.containers.logs import MAX_LINE, JsonFileLogDriver, LogRecord
from engine.timefmt import format_rfc3339nano, parse_rfc3339_ns, parse_since

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


async def collect(driver, **kw):
    return [r async for r in driver.read(**kw)]


async def follow_into(got: list, driver, **kw) -> None:
    """A follower: every record's data into `got` until the read ends."""
    async for record in driver.read(follow=True, **kw):
        got.append(record.data)


def file_lines(path):
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


async def test_round_trip_and_file_format(tmp_path):
    path = str(tmp_path / "c-json.log")
    d = JsonFileLogDriver(path, {})
    await d.write("stdout", b"hello\nworld\n", when_ns=T0 + 123_456_789)
    await d.write("stderr", b"oops\n", when_ns=T0 + 5 * 10**8)
    await d.aclose()
    with open(path, "rb") as f:
        first = f.readline()
    assert first == b'{"log":"hello\\n","stream":"stdout","time":"2024-01-01T00:00:00.123456789Z"}\n'
    assert file_lines(path)[2] == {"log": "oops\n", "stream": "stderr", "time": "2024-01-01T00:00:00.5Z"}
    records = await collect(d)
    assert records == [
        LogRecord("stdout", b"hello\n", T0 + 123_456_789),
        LogRecord("stdout", b"world\n", T0 + 123_456_789),
        LogRecord("stderr", b"oops\n", T0 + 500_000_000),
    ]
    assert [r.data for r in await collect(d, stdout=False)] == [b"oops\n"]
    assert [r.data for r in await collect(d, stderr=False)] == [b"hello\n", b"world\n"]
    # A fresh read-only driver on the same file sees the same thing.
    assert await collect(JsonFileLogDriver.reader(path)) == records


async def test_utf8_and_invalid_bytes(tmp_path):
    d = JsonFileLogDriver(str(tmp_path / "l.log"), {})
    await d.write("stdout", "héllo ✓\n".encode() + b"\xff\n", when_ns=T0)
    await d.aclose()
    assert [r.data for r in await collect(d)] == ["héllo ✓\n".encode(), "\ufffd\n".encode()]


async def test_partial_lines(tmp_path):
    path = str(tmp_path / "l.log")
    d = JsonFileLogDriver(path, {})
    await d.write("stdout", b"par", when_ns=T0)
    await d.write("stderr", b"err-no-newline", when_ns=T0)
    assert await collect(d) == []  # buffered until the newline
    await d.write("stdout", b"tial\nnext", when_ns=T0 + 1)
    assert [r.data for r in await collect(d)] == [b"partial\n"]
    # A line longer than 16 KiB goes out in 16 KiB pieces, as Docker does.
    await d.write("stdout", b"x" * (MAX_LINE + 10), when_ns=T0 + 2)
    got = [r.data for r in await collect(d)]
    assert got[1:] == [b"next" + b"x" * (MAX_LINE - 4)]
    await d.flush()  # tails written as they are, no newline added
    got = await collect(d)
    assert sorted((r.stream, r.data) for r in got[2:]) == [("stderr", b"err-no-newline"), ("stdout", b"x" * 14)]
    await d.write("stdout", b"last\n")
    await d.aclose()
    assert (await collect(d))[-1].data == b"last\n"
    with pytest.raises(trio.ClosedResourceError):
        await d.write("stdout", b"more\n")


async def test_long_complete_line_is_split(tmp_path):
    d = JsonFileLogDriver(str(tmp_path / "l.log"), {})
    await d.write("stdout", b"y" * (2 * MAX_LINE + 3) + b"\n", when_ns=T0)
    await d.aclose()
    got = [r.data for r in await collect(d)]
    assert got == [b"y" * MAX_LINE, b"y" * MAX_LINE, b"yyy\n"]


async def test_rotation_keeps_max_file_and_tail_spans_files(tmp_path):
    path = str(tmp_path / "c-json.log")
    d = JsonFileLogDriver(path, {"max-size": "1k", "max-file": "3"})
    assert (d.max_size, d.max_file) == (1000, 3)
    for i in range(200):
        await d.write("stdout", b"line %03d\n" % i, when_ns=T0 + i)
    await d.aclose()
    names = sorted(os.listdir(tmp_path))
    assert names == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    for name in names:
        assert os.path.getsize(tmp_path / name) <= 1000 + 100
    records = await collect(d)
    numbers = [int(r.data.split()[1]) for r in records]
    assert numbers == list(range(numbers[0], 200))  # oldest first, no gaps
    assert numbers[0] > 0  # the oldest files were dropped
    n_current = len(file_lines(path))
    tail = n_current + 3  # reaches into c-json.log.1
    assert [r.data for r in await collect(d, tail=tail)] == [b"line %03d\n" % i for i in range(200 - tail, 200)]
    assert [r.data for r in await collect(d, tail=1)] == [b"line 199\n"]
    assert await collect(d, tail=0) == []
    assert len(await collect(d, tail=10_000)) == len(records)


async def test_rotation_with_one_file_truncates(tmp_path):
    d = JsonFileLogDriver(str(tmp_path / "l.log"), {"max-size": "200"})
    for i in range(50):
        await d.write("stdout", b"%d\n" % i, when_ns=T0)
    await d.aclose()
    assert os.listdir(tmp_path) == ["l.log"]
    got = [r.data for r in await collect(d)]
    assert got[-1] == b"49\n" and len(got) < 50


async def test_since_until(tmp_path):
    d = JsonFileLogDriver(str(tmp_path / "l.log"), {})
    for i in range(10):
        await d.write("stdout", b"%d\n" % i, when_ns=T0 + i * 10**9)
    await d.aclose()
    got = await collect(d, since_ns=T0 + 3 * 10**9, until_ns=T0 + 6 * 10**9)
    assert [r.data for r in got] == [b"3\n", b"4\n", b"5\n", b"6\n"]
    # tail counts before since filters, like Docker
    assert [r.data for r in await collect(d, tail=2, since_ns=T0 + 9 * 10**9)] == [b"9\n"]
    assert await collect(d, until_ns=T0 - 1) == []


async def test_follow_receives_new_records_and_ends_on_close(tmp_path):
    d = JsonFileLogDriver(str(tmp_path / "l.log"), {"max-size": "300", "max-file": "2"})
    await d.write("stdout", b"before\n", when_ns=T0)
    send, recv = trio.open_memory_channel(100)

    async def follower():
        async with send:
            async for record in d.read(follow=True):
                await send.send(record.data)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follower)
            assert await recv.receive() == b"before\n"
            await trio.testing.wait_all_tasks_blocked()
            await d.write("stderr", b"after\n")
            assert await recv.receive() == b"after\n"
            # Enough to rotate several times while following: nothing lost, nothing doubled.
            for i in range(30):
                await d.write("stdout", b"rot %02d\n" % i)
                assert await recv.receive() == b"rot %02d\n" % i
            await d.write("stdout", b"bye\n")
            await d.aclose()
        rest = [x async for x in recv]
    assert rest == [b"bye\n"]


async def test_follow_before_first_write_and_fast_writer(tmp_path):
    d = JsonFileLogDriver(str(tmp_path / "l.log"), {"max-size": "500", "max-file": "5"})
    got = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow_into, got, d)
            await trio.testing.wait_all_tasks_blocked()
            for i in range(60):  # no yielding to the follower between writes
                await d.write("stdout", b"%02d\n" % i)
            await d.aclose()
    assert got == [b"%02d\n" % i for i in range(60)]


async def test_a_follower_reads_what_came_while_it_read_before_the_close(tmp_path, monkeypatch):
    """The writer rotates, writes and closes while a follower is in the read that finds the
    end of the old file: the follower still gets the new file's records before it ends."""
    import threading

    d = JsonFileLogDriver(str(tmp_path / "l.log"), {"max-size": "100", "max-file": "3"})
    await d.write("stdout", b"first\n")
    real_pread = os.pread
    at_eof, go_on, blocked = trio.Event(), threading.Event(), []

    def pread(fd, n, offset):
        data = real_pread(fd, n, offset)
        if not data and not blocked:  # the first end of file: hold the follower there
            blocked.append(True)
            trio.from_thread.run_sync(at_eof.set)
            go_on.wait()
        return data

    monkeypatch.setattr(os, "pread", pread)
    got = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow_into, got, d)
            await at_eof.wait()
            await d.write("stdout", b"x" * 120 + b"\n")  # the file is full: the next write rotates
            await d.write("stdout", b"last\n")
            await d.aclose()
            go_on.set()
    assert got == [b"first\n", b"x" * 120 + b"\n", b"last\n"]


async def test_follow_with_tail_zero_and_until(tmp_path):
    d = JsonFileLogDriver(str(tmp_path / "l.log"), {})
    await d.write("stdout", b"old\n")
    got = []
    now = time.time_ns()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(follow_into, got, d, tail=0, until_ns=now + 3600 * 10**9))
            await trio.testing.wait_all_tasks_blocked()
            await d.write("stdout", b"new\n")
            await d.aclose()
    assert got == [b"new\n"]
    # until already passed: a follower ends at once
    with trio.fail_after(5):
        live = JsonFileLogDriver(str(tmp_path / "l.log"))
        assert [r.data for r in await collect(live, follow=True, until_ns=time.time_ns() + 1)] == [b"old\n", b"new\n"]


async def test_reader_of_stopped_container_does_not_block(tmp_path):
    path = str(tmp_path / "l.log")
    d = JsonFileLogDriver(path, {})
    await d.write("stdout", b"a\n")
    await d.aclose()
    with trio.fail_after(5):
        assert [r.data for r in await collect(JsonFileLogDriver.reader(path), follow=True)] == [b"a\n"]
        assert await collect(JsonFileLogDriver.reader(str(tmp_path / "missing.log")), follow=True) == []


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max-size": "junk"}, "invalid size: 'junk'"),
        ({"max-size": "-1"}, "invalid size: '-1'"),  # dockerd's go-units: no sign
        ({"max-size": "0"}, "max-size must be a positive number"),
        ({"max-file": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
        ({"max-file": "0"}, "max-file cannot be less than 1"),
        ({"compress": "maybe"}, 'strconv.ParseBool: parsing "maybe": invalid syntax'),
        ({"compress": "true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"),
        ({"colour": "red"}, "unknown log opt 'colour' for json-file log driver"),
    ],
)
def test_bad_options(tmp_path, options, message):
    with pytest.raises(errors.InvalidParameter) as info:
        JsonFileLogDriver(str(tmp_path / "l.log"), options)
    assert info.value.message == message


def test_good_options(tmp_path):
    p = str(tmp_path / "l.log")
    assert JsonFileLogDriver(p, {}).max_size == -1
    assert JsonFileLogDriver(p, {"max-size": "10m"}).max_size == 10_000_000
    assert JsonFileLogDriver(p, {"max-size": "1.5k"}).max_size == 1500
    assert JsonFileLogDriver(p, {"max-size": "2048"}).max_size == 2048
    assert JsonFileLogDriver(p, {"max-size": "10MB", "max-file": "3", "compress": "true"}).max_file == 3


def test_parse_since():
    now = T0 + 7200 * 10**9
    assert parse_since("1700000000") == 1_700_000_000 * 10**9
    assert parse_since("1700000000.123456789") == 1_700_000_000_123_456_789
    assert parse_since("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_since("") == 0 and parse_since("0") == 0 and parse_since(None) == 0
    assert parse_since("2024-01-01T00:00:00Z") == T0
    assert parse_since("2024-01-01T00:00:00.000000001Z") == T0 + 1
    assert parse_since("2024-01-01T02:00:00+02:00") == T0
    assert parse_since("10m", now_ns=now) == now - 600 * 10**9
    assert parse_since("1h30m", now_ns=now) == now - 5400 * 10**9
    assert parse_since("1.5h", now_ns=now) == now - 5400 * 10**9
    assert parse_since("250ms", now_ns=now) == now - 250_000_000
    for bad in ("yesterday", "10x", "2024-13-01", "1h30"):
        with pytest.raises(errors.InvalidParameter):
            parse_since(bad)


def test_time_formats():
    assert format_rfc3339nano(T0 + 123_456_789) == "2024-01-01T00:00:00.123456789Z"
    assert format_rfc3339nano(T0 + 120_000_000) == "2024-01-01T00:00:00.12Z"
    assert format_rfc3339nano(T0) == "2024-01-01T00:00:00Z"
    assert format_rfc3339nano(T0 + 120_000_000, fixed=True) == "2024-01-01T00:00:00.120000000Z"
    assert parse_rfc3339_ns("2024-01-01T00:00:00.12Z") == T0 + 120_000_000


def test_frame_and_format_line():
    assert frame(1, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert frame(2, b"x" * 300)[:8] == b"\x02\x00\x00\x00\x00\x00\x01\x2c"
    rec = LogRecord("stdout", b"hello\n", T0 + 123_456_789)
    assert format_log_line(rec, False) == b"hello\n"
    assert format_log_line(rec, True) == b"2024-01-01T00:00:00.123456789Z hello\n"
    assert format_log_line(LogRecord("stdout", b"x\n", T0), True) == b"2024-01-01T00:00:00.000000000Z x\n"


async def test_follower_far_behind_loses_nothing_and_pins_are_released(tmp_path):
    """A follower that has not run while the writer rotated past max-file still reads every
    record (Docker loses them); the files kept open for it are closed once it has read them."""
    d = JsonFileLogDriver(str(tmp_path / "l.log"), {"max-size": "200", "max-file": "2"})
    await d.write("stdout", b"first\n")
    reader = d.read(follow=True)
    assert (await reader.__anext__()).data == b"first\n"  # registered, now parked at EOF
    for i in range(40):  # ~20 rotations while the follower does not run
        await d.write("stdout", b"%02d\n" % i)
    assert d.statistics()["pinned"] > 0
    await d.aclose()
    got = [record.data async for record in reader]
    assert got == [b"%02d\n" % i for i in range(40)]
    assert d.statistics()["pinned"] == 0 and d.statistics()["followers"] == 0
    assert len(os.listdir(tmp_path)) == 2  # the kept files only: rotation still deletes


@pytest.mark.parametrize("driver, message", [
    ("bogus", 'error looking up logging plugin bogus: plugin "bogus" not found'),  # dockerd's words
    ("syslog", "log driver 'syslog' is not supported by pyengine (json-file or none)"),
])
def test_log_drivers_other_than_json_file_and_none_are_refused_at_create(driver, message):
    from engine.containers import HostConfig
    from engine.containers.config import validate_host_config
    from engine.containers.spec import LogConfig

    with pytest.raises(errors.InvalidParameter) as info:
        validate_host_config(HostConfig(log_config=LogConfig(type=driver)))
    assert info.value.message == message
    for kept in ("json-file", "none"):
        validate_host_config(HostConfig(log_config=LogConfig(type=kept)))


@pytest.mark.parametrize("given, lines", [("3", 3), ("0", 0), ("-1", None), ("bogus", None)])
def test_tail_values_as_dockerd_takes_them(given, lines):
    """A tail that does not parse or is negative shows every line (dockerd), not an error."""
    from engine.api.containers import _tail

    assert _tail(given) == lines


def test_extra_attributes_pick_what_the_options_name():
    from engine.containers.logs import extra_attributes

    labels, env = {"team": "a", "tier": "web", "other": "x"}, ["E1=1", "E2=2", "PATH=/bin", "NOVALUE"]
    assert extra_attributes({}, labels, env) == {}
    assert extra_attributes({"labels": "team,missing", "env": "E2,NOVALUE"}, labels, env) == {"team": "a", "E2": "2"}
    assert extra_attributes({"labels-regex": "^t", "env-regex": "^E"}, labels, env) == \
        {"team": "a", "tier": "web", "E1": "1", "E2": "2"}
    with pytest.raises(errors.InvalidParameter, match="error parsing regexp"):
        extra_attributes({"env-regex": "("}, labels, env)


async def test_records_carry_their_attributes_and_details_print_them(tmp_path):
    from engine.api.containers import log_line

    driver = JsonFileLogDriver(str(tmp_path / "log.json"), {}, {"b": "x y", "a": "1&2"})
    await driver.write("stdout", b"hi\n", when_ns=0)
    await driver.aclose()
    line = json.loads((tmp_path / "log.json").read_text())
    assert list(line) == ["log", "stream", "attrs", "time"] and line["attrs"] == {"b": "x y", "a": "1&2"}
    records = [r async for r in JsonFileLogDriver.reader(str(tmp_path / "log.json")).read(follow=False)]
    assert records[0].attrs == (("a", "1&2"), ("b", "x y"))
    assert log_line(records[0], timestamps=False, details=True) == b"a=1%262,b=x+y hi\n"
    assert log_line(records[0], timestamps=False) == b"hi\n"

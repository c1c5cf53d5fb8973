"""The spill path of container output: the json-file log journaled against stream offsets
(engine/containers/journal.py) and the pump reading a spill file (engine/runtime/spill.py)
— every byte logged once, whatever a crash left behind."""

from __future__ import annotations

import json
import os

import trio

from engine.containers.journal import Positions, recover
from engine.containers.logs import JsonFileLogDriver
from engine.containers.pumps import GiveUp, SpillSource, pump_spill
from engine.runtime.spill import HEADER, MAGIC, REC, read_records


def spill_bytes(records) -> bytes:
    out = [MAGIC + bytes(8)]
    for stream, offset, ts, data in records:
        out.append(REC.pack(stream, len(data), offset, ts) + data)
    return b"".join(out)


def log_lines(path) -> list[dict]:
    with open(path, "rb") as f:
        return [json.loads(line) for line in f]


async def test_journaled_writes_record_positions_and_a_torn_write_is_cut(tmp_path):
    log, pos = str(tmp_path / "c-json.log"), str(tmp_path / "output.1.pos")
    d = JsonFileLogDriver(log)
    d.journal(Positions(pos), {"stdout": 0, "stderr": 0})
    await d.write("stdout", b"one\ntw", 10, 0)
    await d.write("stderr", b"err\n", 11, 0)
    assert (d.logged("stdout"), d.logged("stderr")) == (4, 4)  # "tw" waits for its newline
    await d.write("stdout", b"o\n", 12, 6)
    assert d.logged("stdout") == 8
    assert recover(pos, log) == {"stdout": 8, "stderr": 4}
    size = os.path.getsize(log)
    ino = os.stat(log).st_ino
    # The daemon recorded a 40-byte write and died before it (or in the middle of it).
    Positions(pos, fresh=False).record({"stdout": 8, "stderr": 4}, {"stdout": 20, "stderr": 4}, ino, size, size + 40)
    assert recover(pos, log) == {"stdout": 8, "stderr": 4}
    with open(log, "ab") as f:
        f.write(b'{"log":"thr')
    assert recover(pos, log) == {"stdout": 8, "stderr": 4}
    assert os.path.getsize(log) == size  # the torn record is cut off
    with open(log, "ab") as f:  # ...or after it
        f.write(b"x" * 40)
    assert recover(pos, log) == {"stdout": 20, "stderr": 4}
    os.truncate(log, size)
    await d.aclose()
    assert [r["log"] for r in log_lines(log)] == ["one\n", "err\n", "two\n"]
    assert log_lines(log)[2]["time"].startswith("1970-01-01T00:00:00.00000001")  # the first part's capture time


async def test_a_run_that_logs_nothing_leaves_no_positions_file(tmp_path):
    """A new run's positions file is made at its first record: a silent run has none, and
    recovery then says (rightly) that its log holds nothing of it; a file an older process
    of the same pid left is gone at the new run's start, not read back."""
    log, pos = str(tmp_path / "c-json.log"), str(tmp_path / "output.1.pos")
    with open(pos, "wb") as f:  # left by an older run of the same pid
        f.write(b"PEPOS001" + b"\xff" * 56)
    d = JsonFileLogDriver(log)
    d.journal(Positions(pos), {"stdout": 0, "stderr": 0})
    assert not os.path.exists(pos)
    assert recover(pos, log) == {"stdout": 0, "stderr": 0}
    await d.write("stdout", b"hello\n", 10, 0)
    assert os.path.exists(pos) and recover(pos, log) == {"stdout": 6, "stderr": 0}
    await d.aclose()


def test_read_records_leaves_a_record_being_written(tmp_path):
    path = tmp_path / "s"
    full = spill_bytes([(1, 0, 1, b"abc"), (2, 0, 2, b"xy")])
    path.write_bytes(full[:-1])
    fd = os.open(path, os.O_RDONLY)
    try:
        records, pos = read_records(fd, 0)
        assert [(r.stream, r.data) for r in records] == [(1, b"abc")]
        assert pos == HEADER + REC.size + 3
    finally:
        os.close(fd)


class FakeRuntime:
    """wait_output as the spawner answers it: more data, or a new generation."""

    def __init__(self, path, later: list[bytes]):
        self.path, self.later, self.arms = path, later, []

    async def wait_output(self, cid, pid, read_to, keep_from, armed=False):
        self.arms.append((read_to, keep_from) if not armed else "armed")
        if not self.later:
            await trio.sleep_forever()
        tmp = self.path.with_suffix(".new")  # as the spawner: a new file renamed over
        tmp.write_bytes(self.later.pop(0))
        os.replace(tmp, self.path)
        return len(self.arms)


async def test_pump_spill_skips_what_was_logged_and_rereads_new_generations(tmp_path):
    path = tmp_path / "output.7.spill"
    first = [(1, 0, 100, b"a1\na2\n"), (2, 0, 101, b"e1\n"), (1, 6, 102, b"a3\n")]
    # the spawner dropped the head: the new file starts at a3 and goes on
    second = [(1, 6, 102, b"a3\n"), (1, 9, 103, b"a4\n"), (1, 12, 104, b""), (2, 3, 105, b"")]
    path.write_bytes(spill_bytes(first))
    runtime = FakeRuntime(path, [spill_bytes(second)])
    source = SpillSource(runtime, "c", 7, str(path), (1, 2), fed={1: 3, 2: 0})  # a1 was logged already
    got = []

    async def sink(stream_id, data, when_ns=None, offset=None):
        got.append((stream_id, data, when_ns, offset))

    with trio.fail_after(10):
        await pump_spill(source, sink, GiveUp())
    assert got == [(1, b"a2\n", 100, 3), (2, b"e1\n", 101, 0), (1, b"a3\n", 102, 6), (1, b"a4\n", 103, 9)]
    assert runtime.arms == [(HEADER + 3 * REC.size + 12, HEADER + 3 * REC.size + 12)]


async def test_pump_spill_first_wait_of_a_held_spawn_is_armed_already(tmp_path):
    """A run spawned with its output held was armed by its spawn: the pump's first wait sends
    no ARM (no file yet: it may not exist before the first byte), the later ones do."""
    path = tmp_path / "output.9.spill"
    runtime = FakeRuntime(path, [spill_bytes([(1, 0, 1, b"x\n")]),
                                 spill_bytes([(1, 0, 1, b"x\n"), (1, 2, 2, b""), (2, 0, 3, b"")])])
    source = SpillSource(runtime, "c", 9, str(path), (1, 2))
    source.armed = True
    got = []

    async def sink(stream_id, data, when_ns=None, offset=None):
        got.append(data)

    with trio.fail_after(10):
        await pump_spill(source, sink, GiveUp())
    assert got == [b"x\n"]
    assert runtime.arms == ["armed", (HEADER + REC.size + 2,) * 2]


async def test_pump_spill_given_up_takes_what_is_there(tmp_path):
    path = tmp_path / "output.8.spill"
    path.write_bytes(spill_bytes([(1, 0, 1, b"x\n")]))
    source = SpillSource(FakeRuntime(path, []), "c", 8, str(path), (1, 2))
    got = []

    async def sink(stream_id, data, when_ns=None, offset=None):
        got.append(data)

    give_up = GiveUp()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump_spill, source, sink, give_up)
        await trio.testing.wait_all_tasks_blocked()
        give_up()
    assert got == [b"x\n"]


class QuietRuntime:
    """The spawner's answer to the armed first wait of a run that ended before a byte."""

    def __init__(self):
        self.waits = []

    async def wait_output(self, cid, pid, read_to, keep_from, armed=False):
        from engine.runtime.spill import NO_SPILL

        self.waits.append(armed)
        return NO_SPILL if armed else None


async def test_pump_spill_of_a_run_that_never_wrote_ends_quiet_without_opening_a_file(tmp_path):
    """A held spawn's first wait comes before any open (the file exists only from the first
    byte); "nothing, ever" then marks the run quiet, so its end removes no file."""
    path = tmp_path / "output.5.spill"
    source = SpillSource(QuietRuntime(), "c", 5, str(path), (1, 2))
    source.armed = True
    path.mkdir()  # a read of it would fail (EISDIR): the pump must not open it

    async def sink(stream_id, data, when_ns=None, offset=None):
        raise AssertionError("no output")

    with trio.fail_after(10):
        await pump_spill(source, sink, GiveUp())
    assert source.quiet and source.pumped and source.runtime.waits == [True]

    later = SpillSource(QuietRuntime(), "c", 6, str(tmp_path / "output.6.spill"), (1, 2))
    with trio.fail_after(10):
        await pump_spill(later, sink, GiveUp())  # a later (ARMed) wait's "nothing" is "gone"
    assert not later.quiet and later.runtime.waits == [False]


async def test_a_new_run_that_knows_no_file_was_left_makes_one_at_its_first_record_only(tmp_path):
    """Positions(stale=False): the caller knows no earlier run left a file (its supervisor
    removed them): nothing is unlinked nor made at the start, the file comes with the first
    record as for any new run."""
    log, pos = str(tmp_path / "c-json.log"), tmp_path / "output.3.pos"
    d = JsonFileLogDriver(log)
    d.journal(Positions(str(pos), stale=False), {"stdout": 0, "stderr": 0})
    assert not pos.exists()
    await d.write("stdout", b"hi\n", 10, 0)
    assert recover(str(pos), log) == {"stdout": 3, "stderr": 0}
    await d.aclose()

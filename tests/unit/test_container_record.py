"""Saving a container record: each save is whole on disk and the record always holds the last
one; the previous record is kept as the spare the next save writes (no file is created or
deleted per save once both exist); a record that is not whole JSON (power loss: saves do not
fsync) is read from the spare."""

from __future__ import annotations

import json
import os
import threading

from engine.containers import ContainerConfig, HostConfig, record
from engine.containers.model import Container, Status


def make_container(directory) -> Container:
    return Container(id="c" * 64, name="rec", created_ns=1, image_id="sha256:" + "0" * 64, path="true",
                     args=[], config=ContainerConfig(image="busybox", cmd=("true",)), host_config=HostConfig(),
                     directory=str(directory))


def on_disk(directory) -> tuple[dict, dict | None]:
    with open(os.path.join(directory, record.RECORD_NAME)) as f:
        current = json.load(f)
    spare = os.path.join(directory, record.RECORD_NAME + record.SPARE_SUFFIX)
    if not os.path.exists(spare):
        return current, None
    with open(spare) as f:
        return current, json.load(f)


def test_each_save_replaces_the_record_and_keeps_the_previous_as_spare(tmp_path):
    c = make_container(tmp_path)
    c.save()
    current, _ = on_disk(tmp_path)
    assert current["state"]["status"] == "created"
    c.state.status, c.state.pid = Status.RUNNING, 4242
    c.save()
    current, spare = on_disk(tmp_path)
    assert (current["state"]["status"], current["state"]["pid"]) == ("running", 4242)
    assert spare is None or spare["state"]["status"] == "created"
    files = {e: os.stat(tmp_path / e).st_ino for e in os.listdir(tmp_path)}
    c.state.status, c.state.pid, c.state.exit_code = Status.EXITED, 0, 3
    c.name = "a-much-longer-name-than-before-" * 4
    c.save()
    current, spare = on_disk(tmp_path)
    assert (current["state"]["status"], current["state"]["exit_code"], current["name"]) == ("exited", 3, c.name)
    if spare is not None:  # renameat2(RENAME_EXCHANGE) works here: the two files traded places
        assert spare["state"]["status"] == "running"
        assert sorted(files.values()) == sorted(os.stat(tmp_path / e).st_ino for e in os.listdir(tmp_path))
    c.name = "short"
    c.save()  # a shorter record leaves no bytes of the longer one behind
    assert record.load(str(tmp_path)).name == "short"


def test_a_torn_record_is_read_from_the_spare(tmp_path):
    tmp_path = tmp_path / ("c" * 64)  # a record's directory is named after its container
    tmp_path.mkdir()
    c = make_container(tmp_path)
    c.save()
    c.state.status = Status.RUNNING
    c.save()
    path = tmp_path / record.RECORD_NAME
    spare = tmp_path / (record.RECORD_NAME + record.SPARE_SUFFIX)
    if not spare.exists():  # no exchange on this file system: keep the record as a spare
        spare.write_bytes(path.read_bytes())
    whole = json.loads(spare.read_text())
    path.write_bytes(path.read_bytes()[:40])
    assert record.load(str(tmp_path)).state.status.value == whole["state"]["status"]
    spare.write_bytes(b"{")
    try:
        record.load(str(tmp_path))
    except ValueError:
        pass  # neither whole: a half-created container for recovery, as before
    else:
        raise AssertionError("a torn record with a torn spare loaded")


def test_a_reused_directory_saves_without_new_files_and_never_loads_its_stale_spare(tmp_path):
    """A removed container's directory, reused (engine/containers/reclaim.py), holds its old
    record and that record's spare as the two spares: the first save renames one to the
    record and the other to the spare, so no save creates a file; the stale spare (another
    container's record) is never read for a torn record."""
    directory = tmp_path / ("c" * 64)
    directory.mkdir()
    old = json.dumps({"id": "d" * 64, "name": "removed"})
    for suffix in (record.SPARE_SUFFIX, record.SECOND_SPARE_SUFFIX):
        (directory / (record.RECORD_NAME + suffix)).write_text(old)
    inodes = sorted(os.stat(directory / e).st_ino for e in os.listdir(directory))
    c = make_container(directory)
    c.save()
    assert sorted(os.listdir(directory)) == [record.RECORD_NAME, record.RECORD_NAME + record.SPARE_SUFFIX]
    path = directory / record.RECORD_NAME
    path.write_bytes(path.read_bytes()[:40])
    try:
        record.load(str(directory))
    except ValueError:
        pass
    else:
        raise AssertionError("a torn record loaded from another container's spare")
    c.save()
    c.state.status = Status.RUNNING
    c.save()
    assert sorted(os.stat(directory / e).st_ino for e in os.listdir(directory)) == inodes
    assert record.load(str(directory)).state.status is Status.RUNNING


def test_saves_from_threads_never_tear_the_record(tmp_path):
    c = make_container(tmp_path)
    c.save()

    def saver(n):
        for i in range(50):
            c.restart_count = n * 1000 + i
            c.save()

    threads = [threading.Thread(target=saver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.save()
    assert record.load(str(tmp_path)).restart_count == c.restart_count
    assert sorted(os.listdir(tmp_path)) in ([record.RECORD_NAME], [record.RECORD_NAME, record.RECORD_NAME + record.SPARE_SUFFIX])


def test_the_encoded_record_is_the_json_of_its_data(tmp_path):
    c = make_container(tmp_path)
    for _ in range(2):  # the spec's JSON is cached after the first
        assert record.encode(c) == json.dumps(record.to_data(c)).encode()
        c.state.status, c.exec_ids = Status.RUNNING, ["e1"]
    c.host_config = HostConfig(privileged=True)  # a replaced spec is encoded anew
    assert json.loads(record.encode(c))["host_config"]["privileged"] is True


def test_saves_of_growing_and_shrinking_records_leave_no_stale_bytes(tmp_path):
    """A save truncates the spare only when it holds more than the new record (the sizes this
    process left are known): whatever the order of sizes, both files are whole JSON."""
    c = make_container(tmp_path)
    for n in (1, 40, 3, 3, 90, 2, 60, 61, 1, 1):
        c.name = "n" * n
        c.save()
        for name in os.listdir(tmp_path):
            json.loads((tmp_path / name).read_text())  # whole: no bytes of a longer record behind
        assert json.loads((tmp_path / record.RECORD_NAME).read_text())["name"] == c.name
    again = record.load(str(tmp_path))  # a record loaded anew: its spare's size is not known
    again.name = "m"
    again.save()
    for name in os.listdir(tmp_path):
        json.loads((tmp_path / name).read_text())


def test_the_state_is_encoded_as_attrs_gives_it(tmp_path):
    import attrs

    from engine.containers.health import Health, ProbeResult

    c = make_container(tmp_path)
    for health in (None, Health(status="healthy", failing_streak=0, log=[ProbeResult(start_ns=1, end_ns=2, exit_code=0, output="ok")])):
        c.state.health = health
        c.state.status, c.state.error = Status.EXITED, "boom"
        expected = attrs.asdict(c.state, recurse=True)
        expected["status"] = "exited"
        assert record.to_data(c)["state"] == expected

"""engine.networks.owners: which tags' host state a starting daemon may remove."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from engine.networks.owners import Orphan, OwnerRecords, process_started


def _record(records: OwnerRecords, tag: str, data_root: str, bridge: str, pid: int = 0, started: int = 0) -> None:
    os.makedirs(records.directory, exist_ok=True)
    with open(os.path.join(records.directory, f"{tag}.json"), "w") as f:
        json.dump({"tag": tag, "data_root": data_root, "default_bridge": bridge, "pid": pid, "started": started}, f)


def test_only_tags_with_data_root_gone_and_daemon_dead_are_orphans(tmp_path):
    records = OwnerRecords(str(tmp_path / "exec"))
    records.register("aaaaa", str(tmp_path / "mine"), "peaaaaa")  # ourselves
    _record(records, "bbbbb", str(tmp_path / "deleted"), "pebbbbb")
    _record(records, "ccccc", str(tmp_path), "peccccc")  # data root still there
    # a live process whose data root is gone: still running, not ours to clean
    _record(records, "ddddd", str(tmp_path / "deleted"), "peddddd", os.getpid(), process_started(os.getpid()))
    assert records.orphans("aaaaa", "peaaaaa") == [Orphan("bbbbb", "pebbbbb")]
    records.unregister("bbbbb")
    assert records.orphans("aaaaa", "peaaaaa") == []


def test_a_reused_pid_is_not_the_daemon(tmp_path):
    records = OwnerRecords(str(tmp_path / "exec"))
    pid = os.getpid()
    _record(records, "bbbbb", str(tmp_path / "deleted"), "pebbbbb", pid, process_started(pid) + 1)
    assert records.orphans("aaaaa", "peaaaaa") == [Orphan("bbbbb", "pebbbbb")]
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert process_started(int(child.stdout)) == 0  # exited


def test_a_bridge_name_a_live_owner_uses_is_kept(tmp_path):
    records = OwnerRecords(str(tmp_path / "exec"))
    _record(records, "bbbbb", str(tmp_path / "deleted"), "pe0")
    _record(records, "ccccc", str(tmp_path / "deleted2"), "br-custom")
    _record(records, "ddddd", str(tmp_path), "br-custom")  # alive (data root exists)
    found = sorted(records.orphans("aaaaa", "pe0"), key=lambda o: o.tag)
    assert found == [Orphan("bbbbb", None), Orphan("ccccc", None)]


def test_unreadable_record_is_dropped(tmp_path):
    records = OwnerRecords(str(tmp_path / "exec"))
    os.makedirs(records.directory)
    with open(os.path.join(records.directory, "eeeee.json"), "w") as f:
        f.write("{not json")
    assert records.orphans("aaaaa", "peaaaaa") == []
    assert os.listdir(records.directory) == []


def test_register_records_this_process(tmp_path):
    records = OwnerRecords(str(tmp_path / "exec"))
    records.register("aaaaa", str(tmp_path / "gone"), "peaaaaa")
    # our own tag is never an orphan of ours; seen from another daemon we are running
    assert records.orphans("aaaaa", "peaaaaa") == []
    assert records.orphans("zzzzz", "pezzzzz") == []

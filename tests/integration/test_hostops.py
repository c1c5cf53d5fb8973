"""Host operations on the native thread (engine.runtime.hostops): order, results, the first
failure stopping the list, and the cgroup lists doing what the full create/destroy do."""

import os
import secrets

import pytest
import trio

from engine.runtime import hostops
from engine.runtime.cgroups import Resources, cleanup_stale, detect_mode, for_container

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for real mounts and cgroups")


def test_ops_run_in_order_and_read(tmp_path):
    a = tmp_path / "a"
    (tmp_path / "file").write_bytes(b"x:0:0\n")

    async def main():
        return await hostops.run([
            hostops.Mkdir(str(a)), hostops.Mkdir(str(a / "b"), mode=0o700),
            hostops.Mkdir(str(a), exist_ok=True),
            hostops.Read(str(tmp_path), "file"), hostops.Read(str(tmp_path), "/missing"),
            hostops.Write(str(tmp_path / "file"), ("ab", "cd")),
            hostops.Rmdir(str(a / "b")), hostops.Rmdir(str(a / "b")),  # missing is fine by default
        ])

    assert trio.run(main) == [b"x:0:0\n", None]
    assert a.is_dir() and not (a / "b").exists()
    # one open (no O_TRUNC: cgroupfs files take each write whole), one write per value
    assert (tmp_path / "file").read_bytes() == b"abcd0\n"


def test_mkdir_in_root_keeps_symlinks_inside(tmp_path):
    """A WorkingDir under an absolute symlink of the image is made inside the rootfs, never
    where the link would point on the host."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    (root / "link").symlink_to(str(outside))  # absolute: the host's path, were it followed
    trio.run(hostops.run, [hostops.MkdirInRoot(str(root), "/link/app/../work"),
                           hostops.MkdirInRoot(str(root), "/link/work")])  # there already: fine
    assert (root / str(outside).lstrip("/") / "work").is_dir()
    assert not outside.exists()


def test_reads_stay_inside_the_root(tmp_path):
    """An image's /etc/passwd that is an absolute symlink names a file of the rootfs, never
    the host's: both the host operations and the worker-thread path read it there."""
    from engine.runtime import read_in_root

    root, host_file = tmp_path / "root", tmp_path / "host-passwd"
    (root / "etc").mkdir(parents=True)
    host_file.write_bytes(b"host:x:0:0::/:/bin/sh\n")
    (root / "etc" / "passwd").symlink_to(str(host_file))  # absolute: the host's, were it followed
    (root / "etc" / "group").symlink_to("../../../../../../etc/group")  # climbs no higher than root
    assert trio.run(hostops.run, [hostops.Read(str(root), "etc/passwd"), hostops.Read(str(root), "etc/group")]) \
        == [None, None]
    assert read_in_root(str(root), "etc/passwd") is None and read_in_root(str(root), "etc/group") is None
    (root / str(tmp_path).lstrip("/")).mkdir(parents=True)
    (root / str(host_file).lstrip("/")).write_bytes(b"inside:x:7:7::/:/bin/sh\n")
    assert trio.run(hostops.run, [hostops.Read(str(root), "/etc/passwd")]) == [b"inside:x:7:7::/:/bin/sh\n"]
    assert read_in_root(str(root), "etc/passwd") == b"inside:x:7:7::/:/bin/sh\n"


def test_first_failure_stops_the_list(tmp_path):
    async def main():
        await hostops.run([hostops.Mkdir(str(tmp_path / "one")), hostops.Mkdir(str(tmp_path / "one")),
                           hostops.Mkdir(str(tmp_path / "two"))])

    with pytest.raises(hostops.HostOpError) as info:
        trio.run(main)
    assert info.value.errno == 17 and info.value.index == 1
    assert info.value.op == hostops.Mkdir(str(tmp_path / "one"))
    assert sorted(os.listdir(tmp_path)) == ["one"]  # done before it, nothing after


def test_read_larger_than_the_room_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(hostops, "READ_MAX", 8)
    (tmp_path / "big").write_bytes(b"0123456789")
    with pytest.raises(hostops.HostOpError) as info:
        trio.run(hostops.run, [hostops.Read(str(tmp_path), "big")])
    assert info.value.errno == 27  # EFBIG


@needs_root
def test_overlay_mount_and_unmount(tmp_path):
    for name in ("lower", "upper", "work", "merged"):
        (tmp_path / name).mkdir()
    (tmp_path / "lower" / "etc").mkdir()
    (tmp_path / "lower" / "etc" / "passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    merged = str(tmp_path / "merged")
    try:
        reads = trio.run(hostops.run, [
            hostops.MountOverlay(merged, str(tmp_path / "upper"), str(tmp_path / "work"), (str(tmp_path / "lower"),)),
            hostops.Read(merged, "etc/passwd")])
        assert reads == [b"root:x:0:0::/root:/bin/sh\n"]
        assert os.path.ismount(merged)
    finally:
        trio.run(hostops.run, [hostops.Unmount(merged), hostops.Unmount(merged)])  # twice: no error
    assert not os.path.ismount(merged)


@needs_root
@pytest.mark.skipif(detect_mode() != "v1", reason="the lists are v1's (v2 creates in full)")
def test_cgroup_lists_match_create_and_destroy():
    parent = f"pyengine-test-{secrets.token_hex(4)}"
    full, listed = for_container(parent, secrets.token_hex(32)), for_container(parent, secrets.token_hex(32))
    try:
        assert listed.create_ops(Resources()) is None  # no create under this parent yet
        full.create(Resources())
        assert listed.create_ops(Resources(memory=64 << 20)) is None  # limits: the full create
        trio.run(hostops.run, listed.create_ops(Resources(pids_limit=0)))  # 0: unlimited
        for mine, theirs in zip(listed.dirs(), full.dirs()):
            assert os.path.isdir(mine)
            assert sorted(os.listdir(mine)) == sorted(os.listdir(theirs))
        devices = [os.path.join(d, "devices.list") for d in (listed.path("devices"), full.path("devices"))]
        lists = [open(p).read() for p in devices]
        assert lists[0] == lists[1] and "c 1:3 rwm" in lists[0]
        trio.run(hostops.run, listed.destroy_ops())
        assert not any(os.path.exists(d) for d in listed.dirs())
    finally:
        cleanup_stale(parent, [])
        for d in full.parent_dirs():
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass

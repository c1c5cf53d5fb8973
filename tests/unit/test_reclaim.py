"""The Reclaimer keeps a few removed containers' directories, emptied (the record as the
next one's spare), for new ones."""
import os
import struct
import subprocess

import pytest

from engine.containers.reclaim import SPARES_MAX, Reclaimer


def removed_dir(path) -> str:
    """A removed container's directory as rm leaves it (files, an upper dir with content)."""
    for d in ("work/work/x", "merged", "diff/etc/deep"):
        os.makedirs(path / d)
    for f in ("hosts", "hostname", "config.v2.json", "config.v2.json.tmp", "c-json.log", "diff/etc/deep/f",
              "work/work/x/f"):
        (path / f).write_text("x")
    os.symlink("/etc", path / "diff" / "link")
    return str(path)


async def test_a_removed_directory_is_kept_empty_but_for_its_work_dir_and_mount_point(tmp_path):
    reclaimer = Reclaimer()
    await reclaimer.reclaim([("c" * 64, removed_dir(tmp_path / "removed-c"))])
    spare = reclaimer.take_spare()
    assert spare is not None and not os.path.exists(tmp_path / "removed-c")
    assert "c" * 12 not in spare
    assert sorted((os.path.relpath(d, spare), sorted(ds), sorted(files)) for d, ds, files in os.walk(spare)) == [
        (".", ["diff", "merged", "work"], ["config.v2.json.tmp", "config.v2.json.tmp2", "hostname", "hosts"]),
        ("diff", [], []), ("merged", [], []), ("work", [], [])]
    assert os.path.exists("/etc/passwd")  # the link was removed, not followed
    assert reclaimer.take_spare() is None


async def test_spares_are_bounded_and_the_rest_deleted(tmp_path):
    reclaimer = Reclaimer()
    batch = [(f"{i:064x}", removed_dir(tmp_path / f"removed-{i}")) for i in range(SPARES_MAX + 3)]
    await reclaimer.reclaim(batch)
    spares = [reclaimer.take_spare() for _ in range(SPARES_MAX)]
    assert None not in spares and reclaimer.take_spare() is None
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(s) for s in spares)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")
async def test_a_directory_with_its_mount_point_still_mounted_is_not_kept(tmp_path):
    path = removed_dir(tmp_path / "removed-m")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(path, "merged")], check=True)
    try:
        reclaimer = Reclaimer()
        await reclaimer.reclaim([("m" * 64, path)])
        assert reclaimer.take_spare() is None
        assert sorted(os.listdir(path)) == ["merged"]  # all else deleted; the mount left alone
    finally:
        subprocess.run(["umount", os.path.join(path, "merged")], check=True)


async def test_the_record_and_its_spare_become_the_spares_and_a_linked_one_goes(tmp_path):
    path = removed_dir(tmp_path / "removed-r")
    os.unlink(os.path.join(path, "config.v2.json.tmp"))
    os.link(os.path.join(path, "hosts"), os.path.join(path, "config.v2.json.tmp"))
    reclaimer = Reclaimer()
    await reclaimer.reclaim([("r" * 64, path)])
    spare = reclaimer.take_spare()
    with open(os.path.join(spare, "config.v2.json.tmp2")) as f:
        assert f.read() == "x"  # the record's content
    assert "config.v2.json.tmp" not in os.listdir(spare)  # hard-linked elsewhere: not kept
    os.symlink("/etc/passwd", os.path.join(spare, "link"))
    os.unlink(os.path.join(spare, "config.v2.json.tmp2"))
    os.symlink("/etc/passwd", os.path.join(spare, "config.v2.json.tmp2"))
    os.rename(spare, tmp_path / "removed-s")
    await reclaimer.reclaim([("s" * 64, str(tmp_path / "removed-s"))])
    again = reclaimer.take_spare()
    # no record to compare the /etc files with: they go too
    assert sorted(os.listdir(again)) == ["diff", "merged", "work"] and os.path.isfile("/etc/passwd")


@pytest.mark.parametrize("change", ["chmod", "chown", "xattr", "acl", "link", "symlink", "dir-mode", "dir-xattr"])
async def test_what_a_container_changed_is_not_kept(tmp_path, change):
    """The upper dir and the /etc files are kept only as the work dir and the record look:
    a mode, owner, extended attribute (ACLs, file capabilities) or link the container made
    sends them to deletion, and the next container gets new ones."""
    path = removed_dir(tmp_path / "removed-x")
    hosts, diff = os.path.join(path, "hosts"), os.path.join(path, "diff")
    if change == "chmod":
        os.chmod(hosts, 0o600)
    elif change == "chown":
        os.chown(hosts, 1000, 1000)
    elif change == "xattr":
        os.setxattr(hosts, "user.mark", b"1")
    elif change == "acl":
        entries = [(0x01, 6, 0xFFFFFFFF), (0x02, 6, 1000), (0x04, 4, 0xFFFFFFFF), (0x10, 6, 0xFFFFFFFF),
                   (0x20, 4, 0xFFFFFFFF)]  # setfacl -m u:1000:rw, as the kernel stores it
        os.setxattr(hosts, "system.posix_acl_access",
                    struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries))
    elif change == "link":
        os.link(hosts, tmp_path / "outside")
    elif change == "symlink":
        os.unlink(hosts)
        os.symlink("/etc/passwd", hosts)
    elif change == "dir-mode":
        os.chmod(diff, 0o700)
    elif change == "dir-xattr":
        os.setxattr(diff, "user.mark", b"1")
    reclaimer = Reclaimer()
    await reclaimer.reclaim([("x" * 64, path)])
    spare = reclaimer.take_spare()
    kept = sorted(os.listdir(spare))
    gone = "diff" if change.startswith("dir-") else "hosts"
    assert gone not in kept and "merged" in kept and "work" in kept
    assert os.path.isfile("/etc/passwd") and os.stat("/etc/passwd").st_uid == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* xattrs need root")
async def test_an_upper_dir_is_kept_without_the_marks_overlayfs_left(tmp_path):
    path = removed_dir(tmp_path / "removed-o")
    os.setxattr(os.path.join(path, "diff"), "trusted.overlay.uuid", b"0123456789abcdef")
    os.setxattr(os.path.join(path, "diff"), "trusted.overlay.impure", b"y")
    reclaimer = Reclaimer()
    await reclaimer.reclaim([("o" * 64, path)])
    spare = reclaimer.take_spare()
    assert "diff" in os.listdir(spare)
    assert os.listxattr(os.path.join(spare, "diff")) == [] and os.listdir(os.path.join(spare, "diff")) == []


async def test_a_cancelled_reclaim_stops_between_directories(tmp_path):
    """Shutdown cancels the reclaimer: it does not go on through the rest of its batch (what
    is left in <data_root>/tmp goes at the next start)."""
    import trio

    batch = [(f"{i:064x}", removed_dir(tmp_path / f"removed-{i}")) for i in range(3)]
    reclaimer = Reclaimer()
    with trio.CancelScope() as scope:
        scope.cancel()
        await reclaimer.reclaim(batch)
    assert sorted(os.listdir(tmp_path)) == ["removed-0", "removed-1", "removed-2"]
    assert reclaimer.take_spare() is None

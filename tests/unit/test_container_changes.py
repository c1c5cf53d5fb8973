"""docker diff read from an overlay upper dir: whiteouts and opaque dirs are deletes, paths
present below are modifications, new ones additions; engine-made mount targets are hidden."""

from __future__ import annotations

import os

import pytest

from engine.containers.changes import ChangeKind, rootfs_changes

A, C, D = ChangeKind.ADDED, ChangeKind.MODIFIED, ChangeKind.DELETED


def tree(root, dirs=(), files=()):
    for d in dirs:
        os.makedirs(root / d, exist_ok=True)
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are 0/0 character devices: mknod needs root")
def test_kinds_as_dockerd_reports_them(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    tree(lower, dirs=["bin", "etc", "root", "tmp"], files=["bin/ls", "bin/sh", "etc/passwd", "root/.profile"])
    tree(upper, dirs=["bin", "etc", "root", "tmp/x"], files=["test", "tmp/x/f", "etc/passwd", "etc/hostname", "etc/hosts"])
    os.mknod(upper / "bin" / "ls", 0o600 | 0o020000, os.makedev(0, 0))
    os.setxattr(upper / "root", "trusted.overlay.opaque", b"y")
    found = [(c.path, c.kind) for c in rootfs_changes(str(upper), [str(lower)])]
    assert found == [("/bin", C), ("/bin/ls", D), ("/etc", C), ("/etc/passwd", C), ("/root", D), ("/test", A),
                     ("/tmp", C), ("/tmp/x", A), ("/tmp/x/f", A)]


def test_engine_mount_targets_are_not_changes(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    tree(lower, dirs=["etc", "bin"])
    tree(upper, dirs=["etc", "proc", "sys", "dev/pts"], files=["etc/hostname", "etc/hosts", "etc/resolv.conf"])
    changes = rootfs_changes(str(upper), [str(lower)])
    assert changes == []  # dockerd keeps these (and /dev, /etc made for them) in its init layer


def test_nothing_changed(tmp_path):
    (tmp_path / "upper").mkdir()
    assert rootfs_changes(str(tmp_path / "upper"), [str(tmp_path)]) == []


def test_every_directory_above_a_change_is_modified_as_dockerds_naive_diff_says(tmp_path):
    """Checked side by side with dockerd 20.10 on this kernel: `echo x >> /etc/passwd` alone
    reports /etc too, and a new file two levels down both directories above it."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    tree(lower, dirs=["usr/bin", "etc"], files=["etc/passwd"])
    tree(upper, dirs=["usr/bin", "etc"], files=["usr/bin/nf", "etc/passwd"])
    for d in ("usr/bin", "usr", "etc"):  # copied up unchanged: the same mode, size and times
        st = os.lstat(lower / d)
        os.utime(upper / d, ns=(st.st_atime_ns, st.st_mtime_ns))
    found = [(c.path, c.kind) for c in rootfs_changes(str(upper), [str(lower)])]
    assert found == [("/etc", C), ("/etc/passwd", C), ("/usr", C), ("/usr/bin", C), ("/usr/bin/nf", A)]

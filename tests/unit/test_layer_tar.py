"""tar_directory: the tar of a layer (an overlay upper dir, for commit and build) or of a
rootfs (export)."""

import io
import os
import stat
import tarfile

from engine.images import tar_directory
from tests.conftest import racing_tree


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_a_layer_as_docker_writes_it(tmp_path):
    """Files, directories, symlinks, hard links, fifos and xattrs as they are; overlay's
    whiteout (a 0:0 char device) and opaque directory (its xattr) as AUFS whiteouts."""
    up = tmp_path / "upper"
    (up / "dir" / "sub").mkdir(parents=True)
    (up / "dir" / "f").write_text("content")
    os.chmod(up / "dir" / "f", 0o640)
    os.link(up / "dir" / "f", up / "dir" / "hard")
    os.symlink("../dir/f", up / "dir" / "link")
    os.mkfifo(up / "fifo")
    os.mknod(up / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    os.setxattr(up / "dir" / "sub", "trusted.overlay.opaque", b"y")
    os.setxattr(up / "dir" / "f", "user.note", b"kept")
    out = io.BytesIO()
    tar_directory(str(up), out, overlay=True)
    got = members(out.getvalue())
    assert set(got) == {"dir", "dir/f", "dir/hard", "dir/link", "dir/sub", "dir/sub/.wh..wh..opq",
                        "fifo", ".wh.gone"}
    assert got["dir/f"].isreg() and got["dir/f"].mode == 0o640 and got["dir/f"].size == 7
    assert got["dir/f"].pax_headers.get("SCHILY.xattr.user.note") == "kept"
    assert got["dir/hard"].islnk() and got["dir/hard"].linkname == "dir/f"
    assert got["dir/link"].issym() and got["dir/link"].linkname == "../dir/f"
    assert got["fifo"].isfifo() and got[".wh.gone"].isreg()
    assert not any("trusted.overlay" in k for m in got.values() for k in m.pax_headers)
    out = io.BytesIO()
    tar_directory(str(up), out, overlay=False)  # export: the tree as it is
    got = members(out.getvalue())
    assert got["gone"].ischr() and "dir/sub/.wh..wh..opq" not in got


def test_a_directory_swapped_for_a_symlink_is_not_read_through(tmp_path, monkeypatch):
    """A running container's process swaps a directory for a symlink to a host directory
    right before we list it (commit and export read live containers): the tar holds what
    the directory held, never the host's files."""
    root, swapped = racing_tree(tmp_path, monkeypatch, "listdir")
    out = io.BytesIO()
    tar_directory(str(root), out, overlay=False)
    assert swapped
    got = members(out.getvalue())
    assert "dir/secret" not in got and b"host secret" not in out.getvalue()
    assert got["dir/mine"].size == 4


def test_a_missing_root_is_an_empty_tar(tmp_path):
    out = io.BytesIO()
    tar_directory(str(tmp_path / "nope"), out)
    assert members(out.getvalue()) == {}

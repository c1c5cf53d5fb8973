"""Sizes on disk as dockerd measures them (df, container and volume prune)."""

import os

from engine.disk import directory_size, walk_handles
from tests.conftest import racing_tree


def test_directory_size_counts_a_hard_linked_file_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 10)
    os.link(tmp_path / "a", tmp_path / "sub" / "a-again")
    os.symlink("a", tmp_path / "link")  # a symlink counts its own size, not its target's
    assert directory_size(str(tmp_path)) == 110 + os.lstat(tmp_path / "link").st_size
    assert directory_size(str(tmp_path / "missing")) == 0


def test_a_directory_swapped_for_a_symlink_mid_walk_is_not_entered(tmp_path, monkeypatch):
    """What a container can do to its upper dir while `docker diff`, `ps --size` or
    `system df` walk it: swap a directory for a symlink to a host directory just as the
    walk is about to list it. The walk lists the directory it had opened, never the host's."""
    root, swapped = racing_tree(tmp_path, monkeypatch, "scandir")
    seen = [name for _root, _dirs, files, _at in walk_handles(str(root)) for name in files]
    assert swapped and seen == ["mine"]
    assert directory_size(str(root)) == 4  # dir.moved/mine; the link to the host dir is not entered

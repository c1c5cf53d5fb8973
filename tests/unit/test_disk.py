"""Sizes on disk as dockerd measures them (df, container and volume prune)."""

import os

from engine.disk import directory_size


def test_directory_size_counts_a_hard_linked_file_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 10)
    os.link(tmp_path / "a", tmp_path / "sub" / "a-again")
    os.symlink("a", tmp_path / "link")  # a symlink counts its own size, not its target's
    assert directory_size(str(tmp_path)) == 110 + os.lstat(tmp_path / "link").st_size
    assert directory_size(str(tmp_path / "missing")) == 0

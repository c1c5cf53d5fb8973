"""engine.runtime.remove_tree: rm -rf in C, never following symlinks."""
import os

from engine.runtime import remove_tree


def test_removes_everything_below_and_nothing_a_symlink_points_to(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "f").write_text("y")
    (tree / "a" / "link").symlink_to(outside)
    (tree / "dangling").symlink_to(tmp_path / "nowhere")
    locked = tree / "a" / "b" / "locked"
    locked.mkdir()
    (locked / "g").write_text("z")
    os.chmod(locked, 0)  # as overlay's work/work: root removes it anyway
    remove_tree(str(tree))
    assert not tree.exists()
    assert (outside / "keep").read_text() == "x"


def test_missing_path_is_not_an_error_and_a_symlink_is_removed_not_followed(tmp_path):
    remove_tree(str(tmp_path / "missing"))
    target = tmp_path / "dir"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    remove_tree(str(link))
    assert not os.path.lexists(link) and target.is_dir()

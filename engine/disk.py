"""Sizes on disk as dockerd measures them (its pkg/directory.Size), shared by container and
volume prune and /system/df. Blocking: call from a worker thread."""

from __future__ import annotations

import os

__all__ = ["directory_size", "walk_handles"]


def walk_handles(top: str):
    """os.fwalk(top) (each directory as a handle, no symlink followed, so nothing a
    container does to its directories meanwhile can lead outside them), a missing `top`
    being an empty tree as for os.walk."""
    try:
        yield from os.fwalk(top)
    except FileNotFoundError:
        if os.path.lexists(top):
            raise


def directory_size(path: str) -> int:
    """Bytes of the files under `path`, a file with several hard links counted once.
    Walked through handles (walk_handles): a container's process swapping one of its
    directories for a symlink cannot send the walk into the host (its /, say)."""
    total, seen = 0, set()
    for _root, _dirs, files, at in walk_handles(path):
        for name in files:
            try:
                st = os.stat(name, dir_fd=at, follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total

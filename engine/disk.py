"""Sizes on disk as dockerd measures them (its pkg/directory.Size), shared by container and
volume prune and /system/df. Blocking: call from a worker thread."""

from __future__ import annotations

import os

__all__ = ["directory_size"]


def directory_size(path: str) -> int:
    """Bytes of the files under `path`, a file with several hard links counted once."""
    total, seen = 0, set()
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total

"""`docker diff`: what a container changed in its filesystem, read from its overlay upper
directory against the image's layers (dockerd's overlay2 rules: a whiteout is a delete, an
opaque directory that hid a lower one is a delete, a path present below is a modification,
anything else an addition; every directory above a change counts as modified, as dockerd's
naive diff, the one it picks on kernels with overlay's redirect_dir, reports it).

The mount targets the engine itself makes (/etc/hosts, /proc, …) are not changes: they are
in the image's init layer (engine/containers/initlayer.py), as in dockerd's; containers made
before there was one have them in their upper dir, hence the filter."""

from __future__ import annotations

import enum
import os
import stat

import attrs

from engine.containers.initlayer import ENTRIES as INIT_ENTRIES
from engine.disk import walk_handles

# The init layer's entries: made by the engine for every container, never shown by `docker diff`.
INIT_PATHS = frozenset(path for path, _kind in INIT_ENTRIES)
INIT_PARENTS = frozenset(os.path.dirname(path) for path in INIT_PATHS) - {"/"}


class ChangeKind(enum.IntEnum):
    MODIFIED = 0
    ADDED = 1
    DELETED = 2


@attrs.frozen
class Change:
    path: str
    kind: ChangeKind


def _opaque(name: str, at: int) -> bool:
    """Whether directory `name` of the directory `at` holds is marked opaque by overlayfs."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=at)
    except OSError:
        return False
    try:
        for xattr in ("trusted.overlay.opaque", "user.overlay.opaque"):
            try:
                if os.getxattr(fd, xattr) == b"y":
                    return True
            except OSError:
                continue
        return False
    finally:
        os.close(fd)


def _below(lowers: list[str], path: str) -> os.stat_result | None:
    for lower in lowers:
        try:
            return os.lstat(os.path.join(lower, path.lstrip("/")))
        except OSError:
            continue
    return None


def rootfs_changes(upper: str, lowers: list[str]) -> list[Change]:
    """Changes in `upper` over `lowers` (top layer first), sorted by path. Sync: run it in
    a worker thread. The upper dir is walked through directory handles (walk_handles): a
    container swapping one of its directories for a symlink cannot send us into the host."""
    changes: dict[str, ChangeKind] = {}
    for root, dirs, files, at in walk_handles(upper):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = "/" + os.path.relpath(os.path.join(root, name), upper)
            try:
                st = os.stat(name, dir_fd=at, follow_symlinks=False)
            except FileNotFoundError:
                continue
            lower = _below(lowers, path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                kind = ChangeKind.DELETED
            elif stat.S_ISDIR(st.st_mode) and lower is not None and _opaque(name, at):
                kind = ChangeKind.DELETED
            elif lower is None:
                kind = ChangeKind.ADDED
            else:
                kind = ChangeKind.MODIFIED
                if (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lower.st_mode) and st.st_size == lower.st_size
                        and st.st_mode == lower.st_mode and st.st_mtime_ns // 1000 == lower.st_mtime_ns // 1000):
                    continue  # the same directory: only its contents may have changed
            changes[path] = kind
            parent = os.path.dirname(path)
            while parent != "/" and parent not in changes:  # dockerd's (naive) diff: every
                changes[parent] = ChangeKind.MODIFIED  # directory holding a change changed
                parent = os.path.dirname(parent)
    for path in INIT_PATHS:
        changes.pop(path, None)
    for parent in INIT_PARENTS:
        # made or touched only because the engine made its mount targets there
        if parent in changes and not any(p.startswith(parent + "/") for p in changes):
            del changes[parent]
    return [Change(path, kind) for path, kind in sorted(changes.items())]

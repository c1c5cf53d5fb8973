"""`docker diff`: what a container changed in its filesystem, read from its overlay upper
directory against the image's layers (dockerd's overlay2 rules: a whiteout is a delete, an
opaque directory that hid a lower one is a delete, a path present below is a modification,
anything else an addition; the parent of an added or deleted path counts as modified).

The mount targets the engine itself makes (/etc/hosts, /proc, …) are not changes: dockerd
keeps them in a separate init layer."""

from __future__ import annotations

import enum
import os
import stat

import attrs

# dockerd's init layer: made by the engine for every container, never shown by `docker diff`.
INIT_PATHS = frozenset({
    "/dev/pts", "/dev/shm", "/proc", "/sys", "/.dockerenv", "/etc/resolv.conf", "/etc/hosts",
    "/etc/hostname", "/dev/console", "/etc/mtab",
})
INIT_PARENTS = frozenset({"/dev", "/etc"})


class ChangeKind(enum.IntEnum):
    MODIFIED = 0
    ADDED = 1
    DELETED = 2


@attrs.frozen
class Change:
    path: str
    kind: ChangeKind


def _opaque(path: str) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _below(lowers: list[str], path: str) -> os.stat_result | None:
    for lower in lowers:
        try:
            return os.lstat(os.path.join(lower, path.lstrip("/")))
        except OSError:
            continue
    return None


def rootfs_changes(upper: str, lowers: list[str]) -> list[Change]:
    """Changes in `upper` over `lowers` (top layer first), sorted by path. Sync: run it in
    a worker thread."""
    changes: dict[str, ChangeKind] = {}
    changed_dirs: set[str] = set()
    for root, dirs, files in os.walk(upper):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            full = os.path.join(root, name)
            path = "/" + os.path.relpath(full, upper)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            lower = _below(lowers, path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                kind = ChangeKind.DELETED
            elif stat.S_ISDIR(st.st_mode) and lower is not None and _opaque(full):
                kind = ChangeKind.DELETED
            elif lower is None:
                kind = ChangeKind.ADDED
            else:
                kind = ChangeKind.MODIFIED
                if (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lower.st_mode) and st.st_size == lower.st_size
                        and st.st_mode == lower.st_mode and st.st_mtime_ns // 1000 == lower.st_mtime_ns // 1000):
                    continue  # the same directory: only its contents may have changed
            if stat.S_ISDIR(st.st_mode):
                changed_dirs.add(path)
            changes[path] = kind
            parent = os.path.dirname(path)
            if kind is not ChangeKind.MODIFIED and parent != "/" and parent not in changed_dirs:
                changes[parent] = ChangeKind.MODIFIED
                changed_dirs.add(parent)
    for path in INIT_PATHS:
        changes.pop(path, None)
    for parent in INIT_PARENTS:
        # made or touched only because the engine made its mount targets there
        if parent in changes and not any(p.startswith(parent + "/") for p in changes):
            del changes[parent]
    return [Change(path, kind) for path, kind in sorted(changes.items())]

"""Paths as a container sees them, resolved on the host (Docker's FollowSymlinkInScope):
symlinks are read and interpreted inside `root` (an absolute target restarts at it, `..`
never climbs above it), so the result is always under `root`.

Path based: for trees no process changes meanwhile (a build step's rootfs, an image's
content before its container starts). A live container's files go through handles
instead (engine/containers/archive.py, engine/disk.py's walk_handles)."""

from __future__ import annotations

import os

from engine.errors import InvalidParameter

__all__ = ["resolve_in_root"]

MAX_SYMLINKS = 255


def resolve_in_root(root: str, path: str, *, follow_last: bool = True) -> str:
    """`path` (absolute or relative to root) as a host path under `root`; a missing
    component and what follows it are taken as they are. InvalidParameter after
    MAX_SYMLINKS links."""
    root = os.path.abspath(root)
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    current = root
    links = 0
    i = 0
    while i < len(parts):
        part = parts[i]
        i += 1
        if part == "..":
            current = os.path.dirname(current) if current != root else root
            if not (current + "/").startswith(root + "/"):
                current = root
            continue
        candidate = os.path.join(current, part)
        last = i == len(parts)
        if os.path.islink(candidate) and (follow_last or not last):
            links += 1
            if links > MAX_SYMLINKS:
                raise InvalidParameter(f"too many levels of symbolic links: {path}")
            target = os.readlink(candidate)
            rest = parts[i:]
            if target.startswith("/"):
                current = root
            parts = [p for p in target.split("/") if p not in ("", ".")] + rest
            i = 0
            continue
        current = candidate
    return current

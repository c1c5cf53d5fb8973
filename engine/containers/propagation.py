"""Bind-mount propagation (`-v /src:/dst:rshared`): dockerd only accepts shared propagation
for a source on a shared mount (and slave for a shared or slave one), and says which mount
is in the way."""

from __future__ import annotations

import os

from engine import errors

PROPAGATIONS = ("rprivate", "private", "rslave", "slave", "rshared", "shared")
DEFAULT = "rprivate"


def of_bind(bind: str) -> str:
    """The propagation named in a "src:dst:opts" bind, rprivate when none is."""
    parts = bind.split(":")
    options = parts[2].split(",") if len(parts) == 3 else []
    return next((o for o in options if o in PROPAGATIONS), DEFAULT)


def mount_of(path: str, mountinfo: str) -> tuple[str, list[str]]:
    """(mount point, optional fields) of the mount holding path: the longest mount point
    that contains it, the later entry winning when one is mounted over another."""
    best, fields = "/", []
    for line in mountinfo.splitlines():
        parts = line.split()
        if len(parts) < 7 or "-" not in parts:
            continue
        point = parts[4]
        if path == point or path.startswith(point.rstrip("/") + "/"):
            if len(point) >= len(best):
                best, fields = point, parts[6:parts.index("-")]
    return best, fields


def check(source: str, propagation: str, mountinfo: str | None = None) -> None:
    if propagation not in ("shared", "rshared", "slave", "rslave"):
        return
    if mountinfo is None:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    point, fields = mount_of(os.path.realpath(source), mountinfo)
    shared = any(f.startswith("shared:") for f in fields)
    if propagation in ("shared", "rshared") and not shared:
        raise errors.SystemError_(f"path {source} is mounted on {point} but it is not a shared mount")
    if not shared and not any(f.startswith("master:") for f in fields):
        raise errors.SystemError_(f"path {source} is mounted on {point} but it is not a shared or slave mount")

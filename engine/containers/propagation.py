"""Bind-mount propagation (`-v /src:/dst:rshared`): dockerd only accepts shared propagation
for a source on a shared mount (and slave for a shared or slave one), and says which mount
is in the way."""

from __future__ import annotations

import os

import attrs

from engine import errors
from engine.runtime import mountinfo as mount_table

PROPAGATIONS = ("rprivate", "private", "rslave", "slave", "rshared", "shared")
DEFAULT = "rprivate"


def over_root(source: str, root: str) -> bool:
    """Whether `source` is the data root, lies within it or holds it."""
    source, root = os.path.normpath(source), os.path.normpath(root)
    return source == root or root.startswith(source.rstrip("/") + "/") or source.startswith(root + "/")


def for_daemon_root(host, root: str, strict: bool = True):
    """`host` (a HostConfig) with its binds over the data root made rslave when they name no
    propagation (dockerd's validateBindDaemonRoot): the root is a shared mount
    (engine.runtime.dataroot), so such a container's copies of the rootfs overlays come and go
    with them instead of pinning them. A bind there that names another than rslave or rshared
    is refused with dockerd's message (kept as it is when not `strict`: a record of a build
    before this rule, loaded)."""

    def default_for(source: str, named: str) -> str:
        if not source.startswith("/") or not over_root(source, root):
            return ""
        if named in ("", "rslave", "rshared") or not strict:
            return "rslave"
        raise errors.InvalidParameter(
            'invalid mount config: must use either propagation mode "rslave" or "rshared" when mount source is '
            f'within the daemon root, daemon root: "{root}", bind mount source: "{source}", propagation: "{named}"')

    if not host.binds and not host.mounts:
        return host  # most creates: nothing to look at
    binds = tuple(attrs.evolve(b, default_propagation=default_for(b.source, b.named_propagation))
                  for b in host.binds or ())
    mounts = tuple(attrs.evolve(m, default_propagation=default_for(m.source, m.propagation))
                   if (m.type or "bind") == "bind" else m for m in host.mounts or ())
    if binds == tuple(host.binds or ()) and mounts == tuple(host.mounts or ()):
        return host
    return attrs.evolve(host, binds=binds if host.binds is not None else None,
                        mounts=mounts if host.mounts is not None else None)


def mount_of(path: str, mountinfo: str) -> tuple[str, list[str]]:
    return mount_table.mount_of(path, mountinfo)


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

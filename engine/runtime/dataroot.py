"""The daemon's data root as a shared mount, as dockerd sets up its root.

A container that bind-mounts the data root or a directory above it (`-v /:/host`, a monitoring
agent) holds copies of the rootfs overlays mounted there when it starts. With a private root
those copies outlive the containers they belong to: the overlay stays alive in the agent's
namespace over a directory the daemon reuses. Shared, the root's mounts and unmounts reach the
agent's rslave copy (engine.containers.propagation gives such binds rslave), so they come and go
there too. A root on a mount that is shared already (systemd's / is) needs nothing.
"""

from __future__ import annotations

import logging
import os

from engine.runtime import _native, mountinfo

__all__ = ["share", "release"]

log = logging.getLogger(__name__)

MARK = "shared-root"  # in the data root: this daemon bind-mounted it on itself


def share(root: str) -> None:
    point, fields = mountinfo.mount_of(root)
    if any(f.startswith("shared:") for f in fields):
        return  # a shared mount already (ours, from a daemon before this one, or the host's)
    made = point != root
    if made and mountinfo.mount_points(below=root):
        # Mounts of containers a daemon before this one left running: a bind of the root on
        # itself would stack copies over them. Shared from the next start with none.
        log.warning("data root %s is not a shared mount; it is made one at a start with no container running", root)
        return
    _native.make_shared(root, bind_first=made)
    if made:
        with open(os.path.join(root, MARK), "w"):
            pass


def release(root: str) -> None:
    """Undo share() at a stop that leaves nothing mounted under the root (containers kept
    running by live restore keep it)."""
    mark = os.path.join(root, MARK)
    if not os.path.exists(mark) or mountinfo.mount_points(below=root):
        return
    if mountinfo.is_mount_point(root):
        _native.unmount(root)
    os.unlink(mark)

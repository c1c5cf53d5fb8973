"""The init layer: what the engine adds to every container's root file system (mount targets
such as /etc/hosts, /proc and /dev/console, and /.dockerenv), as dockerd's <id>-init layer,
made once per image instead of once per container: a read-only layer of its own between the
image and each container's upper directory.

Without it, an image that lacks /etc/hosts (busybox does) had the container's runtime make
the targets in the container's upper directory at every start: /etc copied up and three
files made (inodes allocated at start, freed at rm), and `docker commit` took them into the
new image. With it, a container that writes nothing leaves its upper directory empty, and
`docker export` shows what dockerd's does (/.dockerenv, /etc/mtab -> /proc/mounts…).

Only what the image lacks is made; a directory made only to hold a new entry (/etc) takes
the mode, owner and times of the image's own. An entry under something that is not a plain
directory in the image (a symlinked /etc) is left to the runtime, which makes it at start,
resolved inside the container as before."""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tempfile

from engine.images import NOT_PLAIN, Image, ImageStore, lookup_in_layers

_DIR, _FILE = "dir", "file"

#: dockerd's list (daemon/initlayer), in its order; a string is a symlink's target.
ENTRIES = (
    ("/dev/pts", _DIR), ("/dev/shm", _DIR), ("/proc", _DIR), ("/sys", _DIR), ("/.dockerenv", _FILE),
    ("/etc/resolv.conf", _FILE), ("/etc/hosts", _FILE), ("/etc/hostname", _FILE),
    ("/dev/console", _FILE), ("/etc/mtab", "/proc/mounts"),
)
DIR_NAME = "init"


class InitLayers:
    """`lower_dirs(image)`: an image's overlay lowerdirs with its init layer on top, made the
    first time it is asked for. Sync (worker threads), safe from several at once: a layer is
    built in `scratch_dir` (which the daemon empties at every start) and renamed into place."""

    def __init__(self, images: ImageStore, scratch_dir: str) -> None:
        self.images = images
        self.scratch_dir = scratch_dir

    def lower_dirs(self, image: Image) -> list[str]:
        path, layers = self._locate(image)
        if path is None:  # no layers: nothing to put the targets over, the runtime makes them
            return layers
        if not os.path.isdir(path):
            self._build(path, layers)
        return [path, *layers]

    def ready(self, image: Image) -> bool:
        """lower_dirs(image) has nothing to make (one stat)."""
        path = self.images.derived_dir(image, DIR_NAME)
        return path is None or os.path.isdir(path)

    def ready_lower_dirs(self, image: Image) -> list[str] | None:
        """lower_dirs(image) when it has nothing to make, else None (one stat)."""
        path, layers = self._locate(image)
        if path is None:
            return layers
        return [path, *layers] if os.path.isdir(path) else None

    def existing_lower_dirs(self, image: Image) -> list[str]:
        """lower_dirs without making anything (inspect, diff)."""
        path, layers = self._locate(image)
        return [path, *layers] if path is not None and os.path.isdir(path) else layers

    def _locate(self, image: Image) -> tuple[str | None, list[str]]:
        """(where the image's init layer is or goes, the image's layers)."""
        return self.images.derived_dir(image, DIR_NAME), self.images.layer_dirs(image)

    def _build(self, path: str, layers: list[str]) -> None:
        os.makedirs(self.scratch_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="init-", dir=self.scratch_dir)
        try:
            os.chmod(tmp, 0o755)
            populate(tmp, layers)
            try:
                os.rename(tmp, path)
            except OSError:
                if not os.path.isdir(path):  # not a lost race with another builder
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def populate(root: str, layers: list[str]) -> None:
    """Make in `root` the ENTRIES the merged view of `layers` lacks."""
    parents: dict[str, os.stat_result | None] = {}  # directories made here → the image's own
    for path, kind in ENTRIES:
        if lookup_in_layers(layers, path) is not None:
            continue
        parent = posixpath.dirname(path)
        if parent != "/" and parent not in parents:
            below = lookup_in_layers(layers, parent)
            if below is NOT_PLAIN or (below is not None and not stat.S_ISDIR(below.st_mode)):
                continue
            _make_dir(os.path.join(root, parent[1:]), below)
            parents[parent] = below
        target = os.path.join(root, path[1:])
        if kind == _DIR:
            _make_dir(target, None)
        elif kind == _FILE:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
            try:
                os.fchmod(fd, 0o755)  # whatever the daemon's umask
            finally:
                os.close(fd)
        else:
            os.symlink(kind, target)
    # Times last: making entries inside the directories changed theirs.
    for parent, below in parents.items():
        if below is not None:
            os.utime(os.path.join(root, parent[1:]), ns=(below.st_atime_ns, below.st_mtime_ns), follow_symlinks=False)


def _make_dir(path: str, like: os.stat_result | None) -> None:
    """A directory as `like` (the image's: mode and owner), else root's 0755."""
    os.mkdir(path)
    os.chmod(path, stat.S_IMODE(like.st_mode) if like is not None else 0o755)
    if like is not None:
        os.chown(path, like.st_uid, like.st_gid, follow_symlinks=False)

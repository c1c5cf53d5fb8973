"""Layers for the builder: an overlay workspace over an image's layers (COPY, ADD and WORKDIR
write into it), and the commit of an upper directory as a new layer (RUN's container too).
Runtime mount points the engine adds to a container (/etc/hosts…) are not part of a layer."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat

import trio

from engine.images import tar_directory
from engine.runtime import mount_overlay, unmount

# Bind-mount targets the runtime creates in a container's rootfs: never image content.
_RUNTIME_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")
_RUNTIME_DIRS = ("etc", "dev", "proc", "sys")


class Workspace:
    """`async with Workspace(images, image, scratch_dir) as ws:` ws.rootfs is a writable
    overlay of the image (an empty one for FROM scratch), ws.upper the changes made."""

    def __init__(self, images, image, directory: str):
        self.images = images
        self.image = image
        self.directory = directory
        self.upper = os.path.join(directory, "upper")
        self.rootfs = os.path.join(directory, "rootfs")
        self._mounted = False

    def _mount(self) -> None:
        work = os.path.join(self.directory, "work")
        empty = os.path.join(self.directory, "empty")
        for d in (self.upper, work, self.rootfs, empty):
            os.makedirs(d, exist_ok=True)
        lowers = self.images.layer_dirs(self.image) if self.image is not None else []
        mount_overlay(lowers or [empty], self.upper, work, self.rootfs)
        self._mounted = True

    def _unmount(self) -> None:
        if self._mounted:
            unmount(self.rootfs)
            self._mounted = False

    async def __aenter__(self) -> "Workspace":
        try:
            await trio.to_thread.run_sync(self._mount)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.close)
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.close)

    def close(self) -> None:
        try:
            self._unmount()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def _lower_stat(images, image, rel: str):
    if image is None:
        return None
    for layer in images.layer_dirs(image):
        try:
            return os.lstat(os.path.join(layer, rel))
        except FileNotFoundError:
            continue
    return None


def drop_runtime_artifacts(images, image, upper: str) -> None:
    """Remove from a container's upper dir what the runtime put there (empty mount-point
    files, and directories created or copied up only to hold them)."""
    for rel in _RUNTIME_FILES:
        path = os.path.join(upper, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(path)
    for rel in _RUNTIME_DIRS:
        path = os.path.join(upper, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) or os.listdir(path):
            continue
        with contextlib.suppress(OSError):
            if os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                continue
        lower = _lower_stat(images, image, rel)
        if lower is None and rel == "etc":
            os.rmdir(path)  # made only to hold the mount points
        elif lower is not None and stat.S_ISDIR(lower.st_mode) and (
                lower.st_mode, lower.st_uid, lower.st_gid) == (st.st_mode, st.st_uid, st.st_gid):
            os.rmdir(path)  # copied up unchanged
        elif lower is None and rel in ("dev", "proc", "sys"):
            os.rmdir(path)


def commit_upper(images, parent_image, upper: str, tmp_dir: str) -> str | None:
    """The upper dir as a layer on top of parent_image. Returns its diff id, or None when
    nothing changed (Docker records an empty layer in the history only)."""
    if not os.path.isdir(upper) or not os.listdir(upper):
        return None
    os.makedirs(tmp_dir, exist_ok=True)
    tar_path = os.path.join(tmp_dir, f"layer-{os.urandom(6).hex()}.tar")
    try:
        with open(tar_path, "wb") as out:
            tar_directory(upper, out, overlay=True)
        parent_chain = parent_image.chain_ids[-1] if parent_image is not None and parent_image.chain_ids else None
        diff_id, _chain = images.commit_layer(tar_path, parent_chain)
        return diff_id
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tar_path)

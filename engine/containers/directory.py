"""A container's directory on the data root (ContainerManager's, mixed into it): made at
create (a removed container's emptied directory reused when the reclaimer holds one: its
files written over), its rootfs mounted while a run or a `docker cp` needs it (refcounted),
moved into <data_root>/tmp at `rm` for the reclaimer (engine/containers/reclaim.py)."""

from __future__ import annotations

import os
import shutil

import trio

from engine.containers import config as cfg
from engine.containers.cgroupparent import cgroup_of
from engine.containers.model import Container
from engine.containers.reclaim import reclaim_now
from engine.runtime import mount_overlay, unmount


class ContainerDirectory:
    """The directory half of ContainerManager: uses its config, images, reclaimer, init
    layers and supervisors."""

    def _create_files_and_init_layer(self, container: Container, image) -> None:
        self._init_layers.lower_dirs(image)  # shared: it stays if the container's files fail
        self._create_files(container)

    def _create_files(self, container: Container, spare: str | None = None) -> None:
        """All or nothing: the directory is removed if any step fails. `spare`: a spare
        directory taken already."""
        try:
            reused = self._reuse_spare(container.directory, spare)
            if not reused:
                os.makedirs(container.directory)  # a new id: nothing there yet
                os.mkdir(container.work_dir)
                os.mkdir(container.rootfs)
            try:
                os.mkdir(container.upper_dir)
            except FileExistsError:
                if not reused:
                    raise
                os.utime(container.upper_dir, follow_symlinks=False)  # kept (empty): now, as a new one
            host = container.host_config
            write = _write_over if reused else _write_new
            for path, content in (
                (container.hostname_path, container.config.hostname + "\n"),
                (container.hosts_path, cfg.hosts_file(container.config.hostname, host)),
                (container.resolv_conf_path, cfg.resolv_conf(host, daemon=self.config)),
            ):
                write(path, content.encode())
            if host.shares_host_network:
                shutil.copyfile("/etc/hosts", container.hosts_path)
            container.save()
        except BaseException:
            shutil.rmtree(container.directory, ignore_errors=True)
            raise

    def _reuse_spare(self, directory: str, spare: str | None = None) -> bool:
        """Take a removed container's emptied directory (its empty work dir and mount point, the
        record's spare file, its upper dir and /etc files when untouched:
        engine/containers/reclaim.py) as `directory`, if the reclaimer holds one: up to nine
        inodes neither allocated here nor freed by the reclaimer."""
        while (spare := spare or self._reclaimer.take_spare()) is not None:
            try:
                os.rename(spare, directory)
                return True
            except OSError:
                reclaim_now("spare", spare)
                spare = None
        return False

    # --- the rootfs mount ---------------------------------------------------------------------
    def _mount_rootfs(self, container: Container) -> None:
        """Refcounted: a running container holds one, `docker cp` on a stopped one another.
        Runs in worker threads, so the count is guarded by a lock."""
        sup = self._supervisors[container.id]
        with sup.mount_lock:
            if sup.mount_refs == 0:
                sup.host_clean = False
                image = self.images.resolve(container.image_id)
                mount_overlay(self._init_layers.lower_dirs(image), container.upper_dir, container.work_dir,
                              container.rootfs)
            sup.mount_refs += 1

    def _unmount_rootfs(self, container: Container) -> None:
        sup = self._supervisors[container.id]
        with sup.mount_lock:
            sup.mount_refs = max(sup.mount_refs - 1, 0)
            if sup.mount_refs == 0:
                _unmount_quiet(container.rootfs)

    def rootfs_mounted(self, container: Container) -> "RootfsRef":
        """Async context manager: the container's rootfs is mounted inside."""
        return RootfsRef(self, container)

    # --- rm ------------------------------------------------------------------------------------
    def _detach_files(self, container: Container) -> str | None:
        """What `rm` does before it answers: unmount the rootfs (a `docker cp` may hold it),
        remove the (already empty) cgroups, move the directory into <data_root>/tmp, which every
        daemon start empties (with what is mounted there). Deleting the files, a third of
        create→start→wait→rm, follows in the background (engine/containers/reclaim.py). Returns the moved
        directory, or None when it could not move and was removed in place."""
        _unmount_quiet(container.rootfs)
        cgroup_of(container, self.config.cgroup_parent).destroy()  # empty once the run ended: cheap
        return self._move_to_trash(container)

    def _move_to_trash(self, container: Container) -> str | None:
        """Move the directory into <data_root>/tmp for the Reclaimer. Returns the moved
        directory, or None when it could not move and was removed in place."""
        trash = self._trash_path(container)
        try:
            os.makedirs(os.path.dirname(trash), exist_ok=True)
            os.rename(container.directory, trash)
            return trash
        except FileNotFoundError:
            return None
        except OSError:  # another file system (or a leftover of the same name): in place
            shutil.rmtree(container.directory, ignore_errors=True)
            return None

    def _trash_path(self, container: Container) -> str:
        return os.path.join(self.config.data_root, "tmp", f"removed-{container.id}")


class RootfsRef:
    """The rootfs held mounted for a block (`docker cp`, export, commit)."""

    def __init__(self, manager: ContainerDirectory, container: Container) -> None:
        self.manager, self.container = manager, container

    async def __aenter__(self) -> str:
        await trio.to_thread.run_sync(self.manager._mount_rootfs, self.container)
        return self.container.rootfs

    async def __aexit__(self, *exc) -> None:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.manager._unmount_rootfs, self.container)


def _write_new(path: str, data: bytes) -> None:
    """A small new file in three syscalls (open() in text mode takes seven)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _write_over(path: str, data: bytes) -> None:
    """A small file in a reused directory (engine/containers/reclaim.py): written over what
    the reclaimer kept (checked untouched), else new; its times are now's either way."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))  # no O_TRUNC: a truncation to 0 forces writeback on ext4
        os.utime(fd)
    finally:
        os.close(fd)


def _unmount_quiet(path: str) -> None:
    try:
        unmount(path)
    except OSError:
        pass

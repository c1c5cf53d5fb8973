"""VolumeManager: volume records, drivers (entry points + Docker volume plugins), and the
volume mount points of every container.

    create → Volume record (+ driver.create)      at `volume create` or a container's first use
    prepare(container) at container create        mount points from Binds / Mounts / Config.Volumes;
                                                  named volumes created on first use, anonymous ones
                                                  get a random 64-hex name
    mount(container) before spawn                 driver.mount per point → host paths (event mount)
    copy_up(rootfs, points) after the rootfs is   a new, empty volume gets the image's content at
        mounted (sync, in a thread)               the mount path (Docker's CopyData)
    unmount(container) when the run ends          driver.unmount (event unmount)
    forget(container, remove_anonymous) at rm     `rm -v` / AutoRemove remove anonymous volumes

A volume referenced by any container (running or not) cannot be removed (409). Records live
in <data_root>/volumes/_records/<name>.json, mount points in _containers/<id>.json; the local
driver's data in <data_root>/volumes/<name>/_data (names never start with "_")."""

from __future__ import annotations

import logging
import os
import posixpath
import secrets
import subprocess
import time

import attrs
import trio

from engine import errors
from engine.filters import PruneFilters
from engine.scope import resolve_in_root
from engine.volumes.driver import load_drivers
from engine.volumes.model import (
    ANONYMOUS_LABEL, MountPoint, PruneReport, Volume, VolumeStatus, load_mounts, rfc3339, save_mounts, validate_name,
)

log = logging.getLogger(__name__)

class VolumeManager:
    def __init__(self, config, events) -> None:
        self.config = config
        self.events = events
        self.root = os.path.join(config.data_root, "volumes")
        self._records_dir = os.path.join(self.root, "_records")
        self._mounts_dir = os.path.join(self.root, "_containers")
        self._volumes: dict[str, Volume] = {}
        self._mounts: dict[str, list[MountPoint]] = {}  # container id → its volume mount points
        self._active: dict[str, list[MountPoint]] = {}  # container id → points mounted now
        self._drivers: dict[str, object] | None = None
        self._lock = trio.Lock()
        self._loaded = False

    # --- service ------------------------------------------------------------------------------
    async def load(self, container_ids: set[str] | None = None) -> None:
        """At daemon start: records, drivers, stale state of a killed daemon."""
        await trio.to_thread.run_sync(self._recover, container_ids)
        for name, driver in self.drivers.items():
            restore = getattr(driver, "restore", None)
            if restore is not None:
                try:
                    await restore()
                except Exception as exc:
                    log.warning("restoring volume driver %s failed: %s", name, exc)
        self._loaded = True

    def _recover(self, container_ids: set[str] | None) -> None:
        for d in (self.root, self._records_dir, self._mounts_dir):
            os.makedirs(d, mode=0o701, exist_ok=True)
        self._volumes.clear()
        for entry in os.listdir(self._records_dir):
            if not entry.endswith(".json"):
                continue
            path = os.path.join(self._records_dir, entry)
            try:
                volume = Volume.load(path)
            except (OSError, ValueError, TypeError):
                log.warning("removing unreadable volume record %s", entry)
                os.unlink(path)
                continue
            self._volumes[volume.name] = volume
        # Local volumes made by hand or by an older daemon (a dir with _data, no record).
        for entry in os.listdir(self.root):
            if (not entry.startswith("_") and entry not in self._volumes
                    and os.path.isdir(os.path.join(self.root, entry, "_data"))):
                volume = Volume(name=entry, driver="local", created_at=rfc3339(os.stat(os.path.join(self.root, entry)).st_mtime))
                volume.save(self._records_dir)
                self._volumes[entry] = volume
        self._mounts.clear()
        for entry in os.listdir(self._mounts_dir):
            cid = entry.removesuffix(".json")
            path = os.path.join(self._mounts_dir, entry)
            if container_ids is not None and cid not in container_ids:
                os.unlink(path)
                continue
            try:
                points = load_mounts(path)
            except (OSError, ValueError, TypeError):
                points = []
            if points:
                self._mounts[cid] = points
            else:  # nothing to keep (forget only removes files of containers with points)
                os.unlink(path)

    async def shutdown(self) -> None:
        """After every container has stopped: unmount what is left, release the drivers."""
        for cid in list(self._active):
            await self.unmount(cid)
        for name, driver in (self._drivers or {}).items():
            release = getattr(driver, "release", None)
            if release is not None:
                try:
                    await release()
                except Exception as exc:
                    log.warning("releasing volume driver %s failed: %s", name, exc)

    @property
    def drivers(self) -> dict[str, object]:
        if self._drivers is None:
            self._drivers = load_drivers(self)
        return self._drivers

    def driver(self, name: str):
        name = name or "local"
        driver = self.drivers.get(name)
        if driver is None:
            from engine.plugins import find_plugin
            from engine.volumes.remote import RemoteVolumeDriver

            address = find_plugin(name, getattr(self.config, "plugin_dirs", None))
            if address is None:
                raise errors.NotFound(f'error looking up volume plugin {name}: plugin "{name}" not found')
            driver = RemoteVolumeDriver(self, name, address)
            self.drivers[name] = driver
        return driver

    def statistics(self) -> dict:
        return {"volumes": len(self._volumes), "containers": len(self._mounts),
                "mounted": sum(len(p) for p in self._active.values())}

    # --- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> Volume:
        volume = self._volumes.get(name)
        if volume is None:
            raise errors.NotFound(f"get {name}: no such volume")
        return volume

    def all(self) -> list[Volume]:
        return list(self._volumes.values())

    def users(self, name: str) -> list[str]:
        """Ids of the containers that reference the volume (running or not)."""
        return [cid for cid, points in self._mounts.items() if any(p.name == name for p in points)]

    def container_mounts(self, container_id: str) -> list[MountPoint]:
        return list(self._mounts.get(container_id, []))

    async def status(self, volume: Volume) -> VolumeStatus:
        """Where the volume is on the host and what its driver says of it (a driver that
        cannot be asked gives an error, not a failure: inspect and list still answer)."""
        try:
            driver = self.driver(volume.driver)
            if volume.driver == "local":
                return VolumeStatus(mountpoint=await driver.path(volume.name))
            info = await driver.get(volume.name) or {}  # the volume plugin protocol's Volume
            return VolumeStatus(mountpoint=info.get("Mountpoint") or "", status=info.get("Status") or None)
        except errors.EngineError as exc:
            return VolumeStatus(error=exc.message)

    # --- create / remove ----------------------------------------------------------------------
    async def create(self, name: str = "", driver: str = "", options: dict | None = None,
                     labels: dict | None = None) -> Volume:
        async with self._lock:
            volume, _ = await self._ensure(name, driver or "local", options or {}, labels or {})
            return volume

    async def _ensure(self, name: str, driver_name: str, options: dict, labels: dict,
                      anonymous: bool = False) -> tuple[Volume, bool]:
        """(volume, created now); `driver_name` "" takes an existing volume's driver, else local.
        Caller holds the lock."""
        if not name:
            name, anonymous = secrets.token_hex(32), anonymous or False
        validate_name(name)
        existing = self._volumes.get(name)
        if existing is not None:
            if driver_name and existing.driver != driver_name:
                raise errors.Conflict(
                    f"create {name}: a volume with the name {name} already exists with driver "
                    f'"{existing.driver}"; requested driver "{driver_name}"')
            return existing, False
        for key in (options or {}):
            if not isinstance(options[key], str):
                raise errors.InvalidParameter(f"create {name}: option {key} must be a string")
        driver_name = driver_name or "local"
        try:  # dockerd names the volume before what its driver said
            driver = self.driver(driver_name)
            await driver.create(name, dict(options))
        except errors.EngineError as exc:
            raise type(exc)(f"create {name}: {exc.message}") from None
        if anonymous:
            labels = {**labels, ANONYMOUS_LABEL: ""}
        volume = Volume(name=name, driver=driver_name, created_at=rfc3339(time.time()), labels=dict(labels),
                        options=dict(options), anonymous=anonymous)
        try:
            await trio.to_thread.run_sync(self._save_volume, volume)
        except BaseException:
            with trio.CancelScope(shield=True):
                await driver.remove(name)
            raise
        self._volumes[name] = volume
        self.events.publish("volume", "create", name, {"driver": driver_name})
        return volume, True

    def _save_volume(self, volume: Volume) -> None:
        os.makedirs(self._records_dir, mode=0o701, exist_ok=True)
        volume.save(self._records_dir)

    async def remove(self, name: str, force: bool = False) -> None:
        async with self._lock:
            volume = self._volumes.get(name)
            if volume is None:
                if force:
                    return
                raise errors.NotFound(f"get {name}: no such volume")
            await self._remove(volume, force)

    async def _remove(self, volume: Volume, force: bool = False) -> None:
        users = self.users(volume.name)
        if users:
            raise errors.Conflict(f"remove {volume.name}: volume is in use - [{' '.join(users)}]")
        try:
            await self.driver(volume.driver).remove(volume.name)
        except errors.EngineError:
            if not force:
                raise
        path = os.path.join(self._records_dir, volume.name + ".json")
        await trio.to_thread.run_sync(lambda: os.path.exists(path) and os.unlink(path))
        self._volumes.pop(volume.name, None)
        self.events.publish("volume", "destroy", volume.name, {"driver": volume.driver})

    async def prune(self, selected: PruneFilters = PruneFilters()) -> PruneReport:
        """Remove the volumes no container references that the label / label! filters select.
        As dockerd, those created with driver options (a tmpfs, an NFS share: `--opt`) are
        left: removing them reclaims nothing here."""
        deleted, reclaimed = [], 0
        async with self._lock:
            for volume in list(self._volumes.values()):
                if volume.options or self.users(volume.name) or not selected.selects(0, volume.labels):
                    continue
                size = 0
                driver = self.drivers.get(volume.driver)
                if hasattr(driver, "usage"):
                    size = await trio.to_thread.run_sync(driver.usage, volume.name)
                try:
                    await self._remove(volume)
                except errors.EngineError as exc:
                    log.warning("prune: removing volume %s failed: %s", volume.name, exc)
                    continue
                deleted.append(volume.name)
                reclaimed += size
        self.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return PruneReport(tuple(deleted), reclaimed)

    # --- containers ---------------------------------------------------------------------------
    async def prepare(self, container_id: str, config, host_config, inherited=()) -> list[MountPoint]:
        """At container create: its volume mount points, creating volumes on first use.
        `config`, `host_config`: the container's spec (engine.containers.ContainerConfig,
        HostConfig); `inherited`: copies of other containers' points (--volumes-from), at
        destinations the container's own mounts leave free."""
        default_driver = host_config.volume_driver  # "": an existing volume's, or local
        wanted: list[tuple[MountPoint, dict, dict]] = []  # (point, driver options, labels)
        taken: set[str] = set()

        def claim(destination: str) -> str:
            destination = posixpath.normpath(destination)
            if destination in taken:
                raise errors.InvalidParameter(f"Duplicate mount point: {destination}")
            taken.add(destination)
            return destination

        for bind in host_config.binds or ():
            destination = claim(bind.destination)
            if not bind.is_volume:
                continue
            wanted.append((MountPoint(name=bind.source, destination=destination, driver=default_driver,
                                      rw=not bind.read_only, mode=bind.mode or "z",
                                      copy_data="nocopy" not in bind.options), {}, {}))
        for mount in host_config.mounts or ():
            if not mount.target:
                raise errors.InvalidParameter("invalid mount config: Target must not be empty")
            destination = claim(mount.target)
            if (mount.type or "bind") != "volume":
                continue
            driver = mount.volume_driver
            wanted.append((MountPoint(name=mount.source, destination=destination,
                                      driver=(driver.name if driver else "") or default_driver,
                                      rw=not mount.read_only, mode="z", copy_data=not mount.no_copy,
                                      anonymous=not mount.source),
                           dict((driver.options if driver else None) or {}), dict(mount.volume_labels or {})))
        for destination in host_config.tmpfs or {}:
            claim(destination)
        for point in inherited:
            wanted.append((attrs.evolve(point, destination=claim(point.destination)), {}, {}))
        for destination in config.volumes or ():
            if not destination.startswith("/"):
                raise errors.InvalidParameter(f"invalid mount config: invalid mount path: '{destination}' mount path must be absolute")
            if posixpath.normpath(destination) in taken:
                continue
            wanted.append((MountPoint(name="", destination=claim(destination), driver=default_driver, mode="",
                                      anonymous=True), {}, {}))
        if not wanted:
            return []
        created: list[Volume] = []
        points: list[MountPoint] = []
        async with self._lock:
            try:
                for point, options, labels in wanted:
                    volume, new = await self._ensure(point.name, point.driver, options, labels, point.anonymous)
                    point.name, point.driver = volume.name, volume.driver
                    point.anonymous = volume.anonymous
                    if point.driver == "local":
                        point.source = await self.driver("local").path(volume.name)
                    if new:
                        created.append(volume)
                    points.append(point)
                self._mounts[container_id] = points
                await trio.to_thread.run_sync(save_mounts, self._mounts_path(container_id), points)
            except BaseException:
                self._mounts.pop(container_id, None)
                with trio.CancelScope(shield=True):
                    path = self._mounts_path(container_id)  # save_mounts may have begun it
                    await trio.to_thread.run_sync(lambda: os.path.exists(path) and os.unlink(path))
                    for volume in created:
                        if volume.anonymous:
                            try:
                                await self._remove(volume, force=True)
                            except errors.EngineError:
                                pass
                raise
        return points

    def _mounts_path(self, container_id: str) -> str:
        return os.path.join(self._mounts_dir, container_id + ".json")

    async def mount(self, container_id: str) -> list[MountPoint]:
        """Before a start: every volume of the container reachable on the host (point.source)."""
        points = self._mounts.get(container_id) or []
        done: list[MountPoint] = []
        try:
            for point in points:
                path = await self.driver(point.driver).mount(point.name, container_id)
                point.source = path
                done.append(point)
                self.events.publish("volume", "mount", point.name, {
                    "container": container_id, "destination": point.destination, "driver": point.driver,
                    "propagation": "", "read/write": str(point.rw).lower()})
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._unmount_points(container_id, done)
            raise
        self._active[container_id] = done
        if done:
            await trio.to_thread.run_sync(save_mounts, self._mounts_path(container_id), points)
        return list(done)

    async def unmount(self, container_id: str) -> None:
        await self._unmount_points(container_id, self._active.pop(container_id, []))

    async def _unmount_points(self, container_id: str, points: list[MountPoint]) -> None:
        for point in points:
            try:
                await self.driver(point.driver).unmount(point.name, container_id)
            except errors.EngineError as exc:
                log.warning("unmounting volume %s of %s failed: %s", point.name, container_id[:12], exc)
            self.events.publish("volume", "unmount", point.name, {"container": container_id, "driver": point.driver})

    async def forget(self, container_id: str, remove_anonymous: bool = False) -> None:
        """The container is gone: drop its mount points; `rm -v` removes its anonymous volumes
        (when no other container uses them)."""
        await self.unmount(container_id)
        async with self._lock:
            points = self._mounts.pop(container_id, [])
            if points:  # a container without volumes has no file (rm: no thread hop)
                path = self._mounts_path(container_id)
                await trio.to_thread.run_sync(lambda: os.path.exists(path) and os.unlink(path))
            if not remove_anonymous:
                return
            for point in points:
                volume = self._volumes.get(point.name)
                if volume is None or not volume.anonymous or self.users(volume.name):
                    continue
                try:
                    await self._remove(volume)
                except errors.EngineError as exc:
                    log.warning("removing anonymous volume %s failed: %s", volume.name, exc)


# --- copy-up (sync: call from a worker thread, after the rootfs is mounted) --------------------
def copy_up(rootfs: str, points: list[MountPoint]) -> None:
    """Docker's CopyData: an empty volume gets the image's content at its mount path (and the
    directory's owner and mode)."""
    for point in points:
        if not point.copy_data or not point.source or not os.path.isdir(point.source):
            continue
        try:
            source = resolve_in_root(rootfs, point.destination)
        except errors.InvalidParameter:
            continue  # a symlink loop: nothing to copy
        if not os.path.isdir(source) or os.path.islink(source):
            continue
        if os.listdir(point.source):
            continue
        done = subprocess.run(["cp", "-a", "--", source + "/.", point.source + "/"], capture_output=True, text=True)
        if done.returncode != 0:
            raise errors.SystemError_(f"copying image content into volume {point.name}: {done.stderr.strip()}")

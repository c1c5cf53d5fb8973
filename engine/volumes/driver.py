"""The volume driver interface. Built-in drivers register through the entry-point group
`pyengine.volume_drivers` like third-party ones; Docker's legacy volume plugin protocol is
adapted to the same interface (engine.volumes.remote).

A driver class is built as `cls(context)`; `context` is the VolumeManager (it gives
`context.config` and `context.root`, <data_root>/volumes). Names are validated by the manager;
`mount_id` is the container id (one mount per container)."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class VolumeDriver(Protocol):
    name: str

    async def create(self, name: str, options: dict) -> None:
        """Make the volume exist (idempotent); reject options the driver does not know."""

    async def remove(self, name: str) -> None: ...

    async def mount(self, name: str, mount_id: str) -> str:
        """Make the data reachable on the host for `mount_id`; the host path."""

    async def unmount(self, name: str, mount_id: str) -> None: ...

    async def path(self, name: str) -> str:
        """The host path of the data ("" when the driver only knows it while mounted)."""

    async def get(self, name: str) -> dict | None:
        """{"Name", "Mountpoint", "Status"?}, or None if the driver does not know it."""

    async def list(self) -> list[dict]: ...

    async def capabilities(self) -> dict:
        """{"Scope": "local" | "global"}."""

    # Optional (built-in drivers): restore() at daemon start, release() at shutdown.


def load_drivers(context) -> dict[str, object]:
    """Entry points of `pyengine.volume_drivers`, with `local` as a fallback when the installed
    package metadata predates it."""
    from importlib.metadata import entry_points

    classes: dict[str, object] = {}
    for ep in entry_points(group="pyengine.volume_drivers"):
        try:
            classes[ep.name] = ep.load()
        except Exception:  # a broken third-party driver must not stop the daemon
            log.exception("volume driver %s failed to load", ep.name)
    from engine.volumes.local import LocalDriver

    classes.setdefault("local", LocalDriver)
    drivers = {}
    for name, cls in classes.items():
        try:
            drivers[name] = cls(context)
        except Exception:
            log.exception("volume driver %s failed to start", name)
    return drivers

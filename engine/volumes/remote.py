"""Docker's legacy volume plugin protocol (JSON over HTTP on a unix socket found in the
plugin dirs, as engine.networks.remote finds network plugins) adapted to our driver interface.

    POST /Plugin.Activate            → {"Implements": ["VolumeDriver"]}
    POST /VolumeDriver.Create        {Name, Opts}          → {Err}
    POST /VolumeDriver.Remove        {Name}                → {Err}
    POST /VolumeDriver.Mount         {Name, ID}            → {Mountpoint, Err}
    POST /VolumeDriver.Unmount       {Name, ID}            → {Err}
    POST /VolumeDriver.Path          {Name}                → {Mountpoint, Err}
    POST /VolumeDriver.Get           {Name}                → {Volume{Name, Mountpoint, Status}, Err}
    POST /VolumeDriver.List          {}                    → {Volumes[{Name, Mountpoint}], Err}
    POST /VolumeDriver.Capabilities  {}                    → {Capabilities{Scope}}"""

from __future__ import annotations

from engine import errors
from engine.plugins import PluginClient


class RemoteVolumeDriver(PluginClient):
    implements = "VolumeDriver"
    kind = "volume"

    async def create(self, name: str, options: dict) -> None:
        await self._call("VolumeDriver.Create", {"Name": name, "Opts": dict(options or {})})

    async def remove(self, name: str) -> None:
        await self._call("VolumeDriver.Remove", {"Name": name})

    async def mount(self, name: str, mount_id: str) -> str:
        reply = await self._call("VolumeDriver.Mount", {"Name": name, "ID": mount_id})
        if not reply.get("Mountpoint"):
            raise errors.SystemError_(f"volume plugin {self.name}: Mount of {name} gave no mountpoint")
        return reply["Mountpoint"]

    async def unmount(self, name: str, mount_id: str) -> None:
        await self._call("VolumeDriver.Unmount", {"Name": name, "ID": mount_id})

    async def path(self, name: str) -> str:
        return (await self._call("VolumeDriver.Path", {"Name": name})).get("Mountpoint") or ""

    async def get(self, name: str) -> dict | None:
        try:
            reply = await self._call("VolumeDriver.Get", {"Name": name})
        except errors.SystemError_:
            return None
        return reply.get("Volume")

    async def list(self) -> list[dict]:
        return list((await self._call("VolumeDriver.List", {})).get("Volumes") or [])

    async def capabilities(self) -> dict:
        reply = await self._call("VolumeDriver.Capabilities", {}, quiet_missing=True)
        return reply.get("Capabilities") or {"Scope": "local"}

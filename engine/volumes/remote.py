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

import json

from engine import errors


class RemoteVolumeDriver:
    def __init__(self, context, name: str, socket_path: str) -> None:
        self.context, self.name, self.socket_path = context, name, socket_path
        self._activated = False

    async def _call(self, method: str, body: dict, quiet_missing: bool = False) -> dict:
        import httpx

        transport = httpx.AsyncHTTPTransport(uds=self.socket_path)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://plugin", timeout=30) as client:
                response = await client.post(f"/{method}", content=json.dumps(body),
                                             headers={"Content-Type": "application/vnd.docker.plugins.v1.2+json"})
        except httpx.TransportError as exc:
            raise errors.SystemError_(f"volume plugin {self.name}: {method}: {exc}") from None
        if response.status_code == 404 and quiet_missing:
            return {}
        try:
            reply = response.json() if response.content else {}
        except ValueError:
            reply = {}
        if response.status_code != 200 or reply.get("Err"):
            raise errors.SystemError_(f"volume plugin {self.name}: {method}: {reply.get('Err') or response.status_code}")
        return reply

    async def _activate(self) -> None:
        if not self._activated:
            reply = await self._call("Plugin.Activate", {})
            if "VolumeDriver" not in (reply.get("Implements") or []):
                raise errors.InvalidParameter(f"plugin {self.name} does not implement VolumeDriver")
            self._activated = True

    async def create(self, name: str, options: dict) -> None:
        await self._activate()
        await self._call("VolumeDriver.Create", {"Name": name, "Opts": dict(options or {})})

    async def remove(self, name: str) -> None:
        await self._activate()
        await self._call("VolumeDriver.Remove", {"Name": name})

    async def mount(self, name: str, mount_id: str) -> str:
        await self._activate()
        reply = await self._call("VolumeDriver.Mount", {"Name": name, "ID": mount_id})
        if not reply.get("Mountpoint"):
            raise errors.SystemError_(f"volume plugin {self.name}: Mount of {name} gave no mountpoint")
        return reply["Mountpoint"]

    async def unmount(self, name: str, mount_id: str) -> None:
        await self._activate()
        await self._call("VolumeDriver.Unmount", {"Name": name, "ID": mount_id})

    async def path(self, name: str) -> str:
        await self._activate()
        return (await self._call("VolumeDriver.Path", {"Name": name})).get("Mountpoint") or ""

    async def get(self, name: str) -> dict | None:
        await self._activate()
        try:
            reply = await self._call("VolumeDriver.Get", {"Name": name})
        except errors.SystemError_:
            return None
        return reply.get("Volume")

    async def list(self) -> list[dict]:
        await self._activate()
        return list((await self._call("VolumeDriver.List", {})).get("Volumes") or [])

    async def capabilities(self) -> dict:
        await self._activate()
        reply = await self._call("VolumeDriver.Capabilities", {}, quiet_missing=True)
        return reply.get("Capabilities") or {"Scope": "local"}

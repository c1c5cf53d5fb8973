"""Docker's legacy plugin protocol, shared by remote network and volume drivers: plugins are
found as unix sockets (or .spec files naming one) in the plugin directories and spoken to with
JSON over HTTP (`POST /Plugin.Activate`, then `POST /<Driver>.<Method>`)."""

from __future__ import annotations

import json
import os

from engine import errors

DEFAULT_PLUGIN_DIRS = ("/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins")
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"


def find_plugin(name: str, dirs=None) -> str | None:
    """The unix socket path of plugin `name` (<dir>/<name>.sock, or a .spec naming one)."""
    env = os.environ.get("PYENGINE_PLUGIN_DIRS")
    for directory in dirs or (env.split(":") if env else DEFAULT_PLUGIN_DIRS):
        sock = os.path.join(directory, name + ".sock")
        if os.path.exists(sock):
            return sock
        sock = os.path.join(directory, name, name + ".sock")
        if os.path.exists(sock):
            return sock
        spec = os.path.join(directory, name + ".spec")
        if os.path.exists(spec):
            with open(spec) as f:
                address = f.read().strip()
            if address.startswith("unix://"):
                return address[len("unix://"):]
    return None


class PluginClient:
    """Base of the remote drivers: `_call` activates the plugin once (checking that it
    implements `implements`) and turns transport failures and `Err` replies into errors."""

    implements = ""  # "NetworkDriver", "VolumeDriver"
    kind = ""  # "network", "volume" (for messages)

    def __init__(self, context, name: str, socket_path: str) -> None:
        self.context, self.name, self.socket_path = context, name, socket_path
        self._activated = False

    async def _post(self, method: str, body: dict, quiet_missing: bool = False) -> dict:
        import httpx

        transport = httpx.AsyncHTTPTransport(uds=self.socket_path)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://plugin", timeout=30) as client:
                response = await client.post(f"/{method}", content=json.dumps(body),
                                             headers={"Content-Type": CONTENT_TYPE})
        except httpx.TransportError as exc:
            raise errors.SystemError_(f"{self.kind} plugin {self.name}: {method}: {exc}") from None
        if response.status_code == 404 and quiet_missing:
            return {}
        try:
            reply = response.json() if response.content else {}
        except ValueError:
            reply = {}
        if response.status_code != 200 or reply.get("Err"):
            raise errors.SystemError_(
                f"{self.kind} plugin {self.name}: {method}: {reply.get('Err') or response.status_code}"
            )
        return reply

    async def _activate(self) -> None:
        if not self._activated:
            reply = await self._post("Plugin.Activate", {})
            if self.implements not in (reply.get("Implements") or []):
                raise errors.InvalidParameter(f"plugin {self.name} does not implement {self.implements}")
            self._activated = True

    async def _call(self, method: str, body: dict, quiet_missing: bool = False) -> dict:
        await self._activate()
        return await self._post(method, body, quiet_missing)

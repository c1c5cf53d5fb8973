"""Docker's remote network driver protocol (JSON over HTTP on a unix socket found in
/run/docker/plugins or /etc/docker/plugins) adapted to our driver interface.

    POST /Plugin.Activate                 → {"Implements": ["NetworkDriver"]}
    POST /NetworkDriver.CreateNetwork     {NetworkID, Options, IPv4Data}
    POST /NetworkDriver.DeleteNetwork     {NetworkID}
    POST /NetworkDriver.CreateEndpoint    {NetworkID, EndpointID, Interface{Address, MacAddress}}
    POST /NetworkDriver.Join              {NetworkID, EndpointID, SandboxKey} →
                                          {InterfaceName{SrcName, DstPrefix}, Gateway}
    POST /NetworkDriver.Leave / DeleteEndpoint

Our IPAM gives the address; the plugin creates the interface (SrcName) on the host; we move
it into the container's netns, rename it, and set address, MAC and default route."""

from __future__ import annotations

import json
import os

import trio

from engine import errors
from engine.networks import _netlink

DEFAULT_PLUGIN_DIRS = ("/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins")


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


class RemoteDriver:
    attaches = True

    def __init__(self, context, name: str, socket_path: str) -> None:
        self.context, self.name, self.socket_path = context, name, socket_path
        self._activated = False

    async def _call(self, method: str, body: dict) -> dict:
        import httpx

        transport = httpx.AsyncHTTPTransport(uds=self.socket_path)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://plugin", timeout=30) as client:
                response = await client.post(f"/{method}", content=json.dumps(body),
                                             headers={"Content-Type": "application/vnd.docker.plugins.v1.2+json"})
        except httpx.TransportError as exc:
            raise errors.SystemError_(f"network plugin {self.name}: {method}: {exc}") from None
        try:
            reply = response.json() if response.content else {}
        except ValueError:
            reply = {}
        if response.status_code != 200 or reply.get("Err"):
            raise errors.SystemError_(f"network plugin {self.name}: {method}: {reply.get('Err') or response.status_code}")
        return reply

    async def _activate(self) -> None:
        if not self._activated:
            reply = await self._call("Plugin.Activate", {})
            if "NetworkDriver" not in (reply.get("Implements") or []):
                raise errors.InvalidParameter(f"plugin {self.name} does not implement NetworkDriver")
            self._activated = True

    async def create_network(self, network) -> None:
        await self._activate()
        await self._call("NetworkDriver.CreateNetwork", {
            "NetworkID": network.id,
            "Options": {"com.docker.network.generic": dict(network.options)},
            "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": network.subnet,
                          "Gateway": f"{network.gateway}/{network.prefixlen}"}] if network.subnet else [],
            "IPv6Data": [],
        })

    async def restore_network(self, network) -> None:
        pass  # the plugin keeps its own state

    async def release_network(self, network) -> None:
        pass

    async def delete_network(self, network) -> None:
        await self._activate()
        await self._call("NetworkDriver.DeleteNetwork", {"NetworkID": network.id})

    async def join(self, network, endpoint, pid: int) -> None:
        await self._activate()
        reply = await self._call("NetworkDriver.CreateEndpoint", {
            "NetworkID": network.id, "EndpointID": endpoint.id, "Options": {},
            "Interface": {"Address": f"{endpoint.ip}/{endpoint.prefixlen}", "AddressIPv6": "",
                          "MacAddress": endpoint.mac},
        })
        mac = (reply.get("Interface") or {}).get("MacAddress")
        if mac:
            endpoint.mac = mac
        try:
            joined = await self._call("NetworkDriver.Join", {
                "NetworkID": network.id, "EndpointID": endpoint.id,
                "SandboxKey": f"/proc/{pid}/ns/net", "Options": {}})
            src = (joined.get("InterfaceName") or {}).get("SrcName")
            if not src:
                raise errors.SystemError_(f"network plugin {self.name}: Join gave no interface")
            gateway = joined.get("Gateway") or endpoint.gateway
            route = endpoint.driver_state.get("route", True) and not network.internal
            await trio.to_thread.run_sync(_netlink.move_into_netns, src, pid)
            await trio.to_thread.run_sync(lambda: _netlink.configure_in_netns(
                pid, src, endpoint.ifname, f"{endpoint.ip}/{endpoint.prefixlen}",
                gateway if route else None, endpoint.mac))
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._quiet("NetworkDriver.DeleteEndpoint", {"NetworkID": network.id, "EndpointID": endpoint.id})
            raise

    async def _quiet(self, method: str, body: dict) -> None:
        try:
            await self._call(method, body)
        except errors.EngineError:
            pass

    async def leave(self, network, endpoint) -> None:
        await self._quiet("NetworkDriver.Leave", {"NetworkID": network.id, "EndpointID": endpoint.id})
        await self._quiet("NetworkDriver.DeleteEndpoint", {"NetworkID": network.id, "EndpointID": endpoint.id})

"""Docker's remote network driver protocol (JSON over HTTP on a unix socket found in
/run/docker/plugins or /etc/docker/plugins) adapted to our driver interface.

    POST /Plugin.Activate                 → {"Implements": ["NetworkDriver"]}
    POST /NetworkDriver.CreateNetwork     {NetworkID, Options, IPv4Data, IPv6Data}
    POST /NetworkDriver.DeleteNetwork     {NetworkID}
    POST /NetworkDriver.CreateEndpoint    {NetworkID, EndpointID, Interface{Address, AddressIPv6, MacAddress}}
    POST /NetworkDriver.Join              {NetworkID, EndpointID, SandboxKey} →
                                          {InterfaceName{SrcName, DstPrefix}, Gateway}
    POST /NetworkDriver.Leave / DeleteEndpoint

Our IPAM gives the address; the plugin creates the interface (SrcName) on the host; we move
it into the container's netns, rename it, and set address, MAC and default route."""

from __future__ import annotations

import trio

from engine import errors
from engine.networks import _netlink
from engine.plugins import PluginClient

class RemoteDriver(PluginClient):
    implements = "NetworkDriver"
    kind = "network"
    attaches = True

    async def create_network(self, network) -> None:
        await self._call("NetworkDriver.CreateNetwork", {
            "NetworkID": network.id,
            "Options": {"com.docker.network.generic": dict(network.options)},
            "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": network.subnet,
                          "Gateway": f"{network.gateway}/{network.prefixlen}"}] if network.subnet else [],
            "IPv6Data": [{"AddressSpace": "LocalDefault", "Pool": network.subnet6,
                          "Gateway": f"{network.gateway6}/{network.prefixlen6}"}]
            if network.enable_ipv6 and network.subnet6 else [],
        })

    async def restore_network(self, network) -> None:
        pass  # the plugin keeps its own state

    async def release_network(self, network) -> None:
        pass

    async def delete_network(self, network) -> None:
        await self._call("NetworkDriver.DeleteNetwork", {"NetworkID": network.id})

    async def join(self, network, endpoint, pid: int) -> None:
        reply = await self._call("NetworkDriver.CreateEndpoint", {
            "NetworkID": network.id, "EndpointID": endpoint.id, "Options": {},
            "Interface": {"Address": f"{endpoint.ip}/{endpoint.prefixlen}",
                          "AddressIPv6": f"{endpoint.ip6}/{endpoint.prefixlen6}" if endpoint.ip6 else "",
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
            gateway6 = joined.get("GatewayIPv6") or endpoint.gateway6 or None
            route = endpoint.driver_state.get("route", True) and not network.internal
            addresses = endpoint.addresses()
            await trio.to_thread.run_sync(_netlink.move_into_netns, src, pid)
            await trio.to_thread.run_sync(lambda: _netlink.configure_in_netns(
                pid, src, endpoint.ifname, addresses[0], gateway if route else None, endpoint.mac,
                extra_addresses=addresses[1:], gateway6=gateway6 if route else None))
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

"""`bridge`: a Linux bridge per network, a veth pair per container (pyroute2, in worker
threads), NAT and forwarding in the daemon's nft table (done by the manager)."""

from __future__ import annotations

import trio

from engine.networks import _netlink


class BridgeDriver:
    name = "bridge"
    attaches = True

    def __init__(self, context) -> None:
        self.context = context

    def _mtu(self, network) -> int:
        return int(network.options.get("com.docker.network.driver.mtu") or 1500)

    async def create_network(self, network) -> None:
        if not network.bridge:
            network.bridge = (network.options.get("com.docker.network.bridge.name")
                              or self.context.bridge_name_for(network))
        await self.restore_network(network)

    async def restore_network(self, network) -> None:
        await trio.to_thread.run_sync(_netlink.ensure_bridge, network.bridge,
                                      f"{network.gateway}/{network.prefixlen}", self._mtu(network))

    async def release_network(self, network) -> None:
        await trio.to_thread.run_sync(_netlink.delete_link, network.bridge)

    async def delete_network(self, network) -> None:
        await self.release_network(network)

    async def join(self, network, endpoint, pid: int) -> None:
        host_name, temp_name = self.context.veth_names()
        endpoint.host_veth = host_name
        await trio.to_thread.run_sync(lambda: _netlink.setup_veth(
            host_name=host_name, temp_name=temp_name, master=network.bridge, pid=pid,
            ifname=endpoint.ifname, address_cidr=f"{endpoint.ip}/{endpoint.prefixlen}",
            gateway=None if network.internal or not endpoint.driver_state.get("route", True) else endpoint.gateway or None,
            mac=endpoint.mac,
            mtu=self._mtu(network)))

    async def leave(self, network, endpoint) -> None:
        if endpoint.host_veth:
            await trio.to_thread.run_sync(_netlink.delete_link, endpoint.host_veth)

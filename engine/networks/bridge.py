"""`bridge`: a Linux bridge per network, a veth pair per container (pyroute2, in worker
threads), NAT and forwarding in the daemon's nft table (done by the manager).

The container end of the pair is created directly inside the container's namespace and
configured from a worker thread that entered it (_netlink.setup_veth). When a container
stops, the pair dies with its namespace; `leave` deletes it explicitly only while something
still runs in that namespace."""

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
        gateway6 = f"{network.gateway6}/{network.prefixlen6}" if network.enable_ipv6 and network.subnet6 else None
        await trio.to_thread.run_sync(_netlink.ensure_bridge, network.bridge,
                                      f"{network.gateway}/{network.prefixlen}", self._mtu(network), gateway6)

    async def release_network(self, network) -> None:
        await trio.to_thread.run_sync(_netlink.delete_link, network.bridge)

    async def delete_network(self, network) -> None:
        await self.release_network(network)

    async def join(self, network, endpoint, pid: int) -> None:
        host_name, _ = self.context.veth_names()
        endpoint.host_veth = host_name
        route = not network.internal and endpoint.driver_state.get("route", True)
        addresses = endpoint.addresses()
        netns = await trio.to_thread.run_sync(lambda: _netlink.setup_veth(
            host_name=host_name, master=network.bridge, pid=pid,
            ifname=endpoint.ifname, address_cidr=addresses[0], extra_addresses=addresses[1:],
            gateway=endpoint.gateway or None if route else None,
            gateway6=endpoint.gateway6 or None if route else None,
            mac=endpoint.mac,
            mtu=self._mtu(network)))
        endpoint.driver_state["netns"] = netns

    async def leave(self, network, endpoint) -> None:
        """A running container (disconnect, failed setup): delete the pair now. A stopped
        one: its namespace dies with its last process and takes the pair with it, so only
        look (see _netlink.release_veth); the manager deletes whatever is still there later."""
        if not endpoint.host_veth:
            return
        if endpoint.driver_state.get("detach", True):
            await trio.to_thread.run_sync(_netlink.delete_link, endpoint.host_veth)
            return
        outcome = await trio.to_thread.run_sync(_netlink.release_veth, endpoint.host_veth,
                                                endpoint.driver_state.get("netns"))
        if outcome in ("dying", "lingering"):
            self.context.reap_later(endpoint.host_veth)

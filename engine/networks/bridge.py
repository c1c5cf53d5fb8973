"""`bridge`: a Linux bridge per network, a veth pair per container (pyroute2, in worker
threads), NAT and forwarding in the daemon's nft table (done by the manager).

The container end of the pair is created directly inside the container's namespace and
configured from a worker thread that entered it (_netlink.setup_veth). When a container
stops, the pair dies with its namespace; `leave` deletes it explicitly only while something
still runs in that namespace."""

from __future__ import annotations

import errno

import trio

from engine import errors
from engine.networks import _netlink

_TRUE, _FALSE = ("true", "1", "t", "yes"), ("false", "0", "f", "no")


def _flag(options: dict, key: str, default: bool = True) -> bool:
    value = str(options.get(key, "")).strip().lower()
    return default if not value else value in _TRUE


def validate_options(options: dict) -> None:
    """Driver options (-o) as dockerd's bridge driver checks them."""
    for key in ("com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade",
                "com.docker.network.bridge.default_bridge"):
        value = str(options.get(key, "")).strip().lower()
        if value and value not in _TRUE + _FALSE:
            raise errors.InvalidParameter(f"failed to parse {key} value: invalid syntax ({options[key]!r})")
    mtu = options.get("com.docker.network.driver.mtu")
    if mtu is not None and (not str(mtu).isdigit() or not 68 <= int(mtu) <= 65535):
        raise errors.InvalidParameter(f"invalid MTU {mtu!r}: it must be a number from 68 to 65535")
    name = options.get("com.docker.network.bridge.name")
    if name is not None and (not name or len(name) > 15 or "/" in name or " " in name):
        raise errors.InvalidParameter(f"invalid bridge name {name!r} (1 to 15 characters, no '/' or spaces)")


class BridgeDriver:
    name = "bridge"
    attaches = True

    def __init__(self, context) -> None:
        self.context = context

    def _mtu(self, network) -> int:
        return int(network.options.get("com.docker.network.driver.mtu") or 1500)

    async def create_network(self, network) -> None:
        validate_options(network.options)
        if network.enable_ipv6 and self._mtu(network) < 1280:
            raise errors.InvalidParameter(f"IPv6 needs an MTU of at least 1280 (network {network.name} has {self._mtu(network)})")
        if not network.bridge:
            network.bridge = (network.options.get("com.docker.network.bridge.name")
                              or self.context.bridge_name_for(network))
        await self.context.links_deleted()  # a removed network's bridge may hold the subnet
        existed = await trio.to_thread.run_sync(_netlink.existing_links, {network.bridge})
        # A host bridge named by the user is borrowed, not owned; one of our own names that is
        # there already is a leftover of ours.
        network.bridge_adopted = bool(existed) and network.bridge != self.context.bridge_name_for(network)
        try:
            await self.restore_network(network)
        except BaseException as exc:
            if not existed:  # all or nothing: a half-configured bridge of ours goes again
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_netlink.delete_link, network.bridge)
            if isinstance(exc, OSError) and exc.errno in (errno.EAFNOSUPPORT, errno.EEXIST):
                raise errors.InvalidParameter(f"cannot create network {network.name}: {exc.strerror}") from None
            raise

    async def restore_network(self, network) -> None:
        gateway6 = f"{network.gateway6}/{network.prefixlen6}" if network.enable_ipv6 and network.subnet6 else None
        await trio.to_thread.run_sync(_netlink.ensure_bridge, network.bridge,
                                      f"{network.gateway}/{network.prefixlen}", self._mtu(network), gateway6)

    async def release_network(self, network) -> None:
        if network.bridge_adopted:
            return  # the host's bridge: it stays, with what it had (dockerd's behaviour)
        await trio.to_thread.run_sync(_netlink.delete_link, network.bridge)

    async def delete_network(self, network) -> None:
        if network.bridge == self.context.bridge_name_for(network):
            self.context.delete_link_soon(network.bridge)  # ours by name: see delete_link_soon
        else:
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
            mtu=self._mtu(network),
            isolated=not _flag(network.options, "com.docker.network.bridge.enable_icc")))
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

"""Address leases: each network's allocators (engine.networks.ipam: IPv4, and IPv6 when it is
enabled) under <networks>/ipam/<id>[.v6], and the addresses an endpoint takes and gives back."""

from __future__ import annotations

import contextlib
import os
import shutil

import trio

from engine.networks.ipam import Ipam
from engine.networks.model import EndpointSettings, Network


class Leases:
    def __init__(self, root: str) -> None:
        self.root = root
        self._v4: dict[str, Ipam] = {}
        self._v6: dict[str, Ipam] = {}

    def __contains__(self, network_id: str) -> bool:
        return network_id in self._v4

    def open(self, network: Network) -> list[Ipam]:
        """The network's allocators, made ready (blocking: a worker thread, or at load)."""
        directory = os.path.join(self.root, network.id)
        ipam = Ipam(directory, network.subnet, network.gateway, network.ip_range or None, network.reserved)
        self._v4[network.id] = ipam
        if not (network.enable_ipv6 and network.subnet6):
            return [ipam]
        ipam6 = Ipam(directory + ".v6", network.subnet6, network.gateway6, network.ip_range6 or None,
                     network.reserved)
        self._v6[network.id] = ipam6
        return [ipam, ipam6]

    def recover(self, network: Network, live: set[str]) -> None:
        """At load: open the network's allocators and release what no container in `live` holds."""
        for ipam in self.open(network):
            for address, owner in ipam.allocations().items():
                if owner not in live:
                    ipam.release(address)

    def forget(self, network_id: str) -> None:
        self._v4.pop(network_id, None)
        self._v6.pop(network_id, None)

    def remove_files(self, network_id: str) -> None:
        """Blocking."""
        shutil.rmtree(os.path.join(self.root, network_id), ignore_errors=True)
        shutil.rmtree(os.path.join(self.root, network_id + ".v6"), ignore_errors=True)

    async def take(self, network: Network, owner: str, settings: EndpointSettings,
                   stack: contextlib.AsyncExitStack) -> tuple[str, str]:
        """(IPv4 address, IPv6 address or "") for `owner` on `network`: the requested ones, or
        free ones. Each is given back by `stack` when it unwinds (pop_all() keeps them)."""
        ipam = self._v4[network.id]
        ip = await trio.to_thread.run_sync(ipam.allocate, owner, settings.ipv4_address or None)
        stack.push_async_callback(_release, ipam, ip)
        ipam6 = self._v6.get(network.id)
        ip6 = ""
        if ipam6 is not None:
            ip6 = await trio.to_thread.run_sync(ipam6.allocate, owner, settings.ipv6_address or None)
            stack.push_async_callback(_release, ipam6, ip6)
        return ip, ip6

    async def give_back(self, network_id: str, ip: str, ip6: str) -> None:
        for ipam, address in ((self._v4.get(network_id), ip), (self._v6.get(network_id), ip6)):
            if ipam is not None and address:
                await trio.to_thread.run_sync(ipam.release, address)


async def _release(ipam: Ipam, address: str) -> None:
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(ipam.release, address)

"""A running container's endpoint on one network: made (addresses leased, the driver's
interface in the container's namespace) and undone. The manager decides which networks and
keeps the endpoints; this is the work for one."""

from __future__ import annotations

import contextlib
import logging
import secrets

import trio

from engine.networks import _netlink, links
from engine.networks.attachments import Attachment
from engine.networks.ipam import mac_for
from engine.networks.leases import Leases
from engine.networks.model import Endpoint, Network

log = logging.getLogger(__name__)


async def join(driver, network: Network, container, attachment: Attachment, pid: int, leases: Leases, *,
               ifname: str, route: bool) -> Endpoint:
    """The container's (netns of `pid`) interface `ifname` on `network`; `route`: its default
    route goes there. Nothing is left leased if the driver fails."""
    settings = attachment.settings
    ep = Endpoint(id=secrets.token_hex(32), network_id=network.id, container=container, ifname=ifname,
                  prefixlen=network.prefixlen, gateway=network.gateway, aliases=list(settings.aliases),
                  links={alias: name for name, alias in links.parse_all(settings.links)},
                  link_local=list(settings.link_local_ips))
    ep.driver_state["route"] = route
    async with contextlib.AsyncExitStack() as stack:
        ep.ip, ep.ip6 = await leases.take(network, container.id, settings, stack)
        if ep.ip6:
            ep.prefixlen6, ep.gateway6 = network.prefixlen6, network.gateway6
        ep.mac = settings.mac_address or mac_for(ep.ip)
        await driver.join(network, ep, pid)
        stack.pop_all()
    return ep


async def leave(driver, network: Network | None, ep: Endpoint, leases: Leases, *, stopped: bool) -> None:
    """Undo `join`: published ports closed, the interface removed, the addresses given back.
    `stopped`: the container's processes are gone (its interfaces die with its network
    namespace); otherwise it keeps running and the driver removes the interface now. Without
    a driver (its network is gone) the host side of the veth is deleted here."""
    ep.driver_state["detach"] = not stopped
    for b in ep.ports:
        if b.scope is not None:
            b.scope.cancel()
        elif b.sock is not None:
            b.sock.close()
    try:
        if driver is not None:
            await driver.leave(network, ep)
        elif ep.host_veth:
            await trio.to_thread.run_sync(_netlink.delete_link, ep.host_veth)
    except Exception as exc:
        log.warning("leaving network %s failed: %s", ep.network_id, exc)
    await leases.give_back(ep.network_id, ep.ip, ep.ip6)

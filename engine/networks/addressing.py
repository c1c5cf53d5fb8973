"""Choosing a network's subnets and gateways from its IPAM pools (IPv4 and IPv6), and the
pick of a free IPv4 subnet when the user gave none.

Docker's rules: at most one pool per family here (the bridge driver takes one of each); a
given gateway, IP range and auxiliary addresses must lie inside their pool's subnet; pools may
not overlap another network's or a route of the host. IPv6 pools are kept whether or not
EnableIPv6 is set, but addresses are only handed out when it is (libnetwork's behaviour)."""

from __future__ import annotations

import hashlib
import ipaddress
import os

import trio

from engine import errors
from engine.networks import _netlink
from engine.networks.model import IpamPool, Network

DEFAULT_DATA_ROOT = "/var/lib/pyengine"


def _network(value: str, what: str):
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        if what == "subnet":  # dockerd's words
            raise errors.InvalidParameter(f"Invalid subnet {value} : invalid CIDR address: {value}") from None
        raise errors.InvalidParameter(f"invalid {what}: {value}") from None


def _address(value: str, what: str):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise errors.InvalidParameter(f"invalid {what}: {value}") from None


def split_pools(pools: list[IpamPool]) -> tuple[IpamPool | None, IpamPool | None]:
    """(IPv4 pool, IPv6 pool), validated: each address inside its pool's subnet."""
    by_version: dict[int, IpamPool] = {}
    for pool in pools:
        if not pool.subnet:
            if pool.ip_range or pool.gateway or pool.aux_addresses:
                raise errors.InvalidParameter("invalid pool request: IPAM pool with no subnet")
            continue
        subnet = _network(pool.subnet, "subnet")
        if subnet.version in by_version:
            raise errors.InvalidParameter(f"bridge driver doesn't support multiple subnets of IPv{subnet.version}")
        if pool.ip_range:
            ip_range = _network(pool.ip_range, "ip-range")
            if ip_range.version != subnet.version or not ip_range.subnet_of(subnet):
                raise errors.InvalidParameter(f"invalid pool request: ip-range {pool.ip_range} is not in subnet {pool.subnet}")
        if pool.gateway and _address(pool.gateway, "gateway") not in subnet:
            raise errors.InvalidParameter(f"invalid pool request: gateway {pool.gateway} is not in subnet {pool.subnet}")
        for name, aux in pool.aux_addresses.items():
            if _address(aux, "auxiliary address") not in subnet:
                raise errors.InvalidParameter(f"invalid pool request: auxiliary address {name}={aux} is not in subnet {pool.subnet}")
        by_version[subnet.version] = pool
    return by_version.get(4), by_version.get(6)


def routed_except(own_bridges: set[str]) -> list:
    return [net for net, dev in _netlink.routed_networks() if dev not in own_bridges]


async def _check_free(net, networks: list[Network], own_bridge: str = "") -> None:
    """`net` overlaps no network of ours nor a host route, but those through `own_bridge`:
    the host bridge a network is told to use (com.docker.network.bridge.name) carries its
    subnet already when the user set it up for it, as dockerd documents that use."""
    for other in networks:
        for mine in (other.subnet, other.subnet6):
            if mine and ipaddress.ip_network(mine).overlaps(net):
                raise errors.Forbidden("Pool overlaps with other one on this address space")
    ours = {n.bridge for n in networks if n.bridge} | ({own_bridge} if own_bridge else set())
    routed = await trio.to_thread.run_sync(routed_except, ours)
    if any(r.version == net.version and r.overlaps(net) for r in routed):
        raise errors.Forbidden(f"Pool overlaps with other one on this address space ({net} is routed on the host)")


async def assign(network: Network, networks: list[Network], *, tag: str, data_root: str,
                 default_bridge: str, default_pools=()) -> None:
    """Fill `network`'s subnet/gateway/range (both families) from `network.pools`, or a free
    subnet (of `default_pools`, the daemon's --default-address-pool, when it has some)."""
    v4, v6 = split_pools(network.pools)
    named_bridge = network.options.get("com.docker.network.bridge.name") or ""
    if v4 is not None:
        net = ipaddress.ip_network(v4.subnet, strict=False)
        await _check_free(net, networks, named_bridge)
        network.subnet = str(net)
    else:
        network.subnet = await pick_subnet(networks, tag=tag, data_root=data_root, default_bridge=default_bridge,
                                           pools=default_pools)
    net = ipaddress.ip_network(network.subnet)
    network.gateway = (v4.gateway if v4 and v4.gateway else str(next(net.hosts())))
    if v4 and v4.ip_range:
        network.ip_range = str(ipaddress.ip_network(v4.ip_range, strict=False))
    if v6 is not None:
        net6 = ipaddress.ip_network(v6.subnet, strict=False)
        await _check_free(net6, networks, named_bridge)
        network.subnet6 = str(net6)
        network.gateway6 = v6.gateway or str(net6.network_address + 1)
        if v6.ip_range:
            network.ip_range6 = str(ipaddress.ip_network(v6.ip_range, strict=False))
    elif network.enable_ipv6:
        network.subnet6 = pick_subnet6(networks, tag=tag, salt=network.id)
        network.gateway6 = str(ipaddress.ip_network(network.subnet6).network_address + 1)


def pick_subnet6(networks: list[Network], *, tag: str, salt: str) -> str:
    """A unique-local /64 (fd00::/8, RFC 4193) for an IPv6 network created without a subnet."""
    taken = [ipaddress.ip_network(n.subnet6) for n in networks if n.subnet6]
    h = int(hashlib.sha256((tag + salt).encode()).hexdigest(), 16)
    for i in range(256):
        bits = (h + i) & ((1 << 56) - 1)
        candidate = ipaddress.ip_network(((0xFD << 120) | (bits << 64), 64))
        if not any(candidate.overlaps(t) for t in taken):
            return str(candidate)
    raise errors.Unavailable("could not find an available, non-overlapping IPv6 address pool")


async def pick_subnet(networks: list[Network], *, tag: str, data_root: str, default_bridge: str,
                      default: bool = False, pools=()) -> str:
    """A subnet that neither another network nor a host route uses: the first free one of
    `pools` (engine.config.options.AddressPool: base split into /size) when given, as dockerd's
    --default-address-pool; else a /24 in 10.100-199.x.0 (the system daemon's default bridge
    gets 172.17.0.0/16 when it is free, as Docker's)."""
    ours = {n.bridge for n in networks if n.bridge}
    ours.add(default_bridge)
    routed = await trio.to_thread.run_sync(routed_except, ours)
    taken = routed + [ipaddress.ip_network(n.subnet) for n in networks if n.subnet]

    def free(candidate) -> bool:
        return not any(candidate.version == t.version and candidate.overlaps(t) for t in taken)

    if pools:
        for pool in pools:
            base = ipaddress.ip_network(pool.base)
            if base.version != 4:
                continue
            for candidate in base.subnets(new_prefix=pool.size):
                if free(candidate):
                    return str(candidate)
        raise errors.Unavailable("could not find an available, non-overlapping IPv4 address pool among the "
                                 "defaults to assign to the network")
    if default and os.path.abspath(data_root) == DEFAULT_DATA_ROOT:
        docker0 = ipaddress.ip_network("172.17.0.0/16")
        if free(docker0):
            return str(docker0)
    h = int(hashlib.sha256((tag + ("d" if default else "u")).encode()).hexdigest(), 16)
    for i in range(100 * 256):
        second = 100 + ((h >> 8) + i // 256) % 100
        third = (h + i) % 256
        candidate = ipaddress.ip_network(f"10.{second}.{third}.0/24")
        if free(candidate):
            return str(candidate)
    raise errors.Unavailable("could not find an available, non-overlapping IPv4 address pool")


def validate_endpoint(network: Network, settings) -> None:
    """Requested addresses (EndpointSettings) parse and fit the network, as dockerd checks."""
    if settings.ipv4_address:
        address = _address(settings.ipv4_address, "IPv4 address")
        if address.version != 4:
            raise errors.InvalidParameter(f"invalid IPv4 address: {settings.ipv4_address}")
        if network.subnet and address not in ipaddress.ip_network(network.subnet):
            raise errors.InvalidParameter(f"no configured subnet contains IP address {address}")
    if settings.ipv6_address:
        address = _address(settings.ipv6_address, "IPv6 address")
        if address.version != 6:
            raise errors.InvalidParameter(f"invalid IPv6 address: {settings.ipv6_address}")
        if network.subnet6 and address not in ipaddress.ip_network(network.subnet6):
            raise errors.InvalidParameter(f"no configured subnet contains IP address {address}")
    for value in settings.link_local_ips:
        address = _address(value, "link-local IP address")
        if not address.is_link_local:
            raise errors.InvalidParameter(f"invalid link-local IP address: {value}")

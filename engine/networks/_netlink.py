"""The one module that imports pyroute2. Every function here is blocking: call it from
`trio.to_thread.run_sync`. Sockets are opened inside the calling (worker) thread.

Steps are small and idempotent (CNI's bridge plugin): ensure_bridge, setup_veth, delete_link;
setup_veth rolls back every step it made if a later one fails."""

from __future__ import annotations

import contextlib
import errno
import ipaddress

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink.exceptions import NetlinkError


def _lookup(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def ensure_bridge(name: str, gateway_cidr: str | None, mtu: int = 1500) -> None:
    """Bridge `name` exists, is up and has `gateway_cidr` (e.g. "10.1.2.1/24")."""
    with IPRoute() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            index = _lookup(ipr, name)
        if gateway_cidr:
            address, prefix = gateway_cidr.split("/")
            have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
            if (address, int(prefix)) not in have:
                ipr.addr("add", index=index, address=address, prefixlen=int(prefix))
        ipr.link("set", index=index, state="up")


def delete_link(name: str) -> bool:
    """Delete a link by name; False if it was already gone."""
    with IPRoute() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            return False
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True


def links_with_prefix(prefix: str) -> list[str]:
    with IPRoute() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return [n for n in names if n and n.startswith(prefix)]


def routed_networks() -> list[tuple[ipaddress.IPv4Network, str]]:
    """(destination, device) the host routes in the main table, default routes excepted,
    plus the networks of the host's addresses."""
    out = []
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for route in ipr.get_routes(family=2):
            dst, length = route.get_attr("RTA_DST"), route["dst_len"]
            if dst and length:
                try:
                    out.append((ipaddress.ip_network(f"{dst}/{length}", strict=False),
                                names.get(route.get_attr("RTA_OIF"), "")))
                except ValueError:
                    pass
        for addr in ipr.get_addr(family=2):
            a = addr.get_attr("IFA_ADDRESS")
            if a and not a.startswith("127."):
                out.append((ipaddress.ip_network(f"{a}/{addr['prefixlen']}", strict=False),
                            names.get(addr["index"], "")))
    return out


def setup_veth(*, host_name: str, temp_name: str, master: str | None, pid: int, ifname: str,
               address_cidr: str, gateway: str | None, mac: str, mtu: int = 1500) -> None:
    """veth pair: `host_name` on the host (enslaved to `master`, up), its peer moved into the
    network namespace of `pid` as `ifname` with `address_cidr`, `mac` and a default route via
    `gateway`. All or nothing."""
    with contextlib.ExitStack() as undo:
        with IPRoute() as ipr:
            ipr.link("add", ifname=host_name, kind="veth", peer={"ifname": temp_name, "mtu": mtu}, mtu=mtu)
            undo.callback(delete_link, host_name)  # deleting one end deletes the pair
            host_index = _lookup(ipr, host_name)
            if master:
                master_index = _lookup(ipr, master)
                if master_index is None:
                    raise OSError(errno.ENODEV, f"bridge {master} does not exist")
                ipr.link("set", index=host_index, master=master_index)
            ipr.link("set", index=host_index, state="up")
            peer_index = _lookup(ipr, temp_name)
            ipr.link("set", index=peer_index, net_ns_pid=pid)
        configure_in_netns(pid, temp_name, ifname, address_cidr, gateway, mac, mtu)
        undo.pop_all()


def move_into_netns(name: str, pid: int) -> None:
    with IPRoute() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            raise OSError(errno.ENODEV, f"interface {name} does not exist")
        ipr.link("set", index=index, net_ns_pid=pid)


def configure_in_netns(pid: int, current: str, ifname: str, address_cidr: str | None,
                       gateway: str | None, mac: str | None, mtu: int | None = None) -> None:
    with NetNS(f"/proc/{pid}/ns/net", flags=0) as ns:
        index = _lookup(ns, current)
        if index is None:
            raise OSError(errno.ENODEV, f"interface {current} not found in the container's netns")
        ns.link("set", index=index, state="down")
        changes = {"ifname": ifname}
        if mac:
            changes["address"] = mac
        if mtu:
            changes["mtu"] = mtu
        ns.link("set", index=index, **changes)
        if address_cidr:
            address, prefix = address_cidr.split("/")
            ns.addr("add", index=index, address=address, prefixlen=int(prefix))
        ns.link("set", index=index, state="up")
        lo = _lookup(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")
        if gateway:
            try:
                ns.route("add", dst="0.0.0.0/0", gateway=gateway, oif=index)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise


def remove_in_netns(pid: int, ifname: str) -> None:
    """Delete an interface inside a running container (network disconnect)."""
    with NetNS(f"/proc/{pid}/ns/net", flags=0) as ns:
        index = _lookup(ns, ifname)
        if index is not None:
            ns.link("del", index=index)


def netns_ifnames(pid: int) -> list[str]:
    with NetNS(f"/proc/{pid}/ns/net", flags=0) as ns:
        return [link.get_attr("IFLA_IFNAME") for link in ns.get_links()]

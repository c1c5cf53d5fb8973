"""The one module that imports pyroute2. Every function here is blocking: call it from
`trio.to_thread.run_sync`. Sockets are opened inside the calling (worker) thread. What every
container start and stop does (setup_veth, release_veth) and the route dump of a network
create speak rtnetlink directly (_rtnl.py): pyroute2's decoding held the GIL for
milliseconds per container.

Steps are small and idempotent (CNI's bridge plugin): ensure_bridge, setup_veth, delete_link;
setup_veth rolls back every step it made if a later one fails.

Container network namespaces are entered per thread (`in_netns`: setns(2) on the calling
thread only; network namespace membership is per task), never with pyroute2's NetNS (which
forks a helper process per socket). pyroute2 0.9's sync IPRoute creates its netlink socket
(and its private asyncio loop) in the thread that constructs it, so an IPRoute built inside
`in_netns` talks to the container's namespace. The thread always goes back to its own
namespace before `in_netns` returns: trio reuses worker threads, and one left in a
container's namespace would send every later netlink request (and any socket another part
of the engine opens on that thread) into the container."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import logging
import os
import socket

from pyroute2 import IPRoute

from engine.networks import _rtnl
from engine.networks._rtnl import Rtnl
from pyroute2.netlink.exceptions import NetlinkError

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
LOOPBACK_IFINDEX = 1  # the kernel registers `lo` first in every network namespace
RT_SCOPE_LINK = 253
IFA_F_NODAD = 0x02  # IPv6: no duplicate address detection (usable at once, not "tentative")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.setns.restype = ctypes.c_int


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns(CLONE_NEWNET): {os.strerror(code)}")


def thread_netns() -> tuple[int, int]:
    """(st_dev, st_ino) of the calling thread's network namespace."""
    st = os.stat("/proc/thread-self/ns/net")
    return st.st_dev, st.st_ino


def netns_of(pid: int) -> tuple[int, int]:
    st = os.stat(f"/proc/{pid}/ns/net")
    return st.st_dev, st.st_ino


@contextlib.contextmanager
def in_netns(target: int | str):
    """Run the body with the calling thread inside a network namespace: `target` is an open
    nsfs fd or a path (/proc/<pid>/ns/net). The thread's own namespace is restored on every
    exit path; if that is impossible the process aborts rather than keep a worker thread in a
    container's namespace (it cannot fail short of a kernel bug: we hold the fd and
    CAP_SYS_ADMIN)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        own = None
        if isinstance(target, str):
            own = target = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            if own is not None:
                os.close(own)
        try:
            yield
        finally:
            _restore(home)
    finally:
        os.close(home)


def _restore(home: int) -> None:
    for _ in range(3):
        try:
            _setns(home)
            return
        except OSError as exc:
            error = exc
    log.critical("cannot return worker thread to its network namespace (%s); aborting", error)
    os.abort()


def _lookup(ipr, name: str) -> int | None:
    """Index of link `name` in the namespace of `ipr`, which is the calling thread's."""
    return _index(name)


def _index(name: str) -> int | None:
    """Index of link `name` in the calling thread's namespace, None if there is none: libc's
    if_nametoindex (one ioctl), not a netlink request decoded by pyroute2 (~0.3 ms)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:  # libc answers 0: no such link ("no interface with this name")
        return None


def _add_address(ipr, index: int, cidr: str) -> None:
    """Add `cidr` to link `index` unless it is there (IPv6 without DAD)."""
    address, prefix = cidr.split("/")
    family = 10 if ":" in address else 2
    have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=family)}
    if (str(ipaddress.ip_address(address)), int(prefix)) in have:
        return
    extra = {"flags": IFA_F_NODAD} if family == 10 else {}
    if ipaddress.ip_address(address).is_link_local and family == 2:
        extra["scope"] = RT_SCOPE_LINK  # --link-local-ip: like the kernel's own 169.254/16 use
    try:
        ipr.addr("add", index=index, address=address, prefixlen=int(prefix), **extra)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


def _enable_ipv6(ifname: str) -> None:
    """Clear disable_ipv6 for `ifname` in the calling thread's namespace (sysctls under
    /proc/sys/net belong to the opener's network namespace)."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("0")
    except FileNotFoundError:
        raise OSError(errno.EAFNOSUPPORT, "IPv6 is not available on this host") from None


def ensure_bridge(name: str, gateway_cidr: str | None, mtu: int = 1500, gateway6_cidr: str | None = None) -> None:
    """Bridge `name` exists, is up and has `gateway_cidr` (e.g. "10.1.2.1/24") and, for an
    IPv6 network, `gateway6_cidr` (raw rtnetlink: it is on every network create's path)."""
    with Rtnl() as rtnl:
        index = _index(name)
        if index is not None and rtnl.link_kind(index) != "bridge":
            raise OSError(errno.EEXIST, f"{name} exists and is not a bridge")
        if index is None:
            try:
                rtnl.add_bridge(name, mtu)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
            index = _index(name)
            if index is None:
                raise OSError(errno.ENODEV, f"bridge {name} vanished while being made")
        if gateway6_cidr:
            _enable_ipv6(name)
        for cidr in (gateway_cidr, gateway6_cidr):
            if cidr:
                address, prefix = cidr.split("/")
                try:  # EEXIST: the same address and prefix are there (a restart)
                    rtnl.add_address(index, str(ipaddress.ip_address(address)), int(prefix),
                                     flags=IFA_F_NODAD if ":" in address else 0)
                except OSError as exc:
                    if exc.errno != errno.EEXIST:
                        raise
        rtnl.set_up(index)


def _delete(ipr, name: str) -> bool:
    """Delete link `name` of the calling thread's namespace (where `ipr` was opened, if
    given); False if it was already gone."""
    index = _index(name)
    if index is None:
        return False
    with Rtnl() as rtnl:
        try:
            rtnl.delete_link(index)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
    return True


def delete_link(name: str) -> bool:
    """Delete a link by name; False if it was already gone."""
    return _delete(None, name)


def delete_links(names) -> list[str]:
    """Delete every link of `names` that still exists; the names deleted."""
    return [name for name in names if _delete(None, name)]


def existing_links(names) -> set[str]:
    """The subset of `names` that exist in this (the host's) namespace."""
    names = set(names)
    if not names:
        return set()
    return set(_link_names().values()) & names


def links_with_prefix(prefix: str) -> list[str]:
    return [n for n in _link_names().values() if n.startswith(prefix)]


def _link_names() -> dict[int, str]:
    """index -> name of the calling thread's namespace's links: libc's if_nameindex, many
    times cheaper than decoding a full RTM_GETLINK dump with pyroute2."""
    return dict(socket.if_nameindex())


def routed_networks() -> list[tuple[ipaddress.IPv4Network, str]]:
    """(destination, device) of the host's IPv4 routes (every table), default routes
    excepted, plus the networks of the host's addresses (two raw dumps: engine/networks/_rtnl.py)."""
    names = _link_names()
    out = []
    with Rtnl() as rtnl:
        for header, attrs in rtnl.dump(_rtnl.RTM_GETROUTE, b"\x02" + bytes(11)):  # rtmsg, AF_INET
            dst, length = attrs.get(_rtnl.RTA_DST), header[1]
            if dst and length:
                oif = attrs.get(_rtnl.RTA_OIF)
                device = names.get(int.from_bytes(oif, "little"), "") if oif else ""
                out.append((ipaddress.ip_network((socket.inet_ntoa(dst), length), strict=False),
                            device))
        for header, attrs in rtnl.dump(_rtnl.RTM_GETADDR, b"\x02" + bytes(7)):  # ifaddrmsg
            address = attrs.get(_rtnl.IFA_ADDRESS)
            if address and not address.startswith(b"\x7f"):
                index = int.from_bytes(header[4:8], "little")
                out.append((ipaddress.ip_network((socket.inet_ntoa(address), header[1]),
                                                 strict=False), names.get(index, "")))
    return out


def setup_veth(*, host_name: str, master: str | None, pid: int, ifname: str,
               address_cidr: str, gateway: str | None, mac: str, mtu: int = 1500,
               extra_addresses=(), gateway6: str | None = None, isolated: bool = False) -> tuple[int, int]:
    """veth pair: `host_name` on the host (enslaved to `master`, up), its peer created directly
    inside the network namespace of `pid` as `ifname` with `mac` and `mtu` (one RTM_NEWLINK,
    no move), then given `address_cidr` (+ `extra_addresses`: IPv6, link-local) and default
    routes via `gateway`/`gateway6` from inside that namespace. `isolated`: the bridge port
    forwards nothing to other isolated ports (enable_icc=false: containers reach the gateway,
    not each other). All or nothing. Returns the namespace's identity (st_dev, st_ino) for
    `release_veth`."""
    nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(nsfd)
        try:
            master_index = None
            if master:
                master_index = _index(master)
                if master_index is None:
                    raise OSError(errno.ENODEV, f"bridge {master} does not exist")
            with Rtnl() as rtnl:
                rtnl.add_veth(host_name, master_index, mtu, ifname,
                              bytes.fromhex(mac.replace(":", "")) if mac else None, nsfd)
            if isolated:  # IFLA_BRPORT_ISOLATED; sysfs shows the daemon's (host) namespace
                with open(f"/sys/class/net/{host_name}/brport/isolated", "w") as f:
                    f.write("1")
            with in_netns(nsfd):
                _configure_new(ifname, address_cidr, gateway, extra_addresses, gateway6)
        except BaseException:
            delete_link(host_name)  # the container's process is alive: delete explicitly
            raise
        return st.st_dev, st.st_ino
    finally:
        os.close(nsfd)


def _configure_new(ifname: str, address_cidr: str | None, gateway: str | None,
                   extra_addresses=(), gateway6: str | None = None) -> None:
    """In the calling thread's (container's) namespace, for a link just made there with its
    final name: add the addresses (IPv6 without DAD, 169.254/16 with link scope), bring it
    and lo up, add the default routes (what _configure does, in raw messages)."""
    index = _index(ifname)
    if index is None:
        raise OSError(errno.ENODEV, f"interface {ifname} not found in the container's netns")
    addresses = [a for a in (address_cidr, *extra_addresses) if a]
    if any(":" in a for a in addresses) or gateway6:
        _enable_ipv6(ifname)
    with Rtnl() as rtnl:
        for cidr in addresses:
            address, prefix = cidr.split("/")
            flags = IFA_F_NODAD if ":" in address else 0
            scope = RT_SCOPE_LINK if ":" not in address and \
                ipaddress.ip_address(address).is_link_local else 0
            try:
                rtnl.add_address(index, str(ipaddress.ip_address(address)), int(prefix),
                                 flags=flags, scope=scope)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
        rtnl.set_up(index)
        rtnl.set_up(LOOPBACK_IFINDEX)
        for via in (gateway, gateway6):
            if via:
                try:
                    rtnl.add_default_route(index, via)
                except OSError as exc:
                    if exc.errno != errno.EEXIST:
                        raise


def _netns_has_process(ident: tuple[int, int]) -> bool:
    """Is any process (thread group) still in the namespace `ident`? (Another container that
    joined it with --network container:..., a straggler.) Cost: one stat per process."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ident:
            return True
    return False


def release_veth(host_name: str, netns: tuple[int, int] | None) -> str:
    """The container whose namespace (`netns`, from setup_veth) holds the peer of
    `host_name` has stopped. When the namespace dies the kernel destroys the pair by itself,
    so an explicit delete (~20 ms of RCU waits, holding RTNL) is only needed when something
    still lives in it. Returns:

      "gone"      the pair is already gone
      "dying"     the namespace has no reference left; the kernel is removing the pair
      "deleted"   a process still shares the namespace: deleted explicitly
      "lingering" no process left, but something (a socket freed after an RCU grace period,
                  an open nsfs fd) keeps the namespace alive: the caller deletes it later
                  unless it has vanished by then
    """
    index = _index(host_name)
    if index is None:
        return "gone"
    with Rtnl() as rtnl:
        try:
            nsid = rtnl.link_netnsid(index)
            # RTM_GETNSID only finds namespaces with references left: one it no longer
            # finds is being destroyed by the kernel, and the pair with it
            if nsid is not None and nsid >= 0 and not rtnl.netnsid_alive(nsid):
                return "dying"
            if netns is None or _netns_has_process(tuple(netns)):
                rtnl.delete_link(index)
                return "deleted"
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return "gone"  # deleted meanwhile (the name, or the index, is no more)
            raise
        return "lingering"


def move_into_netns(name: str, pid: int) -> None:
    with IPRoute() as ipr:
        index = _lookup(ipr, name)
        if index is None:
            raise OSError(errno.ENODEV, f"interface {name} does not exist")
        ipr.link("set", index=index, net_ns_pid=pid)


def _configure(current: str, ifname: str, address_cidr: str | None, gateway: str | None,
               mac: str | None, mtu: int | None, extra_addresses=(), gateway6: str | None = None) -> None:
    """In the calling thread's (container's) namespace: rename `current` to `ifname`, set MAC
    and MTU if given, add the addresses, bring it and lo up, add the default routes."""
    with IPRoute() as ns:
        index = _lookup(ns, current)
        if index is None:
            raise OSError(errno.ENODEV, f"interface {current} not found in the container's netns")
        changes = {}
        if ifname != current:
            changes["ifname"] = ifname
        if mac:
            changes["address"] = mac
        if mtu:
            changes["mtu"] = mtu
        if changes:
            ns.link("set", index=index, state="down")
            ns.link("set", index=index, **changes)
        addresses = [a for a in (address_cidr, *extra_addresses) if a]
        if any(":" in a for a in addresses) or gateway6:
            _enable_ipv6(ifname)
        for cidr in addresses:
            _add_address(ns, index, cidr)
        ns.link("set", index=index, state="up")
        ns.link("set", index=LOOPBACK_IFINDEX, state="up")
        for dst, via in (("0.0.0.0/0", gateway), ("::/0", gateway6)):
            if not via:
                continue
            try:
                ns.route("add", dst=dst, gateway=via, oif=index)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise


def configure_in_netns(pid: int, current: str, ifname: str, address_cidr: str | None,
                       gateway: str | None, mac: str | None, mtu: int | None = None,
                       extra_addresses=(), gateway6: str | None = None) -> None:
    with in_netns(f"/proc/{pid}/ns/net"):
        _configure(current, ifname, address_cidr, gateway, mac, mtu, extra_addresses, gateway6)


def remove_in_netns(pid: int, ifname: str) -> None:
    """Delete an interface inside a running container (network disconnect)."""
    with in_netns(f"/proc/{pid}/ns/net"):
        with IPRoute() as ns:
            _delete(ns, ifname)


def netns_ifnames(pid: int) -> list[str]:
    with in_netns(f"/proc/{pid}/ns/net"):
        with IPRoute() as ns:
            return [link.get_attr("IFLA_IFNAME") for link in ns.get_links()]

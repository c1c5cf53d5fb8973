"""rtnetlink messages packed by hand, for the steps every container start and stop takes
(veth pair, its addresses and routes, its release) and the route dump of every network
create: pyroute2 decoded each of those in Python for ~0.3-4 ms, holding the GIL the daemon's
event loop needs. Blocking, like engine.networks._netlink (its only user): a socket opened in
the calling thread's network namespace, so one made inside `in_netns` talks to the
container's namespace.

Messages: a 16-byte nlmsghdr, the family's fixed header (ifinfomsg 16, ifaddrmsg 8, rtmsg 12,
rtgenmsg 4 bytes), then attributes (u16 length, u16 type, payload, padded to 4 bytes).
Requests ask for an ACK; a non-zero error code is raised as OSError(errno).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Iterator

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_GETNSID = 90
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000

IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 10, 18
IFLA_NET_NS_FD, IFLA_LINK_NETNSID = 28, 37
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
NETNSA_NSID = 1
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1


def attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + bytes(-len(data) % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def ifinfomsg(index: int = 0, up: bool = False) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index,
                       IFF_UP if up else 0, IFF_UP if up else 0)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def parse_attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    out = {}
    while start + 4 <= end:
        length, kind = struct.unpack_from("=HH", data, start)
        if length < 4:
            break
        out[kind & 0x3FFF] = data[start + 4:start + length]
        start += (length + 3) & ~3
    return out


class Rtnl:
    """One NETLINK_ROUTE socket in the calling thread's network namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self.seq += 1
        self.sock.send(struct.pack("=IHHII", 16 + len(body), kind, flags, self.seq, 0) + body)
        return self.seq

    def _messages(self, seq: int) -> Iterator[tuple[int, bytes, int, int]]:
        """(type, buffer, start of payload, end) of the answers to `seq` until DONE / ACK."""
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _flags, mseq = struct.unpack_from("=IHHI", data, offset)
                if mseq == seq:
                    if kind == NLMSG_DONE:
                        return
                    if kind == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", data, offset + 16)[0]
                        if code:
                            raise OSError(code, os.strerror(code))
                        return  # the ACK
                    yield kind, data, offset + 16, offset + length
                offset += (length + 3) & ~3

    def request(self, kind: int, body: bytes, flags: int = 0) -> None:
        for _ in self._messages(self._send(kind, NLM_F_REQUEST | NLM_F_ACK | flags, body)):
            pass

    def get(self, kind: int, body: bytes, fixed: int) -> tuple[bytes, dict[int, bytes]]:
        """The one answer to a GET request: (fixed header, attributes)."""
        found = None
        for _kind, data, start, end in self._messages(self._send(kind, NLM_F_REQUEST | NLM_F_ACK,
                                                                  body)):
            found = (data[start:start + fixed], parse_attrs(data, start + fixed, end))
        if found is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        return found

    def dump(self, kind: int, body: bytes) -> Iterator[tuple[bytes, dict[int, bytes]]]:
        """(fixed header, attributes) of every message a dump request answers."""
        fixed = len(body)
        for _kind, data, start, end in self._messages(self._send(kind, NLM_F_REQUEST | NLM_F_DUMP,
                                                                 body)):
            yield data[start:start + fixed], parse_attrs(data, start + fixed, end)

    # -- the steps --------------------------------------------------------------------------

    def add_veth(self, host_name: str, master: int | None, mtu: int, peer_name: str,
                 peer_mac: bytes | None, peer_netns_fd: int) -> None:
        """A veth pair: `host_name` here (enslaved to `master`, up), its peer made directly in
        the namespace of `peer_netns_fd` (one RTM_NEWLINK, no move)."""
        peer = [attr(IFLA_IFNAME, _name(peer_name)), attr(IFLA_MTU, _u32(mtu)),
                attr(IFLA_NET_NS_FD, _u32(peer_netns_fd))]
        if peer_mac:
            peer.append(attr(IFLA_ADDRESS, peer_mac))
        attrs = [attr(IFLA_IFNAME, _name(host_name)), attr(IFLA_MTU, _u32(mtu))]
        if master is not None:
            attrs.append(attr(IFLA_MASTER, _u32(master)))
        attrs.append(nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth"),
                            nested(IFLA_INFO_DATA,
                                   nested(VETH_INFO_PEER, ifinfomsg(), *peer))))
        self.request(RTM_NEWLINK, ifinfomsg(up=True) + b"".join(attrs),
                     NLM_F_CREATE | NLM_F_EXCL)

    def add_bridge(self, name: str, mtu: int) -> None:
        self.request(RTM_NEWLINK, ifinfomsg() + attr(IFLA_IFNAME, _name(name))
                     + attr(IFLA_MTU, _u32(mtu))
                     + nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge")),
                     NLM_F_CREATE | NLM_F_EXCL)

    def link_kind(self, index: int) -> str | None:
        """IFLA_INFO_KIND of a link ("bridge", "veth"…), None for a plain device."""
        _header, attrs = self.get(RTM_GETLINK, ifinfomsg(index), 16)
        info = attrs.get(IFLA_LINKINFO)
        kind = parse_attrs(info, 0, len(info)).get(IFLA_INFO_KIND) if info else None
        return kind.rstrip(b"\0").decode() if kind else None

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, ifinfomsg(index, up=True))

    def add_address(self, index: int, address: str, prefixlen: int, *, flags: int = 0,
                    scope: int = 0) -> None:
        """Add an address (EEXIST when it is there)."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        packed = socket.inet_pton(family, address)
        self.request(RTM_NEWADDR, struct.pack("=BBBBI", family, prefixlen, flags, scope, index)
                     + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed),
                     NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, index: int, gateway: str) -> None:
        """A default route via `gateway` out of `index` (as `ip route add default via`)."""
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        self.request(RTM_NEWROUTE, struct.pack("=BBBBBBBBI", family, 0, 0, 0, RT_TABLE_MAIN,
                                               RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
                     + attr(RTA_GATEWAY, socket.inet_pton(family, gateway))
                     + attr(RTA_OIF, _u32(index)), NLM_F_CREATE | NLM_F_EXCL)

    def link_netnsid(self, index: int) -> int | None:
        """IFLA_LINK_NETNSID of a link (where its veth peer lives), None when it has none."""
        _header, attrs = self.get(RTM_GETLINK, ifinfomsg(index), 16)
        value = attrs.get(IFLA_LINK_NETNSID)
        return struct.unpack("=i", value)[0] if value else None

    def netnsid_alive(self, nsid: int) -> bool:
        """False once namespace `nsid` has no reference left (RTM_GETNSID finds live ones)."""
        try:
            self.get(RTM_GETNSID, struct.pack("=B3x", socket.AF_UNSPEC)
                     + attr(NETNSA_NSID, struct.pack("=i", nsid)), 4)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def delete_link(self, index: int) -> None:
        self.request(RTM_DELLINK, ifinfomsg(index))

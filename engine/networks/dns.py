"""Embedded DNS server for user-defined networks: trio UDP on the bridge's gateway address.
A and AAAA queries for container names, aliases, short ids (and, for the asking container
only, its links' aliases) on that network are answered from `lookup(name, client_ip) ->
[address]` (IPv4 and IPv6 mixed; each query type gets its family); anything else is forwarded
to the host's resolvers."""

from __future__ import annotations

import ipaddress
import logging
import os
import struct

import trio

from engine.networks import links

log = logging.getLogger(__name__)

TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
RCODE_SERVFAIL, RCODE_NXDOMAIN = 2, 3


def parse_question(packet: bytes) -> tuple[int, int, str, int, int, int] | None:
    """(id, flags, name, qtype, qclass, end offset) of the first question, None if malformed."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount < 1 or flags & 0x8000:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(packet):
            return None
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0:
            return None
        labels.append(packet[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(packet):
        return None
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return ident, flags, ".".join(labels), qtype, qclass, pos + 4


def build_response(query: bytes, end: int, rcode: int, addresses: list[str]) -> bytes:
    """A reply to `query` with one A/AAAA record per address (the family decides the type)."""
    ident, flags = struct.unpack("!HH", query[:4])
    rd = flags & 0x0100
    out_flags = 0x8000 | 0x0400 | rd | 0x0080 | rcode  # QR, AA, RD copied, RA
    header = struct.pack("!HHHHHH", ident, out_flags, 1, len(addresses), 0, 0)
    answers = b""
    for address in addresses:
        rdata = ipaddress.ip_address(address).packed
        rtype = TYPE_A if len(rdata) == 4 else TYPE_AAAA
        answers += struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, 600, len(rdata)) + rdata
    return header + query[12:end] + answers


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1
            and ":" not in line.split()[1]]


class DnsServer:
    """One per user-defined network. `await nursery.start(server.serve)`."""

    def __init__(self, address: str, lookup, upstreams=None, port: int = 53) -> None:
        self.address, self.port = address, port
        self.lookup = lookup
        self.upstreams = upstreams if upstreams is not None else host_resolvers
        self.queries = 0

    def statistics(self) -> dict:
        return {"address": self.address, "queries": self.queries}

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with sock:
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
            await sock.bind((self.address, self.port))
            task_status.started()
            async with trio.open_nursery() as nursery:
                while True:
                    try:
                        packet, peer = await sock.recvfrom(4096)
                    except OSError:
                        continue
                    self.queries += 1
                    nursery.start_soon(self._answer, sock, packet, peer)

    async def _answer(self, sock, packet: bytes, peer) -> None:
        question = parse_question(packet)
        if question is None:
            return
        _, _, name, qtype, qclass, end = question
        key = name.rstrip(".").lower()
        addresses = self.lookup(key, peer[0]) if qclass == CLASS_IN else []
        if addresses:
            version = {TYPE_A: 4, TYPE_AAAA: 6}.get(qtype)
            wanted = [a for a in addresses if ipaddress.ip_address(a).version == version]
            reply = build_response(packet, end, 0, wanted)
        elif "." not in key and key:
            reply = build_response(packet, end, RCODE_NXDOMAIN, [])  # a bare name we do not know
        else:
            reply = await self._forward(packet) or build_response(packet, end, RCODE_SERVFAIL, [])
        try:
            await sock.sendto(reply, peer)
        except OSError:
            pass

    async def _forward(self, packet: bytes) -> bytes | None:
        for upstream in self.upstreams() if callable(self.upstreams) else self.upstreams:
            with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as up:
                try:
                    await up.connect((upstream, 53))
                    await up.send(packet)
                    with trio.move_on_after(3):
                        return await up.recv(4096)
                except OSError:
                    continue
        return None


class EmbeddedDns:
    """The DNS servers of a NetworkManager: one per user-defined bridge network, run in the
    manager's nursery, answering from `endpoints_on(network id) -> {container id: Endpoint}`."""

    def __init__(self, endpoints_on, upstreams=None) -> None:
        self._endpoints_on = endpoints_on
        self._upstreams = upstreams  # the daemon's --dns; None: the host's resolvers
        self._scopes: dict[str, trio.CancelScope] = {}

    def __len__(self) -> int:
        return len(self._scopes)

    @staticmethod
    def wants(network) -> bool:
        return network.user_defined and network.driver == "bridge" and bool(network.gateway)

    async def start(self, network, nursery: trio.Nursery | None) -> None:
        if not self.wants(network) or nursery is None or network.id in self._scopes:
            return
        port = int(os.environ.get("PYENGINE_DNS_PORT", "53"))
        server = DnsServer(network.gateway, lambda name, client, nid=network.id: self.resolve(nid, name, client),
                           upstreams=self._upstreams, port=port)

        async def serve(*, task_status=trio.TASK_STATUS_IGNORED):
            with trio.CancelScope() as scope:
                self._scopes[network.id] = scope
                try:
                    await server.serve(task_status=task_status)
                finally:
                    self._scopes.pop(network.id, None)

        try:
            await nursery.start(serve)
        except OSError as exc:
            log.warning("embedded DNS for network %s not started: %s", network.name, exc)

    def stop(self, network) -> None:
        scope = self._scopes.pop(network.id, None)
        if scope is not None:
            scope.cancel()

    def resolve(self, network_id: str, name: str, client: str | None = None) -> list[str]:
        """Addresses (both families) of `name` on the network; a link alias of the asking
        container (`client` is its address) stands for the linked container's name."""
        on_network = list(self._endpoints_on(network_id).values())
        if client:
            asking = next((ep for ep in on_network if client in (ep.ip, ep.ip6)), None)
            if asking is not None:
                name = links.resolve_alias(asking.links, name)
        out = []
        for ep in on_network:
            c = ep.container
            if c is None:  # kept from a previous daemon (live restore), not adopted yet
                continue
            names = {c.name.lower().lstrip("/"), c.id[:12], c.id, *(a.lower() for a in ep.aliases)}
            if name in names:
                out.extend(a for a in (ep.ip, ep.ip6) if a)
        return out

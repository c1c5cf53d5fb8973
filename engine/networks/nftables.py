"""One nftables table per daemon, replaced atomically with `nft -f` from a generated ruleset.
Nothing else on the host firewall is touched; the table is deleted at shutdown."""

from __future__ import annotations

import logging

import attrs
import trio

log = logging.getLogger(__name__)


@attrs.define
class NatNetwork:
    bridge: str
    subnet: str
    internal: bool = False
    masquerade: bool = True


@attrs.define
class Dnat:
    proto: str  # tcp | udp
    host_ip: str  # "" or "0.0.0.0" = every local address
    host_port: int
    container_ip: str
    container_port: int


def render(table: str, networks: list[NatNetwork], dnats: list[Dnat]) -> str:
    lines = [f"table inet {table} {{}}", f"delete table inet {table}", f"table inet {table} {{"]
    lines += ["  chain publish {"]
    for d in dnats:
        if d.host_ip.startswith("127."):
            continue  # loopback is served by the userland proxy
        match = "" if d.host_ip in ("", "0.0.0.0") else f"ip daddr {d.host_ip} "
        lines.append(f"    {match}{d.proto} dport {d.host_port} dnat ip to {d.container_ip}:{d.container_port}")
    lines += ["  }"]
    lines += [
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        "    fib daddr type local jump publish",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    for n in networks:
        if n.masquerade and not n.internal:
            lines.append(f'    ip saddr {n.subnet} oifname != "{n.bridge}" masquerade')
    lines += ["  }", "  chain forward {", "    type filter hook forward priority filter; policy accept;"]
    for n in networks:
        if n.internal:
            lines.append(f'    iifname "{n.bridge}" oifname != "{n.bridge}" drop')
            lines.append(f'    oifname "{n.bridge}" iifname != "{n.bridge}" drop')
    lines += ["  }", "}", ""]
    return "\n".join(lines)


class NftTable:
    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = trio.Lock()

    async def apply(self, networks: list[NatNetwork], dnats: list[Dnat]) -> None:
        text = render(self.name, networks, dnats)
        async with self._lock:
            result = await trio.run_process(["nft", "-f", "-"], stdin=text.encode(), capture_stdout=True,
                                            capture_stderr=True, check=False)
        if result.returncode != 0:
            from engine import errors

            raise errors.SystemError_(f"nftables: {result.stderr.decode(errors='replace').strip()}")

    async def delete(self) -> None:
        async with self._lock:
            await trio.run_process(["nft", "delete", "table", "inet", self.name], capture_stdout=True,
                                   capture_stderr=True, check=False)

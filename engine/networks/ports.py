"""Port publishing: parse Docker's PortBindings, bind host ports (the bind is the conflict
check — it fails before the container execs), and a userland proxy (trio TCP/UDP) that
forwards each bound host port to the container; DNAT rules in the nft table serve traffic
from outside."""

from __future__ import annotations

import errno
import logging

import attrs
import trio

from engine import errors

log = logging.getLogger(__name__)


@attrs.define
class Binding:
    proto: str
    container_port: int
    host_ip: str
    host_port: int  # 0 = any
    host_port_end: int = 0  # a range "8000-8010": the first free one

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def _parse_port(key: str) -> tuple[list[int], str]:
    port, _, proto = key.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise errors.InvalidParameter(f"invalid proto: {proto}")
    try:
        if "-" in port:
            a, b = (int(x) for x in port.split("-", 1))
            ports = list(range(a, b + 1))
        else:
            ports = [int(port)]
    except ValueError:
        raise errors.InvalidParameter(f"invalid port: {key}") from None
    if not ports or any(p < 1 or p > 65535 for p in ports):
        raise errors.InvalidParameter(f"invalid port: {key}")
    return ports, proto


def _host_range(text: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
            return a, b
        return int(text), 0
    except ValueError:
        raise errors.InvalidParameter(f"invalid host port: {text}") from None


def bindings_for(config, host) -> list[Binding]:
    """PortBindings, plus every ExposedPort to a random host port with PublishAllPorts.
    `config`, `host`: the container's spec (engine.containers.ContainerConfig, HostConfig)."""
    out: list[Binding] = []
    seen = set()
    for key, entries in host.port_bindings.items():
        ports, proto = _parse_port(key)
        for entry in entries or [None]:
            start, end = _host_range(entry.host_port if entry else "")
            for i, port in enumerate(ports):
                hp = start + i if start and end and len(ports) > 1 else start
                hend = 0 if len(ports) > 1 else end
                out.append(Binding(proto, port, entry.host_ip if entry else "", hp, hend))
                seen.add((port, proto))
    if host.publish_all_ports:
        for key in config.exposed_ports or ():
            ports, proto = _parse_port(key)
            for port in ports:
                if (port, proto) not in seen:
                    out.append(Binding(proto, port, "", 0, 0))
    return out


def validate(host) -> None:
    """The HostConfig's PortBindings (ports and host ports well-formed)."""
    for key, entries in host.port_bindings.items():
        _parse_port(key)
        for entry in entries or ():
            _host_range(entry.host_port)


@attrs.define(eq=False)
class BoundPort:
    binding: Binding
    sock: object  # trio socket, bound (and listening for tcp)
    host_port: int
    scope: trio.CancelScope | None = None


def bind(binding: Binding) -> BoundPort:
    """Bind the host side now (synchronously), so a conflict is reported before the start."""
    import socket as stdsocket

    kind = stdsocket.SOCK_STREAM if binding.proto == "tcp" else stdsocket.SOCK_DGRAM
    ip = binding.host_ip or "0.0.0.0"
    candidates = (range(binding.host_port, binding.host_port_end + 1) if binding.host_port_end
                  else [binding.host_port])
    last: OSError | None = None
    for port in candidates:
        sock = trio.socket.socket(stdsocket.AF_INET, kind)
        try:
            if kind == stdsocket.SOCK_STREAM:
                sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
            sock._sock.bind((ip, port))
            if kind == stdsocket.SOCK_STREAM:
                sock.listen(128)
            return BoundPort(binding, sock, sock.getsockname()[1])
        except OSError as exc:
            sock.close()
            last = exc
    shown = f"{binding.host_port}-{binding.host_port_end}" if binding.host_port_end else str(binding.host_port)
    if last is not None and last.errno == errno.EADDRINUSE:
        raise errors.SystemError_(f"Bind for {ip}:{shown} failed: port is already allocated")
    raise errors.SystemError_(f"Bind for {ip}:{shown} failed: {last}")


async def _pipe(src: trio.SocketStream, dst: trio.SocketStream) -> None:
    try:
        while True:
            data = await src.receive_some(65536)
            if not data:
                break
            await dst.send_all(data)
        await dst.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def _tcp_conn(client: trio.SocketStream, target: tuple[str, int]) -> None:
    async with client:
        try:
            upstream = await trio.open_tcp_stream(*target)
        except OSError:
            return
        async with upstream:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pipe, client, upstream)
                nursery.start_soon(_pipe, upstream, client)


async def proxy(bound: BoundPort, target_ip: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve one bound port until cancelled; closes the socket at the end."""
    target = (target_ip, bound.binding.container_port)
    with trio.CancelScope() as scope:
        bound.scope = scope
        task_status.started()
        try:
            if bound.binding.proto == "tcp":
                listener = trio.SocketListener(bound.sock)
                await trio.serve_listeners(lambda s: _tcp_conn(s, target), [listener])
            else:
                await _udp_proxy(bound.sock, target)
        finally:
            bound.sock.close()


async def _udp_proxy(sock, target: tuple[str, int]) -> None:
    clients: dict = {}
    async with trio.open_nursery() as nursery:
        while True:
            data, peer = await sock.recvfrom(65536)
            upstream = clients.get(peer)
            if upstream is None:
                upstream = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
                await upstream.connect(target)
                clients[peer] = upstream

                async def back(up=upstream, who=peer):
                    with up:
                        while True:
                            with trio.move_on_after(60) as idle:
                                reply = await up.recv(65536)
                            if idle.cancelled_caught:
                                clients.pop(who, None)
                                return
                            await sock.sendto(reply, who)

                nursery.start_soon(back)
            try:
                await upstream.send(data)
            except OSError:
                pass

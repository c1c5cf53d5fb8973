"""Network and endpoint records (attrs). Networks persist as JSON under the data root;
endpoints are runtime state of a running container. NetworkSpec and EndpointSettings are what
the API hands the manager (engine.api.networks turns Docker's JSON into them)."""

from __future__ import annotations

import json
import os
import time

import attrs

from engine.timefmt import format_rfc3339nano


def created_now() -> str:
    """A network's Created: RFC 3339 with nanoseconds, as dockerd writes it."""
    return format_rfc3339nano(time.time_ns(), fixed=True)


@attrs.define
class IpamPool:
    """One IPAM pool as the user gave it (every field optional; Docker shows them as given)."""

    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""
    aux_addresses: dict = attrs.Factory(dict)


def _pools(value) -> list:
    return [p if isinstance(p, IpamPool) else IpamPool(**p) for p in value or []]


@attrs.define
class NetworkSpec:
    name: str
    driver: str = "bridge"
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    enable_ipv6: bool = False
    labels: dict = attrs.Factory(dict)
    options: dict = attrs.Factory(dict)
    ipam_driver: str = "default"
    ipam_options: dict | None = None  # None: not given (inspect shows null; {} when given empty)
    pools: list = attrs.field(factory=list, converter=_pools)
    #: only holds configuration for networks made with `config_from` (no bridge, no endpoints)
    config_only: bool = False
    config_from: str = ""


@attrs.define
class EndpointSettings:
    """A container's wishes for one network (create's EndpointsConfig, connect's body)."""

    aliases: list = attrs.Factory(list)
    links: list = attrs.Factory(list)  # "container:alias", container-local DNS names
    ipv4_address: str = ""
    ipv6_address: str = ""
    link_local_ips: list = attrs.Factory(list)
    mac_address: str = ""
    driver_opts: dict = attrs.Factory(dict)


@attrs.define(eq=False)
class Network:
    id: str
    name: str
    driver: str
    created: str
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    bridge: str = ""
    internal: bool = False
    attachable: bool = False
    builtin: bool = False
    labels: dict = attrs.Factory(dict)
    options: dict = attrs.Factory(dict)
    ipam_options: dict | None = None  # None: not given (inspect shows null; {} when given empty)
    enable_ipv6: bool = False
    subnet6: str = ""
    gateway6: str = ""
    ip_range6: str = ""
    #: the pools as configured (empty when the subnet was picked for the user)
    pools: list = attrs.field(factory=list, converter=_pools)
    config_only: bool = False
    config_from: str = ""  # name of the config-only network this one took its configuration from
    #: the bridge (com.docker.network.bridge.name) was on the host before the network: the
    #: network uses it and never deletes it (dockerd since 1.13)
    bridge_adopted: bool = False

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1]) if self.subnet else 0

    @property
    def prefixlen6(self) -> int:
        return int(self.subnet6.split("/")[1]) if self.subnet6 else 0

    @property
    def reserved(self) -> set[str]:
        """Auxiliary addresses: IPAM never hands them out."""
        return {a for p in self.pools for a in p.aux_addresses.values()}

    @property
    def user_defined(self) -> bool:
        return not self.builtin

    def save(self, directory: str) -> None:
        path = os.path.join(directory, self.id + ".json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(attrs.asdict(self), f)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "Network":
        with open(path) as f:
            return cls(**json.load(f))


@attrs.define(eq=False)
class Endpoint:
    """One container's attachment to one network while it runs."""

    id: str
    network_id: str
    container: object  # engine.containers.model.Container (current name for DNS)
    ifname: str = ""
    ip: str = ""
    prefixlen: int = 0
    gateway: str = ""
    ip6: str = ""
    prefixlen6: int = 0
    gateway6: str = ""
    link_local: list = attrs.Factory(list)
    mac: str = ""
    host_veth: str = ""
    aliases: list = attrs.Factory(list)
    links: dict = attrs.Factory(dict)  # alias → container name (resolvable from this one only)
    ports: list = attrs.Factory(list)  # ports.BoundPort
    driver_state: dict = attrs.Factory(dict)

    def addresses(self) -> list[str]:
        """Every address (CIDR) the container's interface gets."""
        out = [f"{self.ip}/{self.prefixlen}"] if self.ip else []
        if self.ip6:
            out.append(f"{self.ip6}/{self.prefixlen6}")
        for address in self.link_local:
            out.append(address if "/" in address else address + ("/64" if ":" in address else "/16"))
        return out

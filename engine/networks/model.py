"""Network and endpoint records (attrs). Networks persist as JSON under the data root;
endpoints are runtime state of a running container."""

from __future__ import annotations

import json
import os

import attrs


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
    ipam_options: dict = attrs.Factory(dict)

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1]) if self.subnet else 0

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
    mac: str = ""
    host_veth: str = ""
    aliases: list = attrs.Factory(list)
    ports: list = attrs.Factory(list)  # ports.BoundPort
    driver_state: dict = attrs.Factory(dict)

"""Which networks each container is attached to (and with what settings), persisted one JSON
file per container under <data root>/networks/containers, so attachments outlive container
runs and daemon restarts. In memory they are typed (Attachment: a network id and its
EndpointSettings); on disk each one is the record every build so far has written and read:

    {"NetworkID", "Aliases", "Links", "IPAMConfig": {"IPv4Address", "IPv6Address",
     "LinkLocalIPs"} | None, "MacAddress", "DriverOpts"}

(the keys of records written before links/IPv6 existed are a subset; all are read). The
format is kept so that a daemon of an earlier build still reads what this one wrote."""

from __future__ import annotations

import json
import os

import attrs

from engine import errors
from engine.networks import addressing, links
from engine.networks.model import EndpointSettings, Network


@attrs.frozen
class Attachment:
    """A container attached to a network, whether it runs or not (its Endpoint is the
    running side)."""

    network_id: str  # "" until `ref` names a network (dockerd resolves a container's networks at start)
    settings: EndpointSettings = attrs.Factory(EndpointSettings)
    #: The network as the container was created with (or connected to) it: its name, or the
    #: ref given when no network had that name then. A start looks a network that has gone
    #: since up again by it (NetworkManager.resolve). "" in records older than that.
    ref: str = ""


def validate(network: Network, settings: EndpointSettings) -> None:
    """dockerd's refusals of an endpoint's settings on `network` (create, connect)."""
    if network.config_only:
        raise errors.Forbidden(f"network {network.name} is a config-only network: containers cannot attach to it")
    if not network.user_defined:
        if settings.aliases:
            raise errors.InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
        if settings.links:
            raise errors.InvalidParameter("links are supported only for containers in user defined networks")
        if settings.ipv4_address or settings.ipv6_address:
            raise errors.InvalidParameter("user specified IP address is supported on user defined networks only")
    elif (settings.ipv4_address or settings.ipv6_address) and not network.pools:
        raise errors.InvalidParameter("user specified IP address is supported only when connecting to networks with user configured subnets")
    addressing.validate_endpoint(network, settings)
    links.parse_all(settings.links)


def _to_record(att: Attachment) -> dict:
    settings = att.settings
    ipam = {}
    if settings.ipv4_address:
        ipam["IPv4Address"] = settings.ipv4_address
    if settings.ipv6_address:
        ipam["IPv6Address"] = settings.ipv6_address
    if settings.link_local_ips:
        ipam["LinkLocalIPs"] = list(settings.link_local_ips)
    return {"NetworkID": att.network_id, "Aliases": list(settings.aliases), "Links": list(settings.links),
            "IPAMConfig": ipam or None, "MacAddress": settings.mac_address,
            "DriverOpts": dict(settings.driver_opts) or None, **({"Ref": att.ref} if att.ref else {})}


def _from_record(record: dict) -> Attachment:
    ipam = record.get("IPAMConfig") or {}
    settings = EndpointSettings(
        aliases=list(record.get("Aliases") or []), links=list(record.get("Links") or []),
        ipv4_address=ipam.get("IPv4Address") or "", ipv6_address=ipam.get("IPv6Address") or "",
        link_local_ips=list(ipam.get("LinkLocalIPs") or []),
        mac_address=record.get("MacAddress") or "", driver_opts=dict(record.get("DriverOpts") or {}))
    return Attachment(record["NetworkID"], settings, ref=record.get("Ref") or "")


class AttachmentStore:
    """container id → [Attachment]. Blocking file IO: call from worker threads (load at start)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._attachments: dict[str, list[Attachment]] = {}

    def load(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        for entry in os.listdir(self.directory):
            if not entry.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.directory, entry)) as f:
                    records = json.load(f)
                self._attachments[entry.removesuffix(".json")] = [_from_record(r) for r in records]
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                pass

    def get(self, container_id: str) -> list[Attachment]:
        return list(self._attachments.get(container_id, []))

    def save(self, container_id: str, attachments: list[Attachment]) -> None:
        path = os.path.join(self.directory, container_id + ".json")
        if not attachments:
            self._attachments.pop(container_id, None)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return
        self._attachments[container_id] = list(attachments)
        os.makedirs(self.directory, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump([_to_record(a) for a in attachments], f)
        os.replace(path + ".tmp", path)

"""Which networks each container is attached to (and with what settings), persisted one JSON
file per container under <data root>/networks/containers, so attachments outlive container
runs and daemon restarts. Records are plain dicts:

    {"NetworkID", "Aliases", "Links", "IPAMConfig": {"IPv4Address", "IPv6Address",
     "LinkLocalIPs"} | None, "MacAddress", "DriverOpts"}

(the keys of records written before links/IPv6 existed are a subset: `settings()` reads both)."""

from __future__ import annotations

import json
import os

from engine.networks.model import EndpointSettings


def record(network_id: str, settings: EndpointSettings) -> dict:
    ipam = {}
    if settings.ipv4_address:
        ipam["IPv4Address"] = settings.ipv4_address
    if settings.ipv6_address:
        ipam["IPv6Address"] = settings.ipv6_address
    if settings.link_local_ips:
        ipam["LinkLocalIPs"] = list(settings.link_local_ips)
    return {"NetworkID": network_id, "Aliases": list(settings.aliases), "Links": list(settings.links),
            "IPAMConfig": ipam or None, "MacAddress": settings.mac_address,
            "DriverOpts": dict(settings.driver_opts) or None}


def settings(att: dict) -> EndpointSettings:
    ipam = att.get("IPAMConfig") or {}
    return EndpointSettings(aliases=list(att.get("Aliases") or []), links=list(att.get("Links") or []),
                            ipv4_address=ipam.get("IPv4Address") or "", ipv6_address=ipam.get("IPv6Address") or "",
                            link_local_ips=list(ipam.get("LinkLocalIPs") or []),
                            mac_address=att.get("MacAddress") or "", driver_opts=dict(att.get("DriverOpts") or {}))


class AttachmentStore:
    """container id → [record]. Blocking file IO: call from worker threads (load at start)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._records: dict[str, list[dict]] = {}

    def load(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        for entry in os.listdir(self.directory):
            if not entry.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.directory, entry)) as f:
                    self._records[entry.removesuffix(".json")] = json.load(f)
            except (OSError, ValueError):
                pass

    def get(self, container_id: str) -> list[dict]:
        return list(self._records.get(container_id, []))

    def items(self):
        return list(self._records.items())

    def uses(self, network_id: str) -> bool:
        return any(a["NetworkID"] == network_id for atts in self._records.values() for a in atts)

    def save(self, container_id: str, attachments: list[dict]) -> None:
        path = os.path.join(self.directory, container_id + ".json")
        if not attachments:
            self._records.pop(container_id, None)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return
        self._records[container_id] = attachments
        os.makedirs(self.directory, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(attachments, f)
        os.replace(path + ".tmp", path)

"""The project's networks and volumes: created when missing (external ones must exist),
labelled as Docker Compose labels them, removed by `down`."""

from __future__ import annotations

import json


from engine.cli import ClientError

from . import labels as L
from . import tasks
from .errors import ComposeError
from .session import Session


def _ipam(spec: dict | None) -> dict | None:
    if not spec:
        return None
    pools = []
    for cfg in spec.get("config") or []:
        pool = {"Subnet": cfg.get("subnet"), "IPRange": cfg.get("ip_range"),
                "Gateway": cfg.get("gateway"), "AuxiliaryAddresses": cfg.get("aux_addresses")}
        pools.append({k: v for k, v in pool.items() if v})
    return {"Driver": spec.get("driver") or "default", "Config": pools,
            "Options": spec.get("options") or {}}


def ensure_network(s: Session, key: str) -> None:
    """External: it must exist. Else create it; a 409 means it exists (one request instead
    of a look-up first: this is on `up`'s critical path)."""
    project, api = s.project, s.api
    spec = project.networks.get(key) or {}
    name = project.network_name(key)
    if spec.get("external"):
        if api.get_or_none(f"/networks/{name}") is None:
            raise ComposeError(f"network {name} declared as external, but could not be found")
        return
    body = {
        "Name": name, "CheckDuplicate": True, "Driver": spec.get("driver") or "bridge",
        "Options": spec.get("driver_opts") or {}, "Internal": bool(spec.get("internal")),
        "Attachable": bool(spec.get("attachable")), "EnableIPv6": bool(spec.get("enable_ipv6")),
        "Labels": {**(spec.get("labels") or {}), L.PROJECT: project.name, L.NETWORK: key,
                   L.VERSION: L.COMPOSE_VERSION},
    }
    ipam = _ipam(spec.get("ipam"))
    if ipam:
        body["IPAM"] = ipam
    try:
        api.post("/networks/create", body)
    except ClientError as exc:
        if exc.status == 409:  # there already (or created meanwhile by someone else)
            return
        s.progress.update("Network", name, "Error", error=True)
        raise ComposeError(f"network {name}: {exc.message}") from None
    s.progress.update("Network", name, "Creating")
    s.progress.update("Network", name, "Created", done=True)


def ensure_volume(s: Session, key: str) -> None:
    project, api = s.project, s.api
    spec = project.volumes.get(key) or {}
    name = project.volume_name(key)
    existing = api.get_or_none(f"/volumes/{name}")
    if spec.get("external"):
        if existing is None:
            raise ComposeError(f"volume {name} declared as external, but could not be found")
        return
    if existing is not None:
        return
    s.progress.update("Volume", name, "Creating")
    body = {"Name": name, "Driver": spec.get("driver") or "local",
            "DriverOpts": spec.get("driver_opts") or {},
            "Labels": {**(spec.get("labels") or {}), L.PROJECT: project.name, L.VOLUME: key,
                       L.VERSION: L.COMPOSE_VERSION}}
    try:
        api.post("/volumes/create", body)
    except ClientError as exc:
        s.progress.update("Volume", name, "Error", error=True)
        raise ComposeError(f"volume {name}: {exc.message}") from None
    s.progress.update("Volume", name, "Created", done=True)


def used_by(s: Session, services: list[str]) -> tuple[list[str], list[str]]:
    """(network keys, named volume keys) the given services use."""
    nets: list[str] = []
    vols: list[str] = []
    for name in services:
        svc = s.project.services[name]
        for key in svc.networks:
            if key not in nets:
                nets.append(key)
        for vol in svc.config["volumes"]:
            if vol["type"] == "volume" and vol.get("source") and vol["source"] not in vols:
                vols.append(vol["source"])
    return nets, vols


def ensure_resources(s: Session, services: list[str]) -> None:
    nets, vols = used_by(s, services)
    with tasks.TaskGroup() as nursery:
        for key in nets:
            nursery.start_soon(ensure_network, s, key)
        for key in vols:
            nursery.start_soon(ensure_volume, s, key)


def _labelled(s: Session, kind: str) -> list[str]:
    """Names of the networks/volumes labelled with the project (for a file-less project)."""
    found = s.api.get(f"/{kind}", params={"filters": json.dumps(
        {"label": [f"{L.PROJECT}={s.project.name}"]})})
    items = found.get("Volumes") or [] if kind == "volumes" else found
    return [item["Name"] for item in items or []]


def _remove_project_objects(s: Session, kind: str, label: str, declared: dict, name_of) -> None:
    """Remove the project's networks or volumes concurrently: those the files declare (not
    external), or — with no file — those carrying the project's label."""

    def remove(key: str) -> None:
        name = name_of(key) if key in declared else key
        try:
            s.api.delete(f"/{kind}/{name}")
        except ClientError as exc:
            if not exc.not_found:
                s.progress.update(label, name, exc.message, error=True)
            return
        s.progress.update(label, name, "Removed", done=True)

    keys = [k for k, spec in declared.items() if not spec.get("external")]
    if not s.project.config_files:
        keys = _labelled(s, kind)
    with tasks.TaskGroup() as nursery:
        for key in keys:
            nursery.start_soon(remove, key)


def remove_networks(s: Session) -> None:
    _remove_project_objects(s, "networks", "Network", s.project.networks, s.project.network_name)


def remove_volumes(s: Session) -> None:
    _remove_project_objects(s, "volumes", "Volume", s.project.volumes, s.project.volume_name)

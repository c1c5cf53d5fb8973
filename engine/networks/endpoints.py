"""Live restore: the endpoints of running containers on disk (<networks>/endpoints/<id>.json),
so a restarted daemon keeps their addresses, veths and published ports (DNAT rules at once;
the 127.0.0.1 proxies once the container is adopted). Blocking file IO: call from threads."""

from __future__ import annotations

import json
import os

import attrs

from engine.networks import ports
from engine.networks.model import Endpoint

_RUNTIME_FIELDS = ("container", "ports", "driver_state")


def save(directory: str, container_id: str, eps: dict[str, Endpoint] | None) -> None:
    """Record the container's endpoints (none: forget them). Atomic."""
    path = os.path.join(directory, container_id + ".json")
    if not eps:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    records = []
    for ep in eps.values():
        record = attrs.asdict(ep, filter=lambda a, _v: a.name not in _RUNTIME_FIELDS)
        record["route"] = ep.driver_state.get("route", True)
        record["ports"] = [{"binding": attrs.asdict(b.binding), "host_port": b.host_port} for b in ep.ports]
        records.append(record)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(records, f)
    os.replace(tmp, path)


def load_live(directory: str, live: set[str], networks) -> dict[str, dict[str, Endpoint]]:
    """Endpoints of the containers in `live` (container id → network id → Endpoint, without
    their container until it is adopted; ports bound to no socket yet). Records of the
    others are removed."""
    os.makedirs(directory, exist_ok=True)
    out: dict[str, dict[str, Endpoint]] = {}
    for entry in os.listdir(directory):
        cid = entry.removesuffix(".json")
        path = os.path.join(directory, entry)
        records = None
        if cid in live and entry.endswith(".json"):
            try:
                with open(path) as f:
                    records = json.load(f)
            except (OSError, ValueError):
                records = None
        if not records:
            os.unlink(path)
            continue
        eps = {}
        for record in records:
            if record["network_id"] not in networks:
                continue
            route = record.pop("route", True)
            bound = [ports.BoundPort(ports.Binding(**p["binding"]), None, p["host_port"]) for p in record.pop("ports")]
            ep = Endpoint(container=None, **record)
            ep.ports = bound
            ep.driver_state["route"] = route
            eps[ep.network_id] = ep
        out[cid] = eps
    return out


def rebind(bound: ports.BoundPort) -> None:
    """Bind a kept published port's host side again (its proxy died with the old daemon)."""
    bound.sock = ports.bind(attrs.evolve(bound.binding, host_port=bound.host_port, host_port_end=0)).sock

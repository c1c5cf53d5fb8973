"""Docker's /networks routes: list, inspect, create, connect, disconnect, remove, prune."""

from __future__ import annotations

from engine import errors
from engine.api._request import Request
from engine.api._responses import empty, json_response
from engine.api._router import Router

router = Router()

_FILTERS = {"name", "id", "driver", "label", "type", "scope", "dangling"}


def _label_match(labels: dict, wanted: str) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _matches(network, filters: dict, manager) -> bool:
    for key, values in filters.items():
        if key not in _FILTERS:
            raise errors.InvalidParameter(f"invalid filter '{key}'")
        if not values:
            continue
        if key == "name" and not any(v in network.name for v in values):
            return False
        if key == "id" and not any(network.id.startswith(v) for v in values):
            return False
        if key == "driver" and network.driver not in values:
            return False
        if key == "label" and not all(_label_match(network.labels, v) for v in values):
            return False
        if key == "scope" and "local" not in values:
            return False
        if key == "type":
            for v in values:
                if v not in ("custom", "builtin"):
                    raise errors.InvalidParameter(f"invalid filter: 'type'='{v}'")
            if ("builtin" if network.builtin else "custom") not in values:
                return False
        if key == "dangling":
            want = values[0] in ("true", "1")
            if want != (not network.builtin and not manager.in_use(network)):
                return False
    return True


@router.get("/networks")
async def list_networks(req: Request):
    manager = req.daemon.networks
    filters = req.query.filters()
    out = [manager.network_shape(n) for n in manager.all() if _matches(n, filters, manager)]
    out.sort(key=lambda n: n["Name"])
    return json_response(out)


@router.get("/networks/{id}")
async def inspect_network(req: Request):
    manager = req.daemon.networks
    return json_response(manager.network_shape(manager.get(req.params["id"])))


@router.post("/networks/create")
async def create_network(req: Request):
    body = await req.json(default=None)
    if not isinstance(body, dict):
        raise errors.InvalidParameter("network create needs a JSON object body")
    network, warning = await req.daemon.networks.create(body)
    return json_response({"Id": network.id, "Warning": warning}, status=201)


@router.delete("/networks/{id}")
async def remove_network(req: Request):
    await req.daemon.networks.remove(req.params["id"])
    return empty(204)


def _running_pid(daemon, container) -> int | None:
    sup = daemon.containers.supervisor(container)
    run = sup.run
    if run is None or not container.state.status.is_live():
        return None
    return run.process.pid


@router.post("/networks/{id}/connect")
async def connect(req: Request):
    body = await req.json(default=None) or {}
    ref = body.get("Container") or ""
    if not ref:
        raise errors.InvalidParameter("no container specified")
    daemon = req.daemon
    container = daemon.containers.get(ref)
    await daemon.networks.connect(req.params["id"], container, _running_pid(daemon, container),
                                  body.get("EndpointConfig"))
    return empty(200)


@router.post("/networks/{id}/disconnect")
async def disconnect(req: Request):
    body = await req.json(default=None) or {}
    ref = body.get("Container") or ""
    if not ref:
        raise errors.InvalidParameter("no container specified")
    daemon = req.daemon
    container = daemon.containers.get(ref)
    await daemon.networks.disconnect(req.params["id"], container, bool(body.get("Force")))
    return empty(200)


@router.post("/networks/prune")
async def prune(req: Request):
    manager = req.daemon.networks
    filters = req.query.filters()
    labels = filters.get("label") or []
    labels_not = filters.get("label!") or []

    def keep(network) -> bool:
        if labels and not all(_label_match(network.labels, v) for v in labels):
            return True
        if labels_not and any(_label_match(network.labels, v) for v in labels_not):
            return True
        return False

    removed = await manager.prune(keep)
    return json_response({"NetworksDeleted": removed or None})

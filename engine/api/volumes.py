"""Docker's /volumes routes: list, create, inspect, remove, prune."""

from __future__ import annotations

from engine import errors
from engine.api._request import Request
from engine.api._responses import empty, json_response
from engine.api._router import Router

router = Router()


def _manager(req: Request):
    return req.daemon.volumes


@router.get("/volumes")
async def list_volumes(req: Request):
    manager = _manager(req)
    filters = req.query.filters()
    volumes = [v for v in manager.all() if manager.matches(v, filters)]
    out = [await manager.shape(v) for v in sorted(volumes, key=lambda v: v.name)]
    return json_response({"Volumes": out, "Warnings": []})


@router.post("/volumes/create")
async def create_volume(req: Request):
    body = await req.json(default=None)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise errors.InvalidParameter("volume create needs a JSON object body")
    for field in ("DriverOpts", "Labels"):
        if body.get(field) is not None and not isinstance(body[field], dict):
            raise errors.InvalidParameter(f"{field} must be a JSON object")
    manager = _manager(req)
    volume = await manager.create(body.get("Name") or "", body.get("Driver") or "local",
                                  body.get("DriverOpts") or {}, body.get("Labels") or {})
    return json_response(await manager.shape(volume), status=201)


@router.post("/volumes/prune")
async def prune_volumes(req: Request):
    return json_response(await _manager(req).prune(req.query.filters(), req.api_version))


@router.get("/volumes/{name}")
async def inspect_volume(req: Request):
    manager = _manager(req)
    return json_response(await manager.shape(manager.get(req.params["name"])))


@router.delete("/volumes/{name}")
async def remove_volume(req: Request):
    await _manager(req).remove(req.params["name"], force=req.query.bool("force"))
    return empty(204)

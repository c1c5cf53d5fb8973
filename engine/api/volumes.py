"""Docker's /volumes routes: list, create, inspect, remove, prune."""

from __future__ import annotations

from engine.api import _filters as filters_api
from engine.api._gotypes import expect, str_map
from engine.api._request import Request
from engine.api._responses import empty, json_response
from engine.api._router import Router
from engine.volumes import MountPoint, Volume, VolumeStatus
from engine.filters import label_matches

router = Router()

_LIST_FILTERS = {"dangling": filters_api.boolean, "name": None, "label": None, "driver": None}
_PRUNE_FILTERS = {"label": None, "label!": None}


def _manager(req: Request):
    return req.daemon.volumes


def volume_shape(volume: Volume, status: VolumeStatus) -> dict:
    """Docker's Volume JSON."""
    out = {"CreatedAt": volume.created_at, "Driver": volume.driver, "Labels": volume.labels or None,
           "Mountpoint": status.mountpoint, "Name": volume.name, "Options": volume.options or None,
           "Scope": "local"}
    if status.error:
        out["Status"] = {"Error": status.error}
    elif status.status:
        out["Status"] = status.status
    return out


def mount_point_shape(point: MountPoint) -> dict:
    """A volume's entry in container inspect's Mounts."""
    return {"Type": "volume", "Name": point.name, "Source": point.source, "Destination": point.destination,
            "Driver": point.driver, "Mode": point.mode, "RW": point.rw, "Propagation": ""}


def _matches(manager, volume: Volume, filters: dict) -> bool:
    for key, values in (filters or {}).items():
        if not values:
            continue
        if key == "name" and not any(v in volume.name for v in values):
            return False
        if key == "driver" and volume.driver not in values:
            return False
        if key == "label" and not all(label_matches(volume.labels, v) for v in values):
            return False
        if key == "dangling" and filters_api.truthy(values) != (not manager.users(volume.name)):
            return False
    return True


@router.get("/volumes")
async def list_volumes(req: Request):
    manager = _manager(req)
    filters = req.query.filters(_LIST_FILTERS)
    volumes = [v for v in manager.all() if _matches(manager, v, filters)]
    out = [volume_shape(v, await manager.status(v)) for v in sorted(volumes, key=lambda v: v.name)]
    return json_response({"Volumes": out, "Warnings": []})


@router.post("/volumes/create")
async def create_volume(req: Request):
    body = await req.json_object("volume.VolumeCreateBody")
    name = expect(body.get("Name"), str, "VolumeCreateBody.Name", "")
    driver = expect(body.get("Driver"), str, "VolumeCreateBody.Driver", "") or "local"
    options = str_map(body.get("DriverOpts"), "VolumeCreateBody.DriverOpts")
    labels = str_map(body.get("Labels"), "VolumeCreateBody.Labels")
    manager = _manager(req)
    volume = await manager.create(name, driver, options, labels)
    return json_response(volume_shape(volume, await manager.status(volume)), status=201)


@router.post("/volumes/prune")
async def prune_volumes(req: Request):
    # API 1.41: every unused volume (1.42 narrowed it to anonymous ones unless all=true; dockerd
    # 20.10 refuses an `all` filter as unknown).
    selected = filters_api.prune_filters(req.query.filters(_PRUNE_FILTERS))
    report = await _manager(req).prune(selected)
    return json_response({"VolumesDeleted": list(report.deleted) or None, "SpaceReclaimed": report.space_reclaimed})


@router.get("/volumes/{name}")
async def inspect_volume(req: Request):
    manager = _manager(req)
    volume = manager.get(req.params["name"])
    return json_response(volume_shape(volume, await manager.status(volume)))


@router.delete("/volumes/{name}")
async def remove_volume(req: Request):
    await _manager(req).remove(req.params["name"], force=req.query.bool("force"))
    return empty(204)

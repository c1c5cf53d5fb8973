"""Docker's managed-plugin routes (/plugins…) on an engine that has none: lists are empty and
lookups 404 as on a dockerd with no plugin installed; installing or creating one is refused
with 501 and a message saying so. (Legacy plugins — sockets in the plugin directories —
still serve network and volume drivers: engine/plugins.py.)"""

from __future__ import annotations

from engine import errors
from engine.api import _filters as filters_api
from engine.api._request import Request
from engine.api._responses import json_response
from engine.api._router import Router

router = Router()

NOT_SUPPORTED = (
    "pyengine does not support managed plugins (docker plugin install/create/upgrade); "
    "legacy plugins are used through their sockets in /run/docker/plugins"
)
LIST_FILTERS = {"capability": None, "enable": filters_api.one_of(("true", "false"))}


def not_found(name: str) -> errors.NotFound:
    return errors.NotFound(f'plugin "{name}" not found')


@router.get("/plugins")
async def list_plugins(req: Request):
    req.query.filters(LIST_FILTERS)  # checked as dockerd does: there is no plugin to match
    return json_response([])


async def unsupported(req: Request):
    # `docker plugin create` uploads the plugin's rootfs as the body: take it all (discarded)
    # before answering, or the CLI reports a broken pipe next to our error.
    async for _ in req.stream():
        pass
    raise errors.NotSupported(NOT_SUPPORTED)


for _method, _path in (("GET", "/plugins/privileges"), ("POST", "/plugins/pull"), ("POST", "/plugins/create")):
    router.add(_method, _path, unsupported)


async def no_such_plugin(req: Request):
    raise not_found(req.params["name"])


router.add("GET", "/plugins/{name:path}/json", no_such_plugin)
router.add("DELETE", "/plugins/{name:path}", no_such_plugin)
for _verb in ("enable", "disable", "push", "set", "upgrade"):
    router.add("POST", "/plugins/{name:path}/" + _verb, no_such_plugin)

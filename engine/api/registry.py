"""Docker's routes that talk to a registry and to no image in the store: /images/search,
/auth (login) and /distribution/{name}/json; and the X-Registry-Auth header pulls and pushes
send."""

from __future__ import annotations

import json

from engine import errors
from engine.api import _filters as filters_api
from engine.api._request import Request
from engine.api._responses import json_response
from engine.api._router import Router

__all__ = ["registry_auth", "router"]

router = Router()


def registry_auth(req: Request) -> dict | None:
    from engine.images import decode_auth_header

    return decode_auth_header(req.headers.get("X-Registry-Auth"))


_SEARCH_FILTERS = {"is-automated": filters_api.one_of(("true", "false"), "Invalid filter '{key}=[{value}]'"),
                   "is-official": filters_api.one_of(("true", "false"), "Invalid filter '{key}=[{value}]'"),
                   "stars": filters_api.integer("Invalid filter '{key}={value}'")}


@router.get("/images/search")
async def search(req: Request):
    from engine.images import search_index

    filters = req.query.filters(_SEARCH_FILTERS)
    limit = req.query.int("limit", 0) or 25
    if not 1 <= limit <= 100:
        raise errors.InvalidParameter(f"Limit {limit} is outside the range of [1, 100]")
    results = await search_index(req.query.get("term") or "", limit, registry_auth(req),
                                 req.daemon.images.registry_policy)
    stars = max((int(v) for v in filters.get("stars", ())), default=0)
    out = []
    for r in results:
        if "is-automated" in filters and r.is_automated != filters_api.truthy(filters["is-automated"]):
            continue
        if "is-official" in filters and r.is_official != filters_api.truthy(filters["is-official"]):
            continue
        if r.star_count < stars:
            continue
        out.append({"star_count": r.star_count, "is_official": r.is_official, "name": r.name,
                    "is_automated": r.is_automated, "description": r.description})
    return json_response(out)


@router.post("/auth")
async def auth(req: Request):
    from engine.images import Registry

    body = await req.json(default={}) or {}
    if not isinstance(body, dict):
        raise errors.InvalidParameter("invalid auth configuration")
    server = body.get("serveraddress") or "https://index.docker.io/v1/"
    async with Registry(server, body, policy=req.daemon.images.registry_policy) as registry:
        try:
            await registry.ping()
        except errors.Unauthorized as e:
            raise errors.Unauthorized(e.message) from None
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})


@router.get("/distribution/{name:path}/json")
async def distribution(req: Request):
    from engine.images import INDEX_TYPES, Registry, parse_reference

    ref = parse_reference(req.params["name"])
    async with Registry(ref.domain, registry_auth(req), policy=req.daemon.images.registry_policy) as registry:
        body, media, digest = await registry.get_manifest(ref.path, ref.digest or ref.tag)
        manifest = json.loads(body)
        platforms = []
        if media in INDEX_TYPES:
            platforms = [m.get("platform") or {} for m in manifest.get("manifests", [])]
        else:  # one image: its platform is in its config blob (same session, same token)
            try:
                cfg_digest = manifest["config"]["digest"]
                cfg = json.loads((await registry.request("GET", ref.path, f"/blobs/{cfg_digest}")).content)
                platforms = [{"architecture": cfg.get("architecture", ""), "os": cfg.get("os", "")}]
            except (KeyError, ValueError):
                pass
    return json_response({"Descriptor": {"mediaType": media, "digest": digest, "size": len(body)},
                          "Platforms": platforms})

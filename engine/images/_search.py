"""`docker search`: a registry index's v1 search API, as dockerd asks it.

The term names the index the way an image reference names its registry ("127.0.0.1:5000/app"
searches that host for "app"; anything else searches Docker Hub's index.docker.io); loopback
and PYENGINE_INSECURE_REGISTRIES hosts are asked over plain http, as for pulls.
"""

from __future__ import annotations

import attrs
import httpx

from engine.errors import InvalidParameter

from ._reference import DEFAULT_DOMAIN
from ._registry import DEFAULT_POLICY, Registry, RegistryError, RegistryPolicy, transport_error

__all__ = ["SearchResult", "search_index", "split_search_term"]

HUB_INDEX = "index.docker.io"


@attrs.frozen
class SearchResult:
    name: str
    description: str = ""
    star_count: int = 0
    is_official: bool = False
    is_automated: bool = False


def split_search_term(term: str) -> tuple[str, str]:
    """(index host, what to search for there), as dockerd splits a search term."""
    if "://" in term:
        raise InvalidParameter(f"invalid repository name (ex: \"registry.domain.tld/myrepos\"): {term}")
    first, slash, rest = term.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DEFAULT_DOMAIN, term


async def search_index(term: str, limit: int, auth: dict | None,
                       policy: RegistryPolicy = DEFAULT_POLICY) -> list[SearchResult]:
    index, remote = split_search_term(term)
    if index == DEFAULT_DOMAIN:
        host, remote = HUB_INDEX, remote.removeprefix("library/")
    else:
        host = index
    url = f"{'http' if policy.is_insecure(host) else 'https'}://{host}/v1/search"
    async with Registry(index, auth, policy=policy) as registry:
        headers = {}
        if (basic := registry.basic_authorization()) is not None:
            headers["Authorization"] = basic
        try:
            resp = await registry.client.get(url, params={"q": remote, "n": str(limit)}, headers=headers)
        except httpx.TransportError as exc:
            raise transport_error("GET", f"{url}?q={remote}&n={limit}", exc) from None
    if resp.status_code != 200:
        raise RegistryError(f"Unexpected status code {resp.status_code}")
    try:
        found = resp.json().get("results") or []
    except (ValueError, AttributeError):
        raise RegistryError(f"{url}: not a search answer") from None
    return [SearchResult(name=str(r.get("name", "")), description=str(r.get("description") or ""),
                         star_count=int(r.get("star_count") or 0), is_official=bool(r.get("is_official")),
                         is_automated=bool(r.get("is_automated")))
            for r in found if isinstance(r, dict)]

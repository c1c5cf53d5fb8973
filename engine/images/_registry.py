"""A client for one registry (the distribution spec, v2 API) over httpx's async client
(trio through anyio).

    registry = Registry("127.0.0.1:5000", auth)          # auth: X-Registry-Auth's dict or None
    await registry.ping()                                  # login: raises Unauthorized
    resp = await registry.request("GET", "team/app", "/manifests/1.0", actions="pull", ...)

Auth: a 401 answer's WWW-Authenticate picks the scheme. Basic → the credentials go on the
request; Bearer → a token from the realm (GET with basic credentials, or POST with the
identity token as a refresh token), cached per scope, and the request is sent again once.
Loopback and localhost registries, and those of the daemon's --insecure-registry
(`RegistryPolicy`; also PYENGINE_INSECURE_REGISTRIES), speak plain http, as dockerd's.
Idempotent requests are retried with back-off on connection errors and 5xx answers."""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import logging
import json
import os
import re
import socket

import attrs
import httpx
import trio

from engine.errors import EngineError, InvalidParameter, NotFound, Unauthorized

from ._reference import DEFAULT_DOMAIN

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_ACCEPT = ", ".join((MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST))
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)

_RETRIES = 3
logging.getLogger("httpx").setLevel(logging.WARNING)
_USER_AGENT = "pyengine/0.1 (docker-compatible; go-http-client-like)"


class RegistryError(EngineError):
    """The registry answered with an error (its status, when it maps)."""

    def __init__(self, message: str, status: int = 500):
        super().__init__(message)
        self.status = status


def decode_auth_header(value: str | None) -> dict | None:
    """X-Registry-Auth: base64url(JSON) → dict (None when absent or empty)."""
    if not value:
        return None
    try:
        padded = value + "=" * (-len(value) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        try:
            data = json.loads(base64.b64decode(value + "=" * (-len(value) % 4)))
        except (ValueError, TypeError):
            raise InvalidParameter("invalid X-Registry-Auth header") from None
    return data if isinstance(data, dict) and any(data.values()) else None


def normalize_server(server: str) -> str:
    """"https://index.docker.io/v1/", "http://127.0.0.1:5000/v2/" → registry host."""
    s = (server or "").strip()
    s = re.sub(r"^[a-z]+://", "", s).split("/", 1)[0]
    if s in ("", "index.docker.io", "registry-1.docker.io", "docker.io"):
        return DEFAULT_DOMAIN
    return s


@attrs.frozen
class RegistryPolicy:
    """The daemon's --insecure-registry entries: "host[:port]" names or CIDRs (an IP-literal
    registry in one of them is spoken to over http); its Docker Hub mirrors; how many layers
    a pull or push moves at once."""

    insecure: tuple[str, ...] = ()
    # --registry-mirror URLs ("https://mirror.corp/"), tried in order for Docker Hub's images
    mirrors: tuple[str, ...] = ()
    max_downloads: int = 3  # layers at once per pull (--max-concurrent-downloads)
    max_uploads: int = 3  # per push

    def is_insecure(self, host: str) -> bool:
        extra = {h.strip() for h in os.environ.get("PYENGINE_INSECURE_REGISTRIES", "").split(",") if h.strip()}
        if host in extra or host in self.insecure:
            return True
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.endswith("]") or "]:" in host else host
        name = name.strip("[]")
        if name == "localhost" or name.endswith(".localhost") or name in self.insecure:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return address.is_loopback or any(address in net for net in self.cidrs())

    def cidrs(self) -> list:
        out = []
        for entry in self.insecure:
            if "/" in entry:
                try:
                    out.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    pass
        return out

    def hostnames(self) -> list[str]:
        return [entry for entry in self.insecure if "/" not in entry]


DEFAULT_POLICY = RegistryPolicy()


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class Registry:
    def __init__(self, host: str, auth: dict | None = None, timeout: float = 60.0,
                 policy: RegistryPolicy = DEFAULT_POLICY, mirror: str | None = None):
        """`mirror`: a --registry-mirror URL serving `host`'s repositories (Docker Hub's)."""
        self.host = normalize_server(host)
        endpoint = "registry-1.docker.io" if self.host == DEFAULT_DOMAIN else self.host
        scheme = "http" if policy.is_insecure(self.host) else "https"
        self.base = mirror.rstrip("/") if mirror else f"{scheme}://{endpoint}"
        self.auth = auth or {}
        self._tokens: dict[str, str] = {}  # scope → "Bearer …" / "Basic …"
        self._challenge: tuple[str, dict] | None = None
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=15.0),
                                        follow_redirects=True, headers={"User-Agent": _USER_AGENT})

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self.client.aclose()

    async def __aenter__(self) -> "Registry":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # ---------- auth ----------

    def basic_authorization(self) -> str | None:
        """"Basic …" from the request's credentials; None without a user name."""
        user, password = self.auth.get("username"), self.auth.get("password")
        if not user and self.auth.get("auth"):
            try:
                user, _, password = base64.b64decode(self.auth["auth"]).decode().partition(":")
            except ValueError:
                return None
        if not user:
            return None
        return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()

    async def _authorize(self, challenge: str, scope: str) -> str:
        scheme, params = _parse_challenge(challenge)
        self._challenge = (scheme, params)
        if scheme == "basic":
            basic = self.basic_authorization()
            if basic is None:
                raise Unauthorized("unauthorized: authentication required")
            return basic
        if scheme != "bearer" or "realm" not in params:
            raise Unauthorized(f"unsupported authentication challenge {challenge!r}")
        if self.auth.get("registrytoken"):
            return "Bearer " + self.auth["registrytoken"]
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        headers = {}
        if self.auth.get("identitytoken"):
            form = {"grant_type": "refresh_token", "refresh_token": self.auth["identitytoken"],
                    "service": params.get("service", ""), "client_id": "pyengine"}
            if scope:
                form["scope"] = scope
            resp = await self.client.post(params["realm"], data=form)
        else:
            basic = self.basic_authorization()
            if basic:
                headers["Authorization"] = basic
            resp = await self.client.get(params["realm"], params=query, headers=headers)
        if resp.status_code in (401, 403):
            raise Unauthorized(f"unauthorized: {_error_text(resp) or 'incorrect username or password'}")
        if resp.status_code >= 400:
            raise RegistryError(f"token server {params['realm']} answered {resp.status_code}: {_error_text(resp)}")
        try:
            body = resp.json()
        except ValueError:
            raise RegistryError("token server sent invalid JSON") from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError("token server sent no token")
        return "Bearer " + token

    # ---------- requests ----------

    def url(self, repo: str | None, path: str) -> str:
        return f"{self.base}/v2/{repo}{path}" if repo else f"{self.base}/v2{path}"

    async def request(self, method: str, repo: str | None, path: str, *, actions: str = "pull",
                      headers: dict | None = None, content=None, params: dict | None = None,
                      stream: bool = False, url: str | None = None, ok=(200,)) -> httpx.Response:
        """Send with auth and retries. `content` must be bytes (or None) unless the auth for
        this scope is already settled (uploads: the POST before it does that). A status not in
        `ok` raises; with stream=True the caller closes the response (`await resp.aclose()`)."""
        scope = f"repository:{repo}:{actions}" if repo else ""
        target = url or self.url(repo, path)
        if url and params:  # keep the upload location's own query (_state=…)
            target = str(httpx.URL(target).copy_merge_params(params))
            params = None
        replayable = content is None or isinstance(content, (bytes, bytearray))
        attempt = 0
        authed = False
        while True:
            hdrs = dict(headers or {})
            if scope in self._tokens:
                hdrs["Authorization"] = self._tokens[scope]
            try:
                req = self.client.build_request(method, target, headers=hdrs, content=content, params=params)
                resp = await self.client.send(req, stream=True)
            except httpx.TransportError as e:
                attempt += 1
                if attempt >= _RETRIES or not replayable or method not in ("GET", "HEAD"):
                    raise transport_error(method, target, e) from None
                await trio.sleep(0.2 * 2 ** attempt)
                continue
            if resp.status_code == 401 and not authed and replayable:
                challenge = resp.headers.get("www-authenticate", "")
                await resp.aclose()
                self._tokens[scope] = await self._authorize(challenge, scope)
                authed = True
                continue
            if resp.status_code >= 500 and method in ("GET", "HEAD") and attempt + 1 < _RETRIES:
                await resp.aclose()
                attempt += 1
                await trio.sleep(0.2 * 2 ** attempt)
                continue
            if resp.status_code not in ok:
                if method != "HEAD":
                    await resp.aread()
                await resp.aclose()
                raise _status_error(resp, method, target)
            if not stream:
                await resp.aread()
                await resp.aclose()
            return resp

    async def ping(self) -> None:
        """GET /v2/ with the credentials (login). Raises Unauthorized when they are refused."""
        try:
            resp = await self.client.get(self.url(None, "/"))
        except httpx.TransportError as e:
            raise transport_error("GET", self.url(None, "/"), e) from None
        if resp.status_code == 200:
            if self.basic_authorization() is None:
                return
            # open registry: nothing to check the credentials against
            return
        if resp.status_code != 401:
            raise RegistryError(f"login attempt to {self.url(None, '/')} failed with status: {resp.status_code}")
        auth = await self._authorize(resp.headers.get("www-authenticate", ""), "")
        resp = await self.client.get(self.url(None, "/"), headers={"Authorization": auth})
        if resp.status_code != 200:
            raise Unauthorized(f"login attempt to {self.url(None, '/')} failed with status: "
                               f"{resp.status_code} {resp.reason_phrase}")

    # ---------- helpers for the distribution calls ----------

    async def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest by tag or digest."""
        resp = await self.request("GET", repo, f"/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        body = resp.content
        import hashlib

        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"manifest digest mismatch: asked {reference}, got {digest}")
        media = resp.headers.get("content-type", "").split(";")[0].strip()
        if media not in (MEDIA_OCI_MANIFEST, MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_LIST):
            try:
                media = json.loads(body).get("mediaType") or media
            except ValueError:
                pass
        return body, media, digest

    async def blob_exists(self, repo: str, digest: str, actions: str = "pull") -> bool:
        try:
            await self.request("HEAD", repo, f"/blobs/{digest}", actions=actions)
            return True
        except NotFound:
            return False
        except RegistryError as e:
            if e.status == 404:
                return False
            raise


async def download(url: str, path: str, timeout: float = 60.0) -> float | None:
    """GET `url` into the file `path` (`docker import` of a URL, a Dockerfile's ADD of one,
    a remote build context). Returns the Last-Modified time it came with (ADD gives the
    file that mtime), if any. RegistryError in dockerd's words when it cannot be had."""
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=15.0), follow_redirects=True,
                                     headers={"User-Agent": _USER_AGENT}) as client:
            async with client.stream("GET", url) as resp:
                if resp.status_code >= 400:
                    raise RegistryError(f"failed to GET {url} with status {resp.status_code} {resp.reason_phrase}"
                                        + await _body_excerpt(resp))
                with open(path, "wb") as out:
                    async for chunk in resp.aiter_bytes(1 << 20):
                        await trio.to_thread.run_sync(out.write, chunk)
                modified = resp.headers.get("last-modified")
    except httpx.TransportError as exc:
        raise transport_error("GET", url, exc) from None
    except httpx.InvalidURL as exc:
        raise RegistryError(f'parse "{url}": {exc}') from None
    try:
        return email.utils.parsedate_to_datetime(modified).timestamp() if modified else None
    except (TypeError, ValueError):
        return None


async def _body_excerpt(resp: httpx.Response) -> str:
    """": <the start of an error response's body>" on one line (dockerd appends all of it)."""
    async for chunk in resp.aiter_bytes(1024):
        text = " ".join(chunk[:1024].decode("utf-8", "replace").split())
        return f": {text}" if text else ""
    return ""


def transport_error(method: str, url, exc: httpx.TransportError) -> RegistryError:
    """A request that got no response, in the words of Go's net/http (the docker CLI shows
    them as dockerd's): `Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect:
    connection refused`, `… dial tcp: lookup nowhere.example: no such host`."""
    return RegistryError(f'{method[:1]}{method[1:].lower()} "{url}": {_dial_failure(exc, httpx.URL(str(url)))}')


def _dial_failure(exc: httpx.TransportError, url: httpx.URL) -> str:
    cause = _os_error(exc)
    address = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    if isinstance(cause, socket.gaierror):
        return f"dial tcp: lookup {url.host}: no such host"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"dial tcp {address}: i/o timeout"
    if isinstance(exc, httpx.ConnectError) and cause is not None and cause.errno:
        reason = os.strerror(cause.errno)
        return f"dial tcp {address}: connect: {reason[:1].lower()}{reason[1:]}"
    return str(exc) or type(exc).__name__


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError under an httpx error (trio puts one per address tried in a group)."""
    seen = 0
    while exc is not None and seen < 16:
        seen += 1
        if isinstance(exc, OSError) and exc.errno:
            return exc
        group = getattr(exc, "exceptions", None)
        if group:
            found = next((e for e in map(_os_error, group) if e is not None), None)
            if found is not None:
                return found
        exc = exc.__cause__ or exc.__context__
    return None


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except (ValueError, httpx.ResponseNotRead):
        return ""
    if isinstance(body, dict):
        errs = body.get("errors") or []
        if errs and isinstance(errs[0], dict):
            e = errs[0]
            code = (e.get("code") or "").lower().replace("_", " ")
            msg = e.get("message") or ""
            return f"{code}: {msg}" if code and msg else code or msg
        return body.get("details") or body.get("message") or ""
    return ""


def _status_error(resp: httpx.Response, method: str, url: str) -> EngineError:
    text = _error_text(resp) or f"{resp.status_code} {resp.reason_phrase}"
    if resp.status_code == 404:
        return NotFound(text)
    if resp.status_code in (401, 403):
        return Unauthorized(text if "unauthorized" in text or "denied" in text else f"unauthorized: {text}")
    return RegistryError(f"{method} {url}: {text}", 500)

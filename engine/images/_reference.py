"""Docker image references: parse and normalize to the familiar form ("busybox:latest")."""

import re

import attrs

from engine.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
ID_RE = re.compile(r"^(?:sha256:)?([a-f0-9]{64})$")


@attrs.define(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """Familiar repository name: "busybox", "foo/bar", "localhost:5000/x"."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path[len("library/"):] if self.path.startswith("library/") and self.path.count("/") == 1 else self.path
        return f"{self.domain}/{self.path}"

    @property
    def full_name(self) -> str:
        return f"{self.domain}/{self.path}"

    def familiar(self) -> str:
        """"repo:tag", "repo@digest", or "repo:tag@digest"."""
        out = self.repository
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def __str__(self) -> str:
        return self.familiar()


def _bad(ref: str, why: str = "invalid reference format") -> InvalidParameter:
    return InvalidParameter(f"{why}: {ref!r}" if why != "invalid reference format" else f"invalid reference format: {ref}")


def parse_reference(ref: str, default_tag: bool = True) -> Reference:
    """Parse a Docker reference. A missing tag becomes "latest" unless a digest is given
    (or default_tag is False)."""
    if not ref or len(ref) > 255 + 128 + 80:
        raise _bad(ref)
    name, digest = ref, None
    if "@" in ref:
        name, digest = ref.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise _bad(ref)
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG_RE.match(tag):
            raise _bad(ref)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
        if not _DOMAIN_RE.match(domain):
            raise _bad(ref)
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if path != path.lower():
        raise InvalidParameter("invalid reference format: repository name must be lowercase")
    if not _PATH_RE.match(path) or len(domain) + len(path) > 255:
        raise _bad(ref)
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def normalize_reference(ref: str) -> str:
    """"busybox" → "busybox:latest"; "docker.io/library/busybox" → "busybox:latest"."""
    return parse_reference(ref).familiar()

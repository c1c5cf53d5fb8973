"""Container links.

On a user-defined network a link ("name:alias") is a DNS alias only the linking container
resolves (the embedded DNS maps the alias to the target's name when that container asks).
On the default bridge, HostConfig.Links are Docker's legacy links: the target must be running
there when the linking container starts; it gets an /etc/hosts entry (alias, hostname, name)
and the ALIAS_PORT_…/ALIAS_NAME/ALIAS_ENV_… variables."""

from __future__ import annotations

import attrs

from engine import errors

# variables of the target never copied as ALIAS_ENV_* (dockerd's list)
_SKIPPED_ENV = {"HOME", "HOSTNAME", "PATH"}


def parse(link: str) -> tuple[str, str]:
    """"name:alias", "name" or dockerd's "/name:/container/alias" → (name, alias)."""
    name, _, alias = link.partition(":")
    name = name.lstrip("/")
    alias = alias.rsplit("/", 1)[-1] if alias else name
    if not name or not alias:
        raise errors.InvalidParameter(f"invalid link: {link!r}")
    return name, alias


def parse_all(values) -> list[tuple[str, str]]:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise errors.InvalidParameter("links must be a list of strings")
    return [parse(v) for v in values]


def resolve_alias(aliases: dict, name: str) -> str:
    """The container name a link alias of the asking endpoint stands for (else `name`)."""
    for alias, target in aliases.items():
        if alias.lower() == name:
            return target.lower()
    return name


@attrs.frozen
class LegacyLink:
    alias: str
    name: str
    hostname: str
    ip: str
    exposed: tuple  # ("80", "tcp"), …
    env: tuple  # the target's Env entries


def resolve_legacy(container, wanted: list[tuple[str, str]], bridge_endpoints) -> list[LegacyLink]:
    """`wanted` links of `container` against the running endpoints of the default bridge."""
    by_name = {ep.container.name.lstrip("/"): ep for ep in bridge_endpoints}
    out = []
    for name, alias in wanted:
        ep = by_name.get(name)
        if ep is None:
            ep = next((e for e in bridge_endpoints if e.container.id.startswith(name)), None)
        if ep is None:
            raise errors.InvalidParameter(
                f"Cannot link to a non running container: /{name} AS /{container.name.lstrip('/')}/{alias}")
        target = ep.container
        exposed = []
        for key in target.config.exposed_ports or ():
            port, _, proto = key.partition("/")
            exposed.append((port, proto or "tcp"))
        exposed.sort(key=lambda p: (int(p[0]) if p[0].isdigit() else 0, p[1]))
        out.append(LegacyLink(alias=alias, name=target.name.lstrip("/"), hostname=target.config.hostname,
                              ip=ep.ip, exposed=tuple(exposed), env=tuple(target.config.env)))
    return out


def hosts_entries(legacy) -> str:
    return "".join(f"{link.ip}\t{' '.join(dict.fromkeys([link.alias, link.hostname, link.name]))}\n"
                   for link in legacy if link.ip)


def environment(container, legacy) -> list[str]:
    """Docker's link variables for `container` (whose name gives ALIAS_NAME)."""
    out = []
    own = container.name.lstrip("/")
    for link in legacy:
        prefix = "".join(c if c.isalnum() else "_" for c in link.alias).upper()
        if link.exposed:
            port, proto = link.exposed[0]
            out.append(f"{prefix}_PORT={proto}://{link.ip}:{port}")
        for port, proto in link.exposed:
            var = f"{prefix}_PORT_{port}_{proto.upper()}"
            out += [f"{var}={proto}://{link.ip}:{port}", f"{var}_ADDR={link.ip}", f"{var}_PORT={port}",
                    f"{var}_PROTO={proto}"]
        out.append(f"{prefix}_NAME=/{own}/{link.alias}")
        for entry in link.env:
            key, eq, value = entry.partition("=")
            if eq and key not in _SKIPPED_ENV:
                out.append(f"{prefix}_ENV_{key}={value}")
    return out

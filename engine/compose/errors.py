"""Compose errors: each is reported by the CLI as one line and a non-zero exit."""

from __future__ import annotations


class ComposeError(Exception):
    """A failure of a compose operation (bad file, missing dependency, daemon refusal…)."""


class ConfigError(ComposeError):
    """The project's files are invalid; raised before anything is created."""


class InterpolationError(ConfigError):
    """`${VAR:?message}` with VAR unset, or a malformed `${…}`; names the key path."""


def key_path(parts: tuple | list) -> str:
    """("services", "web", "ports", 0) -> "services.web.ports[0]"."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out

"""Compose errors: each is reported by the CLI as one line and a non-zero exit."""

from __future__ import annotations


class ComposeError(Exception):
    """A failure of a compose operation (bad file, missing dependency, daemon refusal…)."""


class ConfigError(ComposeError):
    """The project's files are invalid; raised before anything is created."""


class NoConfigFile(ConfigError):
    """No -f given and no compose.yaml found (label-only commands can go on with -p)."""


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


def first_error(exc: BaseException, kinds: tuple[type, ...]) -> BaseException | None:
    """The first error of the given kinds in a (nested) exception group from concurrent
    tasks — what to report as one line — or None when the group holds anything else."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc if isinstance(exc, kinds) else None
    found = None
    for sub in exc.exceptions:
        leaf = first_error(sub, kinds)
        if leaf is None:
            return None
        found = found or leaf
    return found

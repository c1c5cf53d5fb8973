"""`.env` / `env_file:` files: KEY=VALUE lines as Docker Compose reads them (comments,
`export `, single quotes literal, double quotes with escapes, trailing ` #` comments)."""

from __future__ import annotations

import re

from .errors import ConfigError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def parse_env_text(text: str, source: str = "env file") -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not _KEY.match(key):
            raise ConfigError(f"{source}:{lineno}: invalid variable name {key!r}")
        if not eq:
            out[key] = None  # KEY alone: take it from the environment, if set
            continue
        out[key] = _value(value.strip())
    return out


def _value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == '"' and value.rfind('"') > 0:
        inner = value[1:value.rfind('"')]
        return (inner.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"')
                .replace("\\\\", "\\"))
    # an unquoted value ends at " #"
    idx = value.find(" #")
    return value[:idx].rstrip() if idx >= 0 else value


def read_env_file(path: str) -> dict[str, str | None]:
    try:
        with open(path, encoding="utf-8") as f:
            return parse_env_text(f.read(), path)
    except FileNotFoundError:
        raise ConfigError(f"env file {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror}") from None

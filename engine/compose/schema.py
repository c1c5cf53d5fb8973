"""Validation against the Compose Specification's JSON schema, before anything is created.

The schema is not copied into this repository: it is read from an installed, licensed copy —
$PYENGINE_COMPOSE_SCHEMA, else Debian's docker-compose package (installed by
scripts/setup.sh; Apache-2.0, /usr/share/doc/docker-compose/copyright), else a pip-installed
`compose` package. Errors name the file and the key path (`services.web.ports[0]`).

jsonschema costs more to import than `up -d` takes to run, and people run commands against
an unchanged file: a digest of each document found valid (with the schema file's identity)
is kept (engine.compose.cache: compose-valid), and a document with a known digest is not
validated again. Only valid documents are recorded, so an invalid one is always refused
with its key path."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any

from . import cache
from .errors import ConfigError, key_path

DEBIAN_SCHEMA = "/usr/lib/python3/dist-packages/compose/config/compose_spec.json"

# Top-level keys of the current specification that the packaged schema predates.
_NEWER_TOP_LEVEL = {"name": str}
# Keys of top-level secrets/configs it predates (checked here, then left out of validation).
_NEWER_ITEM_KEYS = {"secrets": ("environment",), "configs": ("environment", "content")}
# Service keys it predates: key → allowed values (checked here, then left out of validation).
_NEWER_SERVICE_KEYS = {"cgroup": ("host", "private")}


# Bump when validate() changes what it accepts: digests recorded before no longer match.
CACHE_FORMAT = "1"


@functools.lru_cache(maxsize=1)
def schema_path() -> str:
    for path in (os.environ.get("PYENGINE_COMPOSE_SCHEMA"), DEBIAN_SCHEMA):
        if path and os.path.isfile(path):
            return path
    import importlib.util

    spec = importlib.util.find_spec("compose")
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(loc, "config", "compose_spec.json")
        if os.path.isfile(path):
            return path
    raise ConfigError("the Compose Specification schema (compose_spec.json) was not found: "
                      "install Debian's docker-compose package or set PYENGINE_COMPOSE_SCHEMA")


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    with open(schema_path(), encoding="utf-8") as f:
        schema = json.load(f)
    # The schema marks itself 2019-09 but only uses draft-07 keywords; draft-07 needs no
    # remote metaschema lookups.
    return jsonschema.Draft7Validator(schema)


def _describe(error) -> tuple[tuple, str]:
    """(key path, message) for the most specific cause of a jsonschema error."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        # The alternative that got furthest explains best ("ports[0].target must be…").
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.message)))
        if len(deepest.absolute_path) > 0 or deepest.validator == "additionalProperties":
            error = deepest
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = set((error.schema.get("properties") or {}))
        extra = [k for k in error.instance if k not in allowed and not str(k).startswith("x-")]
        if extra:
            return path + (extra[0],), "additional property is not allowed"
    if error.validator == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return path, f"must be of type {want}"
    if error.validator in ("oneOf", "anyOf"):
        return path, f"invalid value {error.instance!r}"
    return path, error.message


def _digest(doc: dict) -> str | None:
    """The document's identity with the schema's, or None when it cannot be cached."""
    if not cache.plain(doc):
        return None
    try:
        st = os.stat(schema_path())
    except (OSError, ConfigError):
        return None
    h = hashlib.sha256(f"{CACHE_FORMAT}\0{schema_path()}\0{st.st_size}\0{st.st_mtime_ns}\0"
                       .encode())
    h.update(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


def validate(doc: Any, source: str) -> None:
    """Raise ConfigError naming `source` and the key path of the first schema violation."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: top-level object must be a mapping")
    doc = dict(doc)
    for key, typ in _NEWER_TOP_LEVEL.items():
        if key in doc:
            if not isinstance(doc.pop(key), typ):
                raise ConfigError(f"{source}: {key}: must be a {typ.__name__}")
    for kind, keys in _NEWER_ITEM_KEYS.items():
        items = doc.get(kind)
        if not isinstance(items, dict):
            continue
        doc[kind] = dict(items)
        for name, spec in items.items():
            if not isinstance(spec, dict) or not any(k in spec for k in keys):
                continue
            spec = dict(spec)
            for k in keys:
                if k in spec and not isinstance(spec.pop(k), str):
                    raise ConfigError(f"validating {source}: {kind}.{name}.{k}: must be a "
                                      "string")
            doc[kind][name] = spec
    services = doc.get("services")
    if isinstance(services, dict) and any(isinstance(v, dict) and k in v for v in services.values()
                                          for k in _NEWER_SERVICE_KEYS):
        doc["services"] = dict(services)
        for name, spec in services.items():
            if not isinstance(spec, dict):
                continue
            spec = dict(spec)
            for key, allowed in _NEWER_SERVICE_KEYS.items():
                if key in spec and spec.pop(key) not in allowed:
                    raise ConfigError(f"validating {source}: services.{name}.{key}: must be one of "
                                      + ", ".join(allowed))
            doc["services"][name] = spec
    digest = _digest(doc)
    if digest is not None and cache.exists("compose-valid", digest):
        return
    import jsonschema

    errors = list(_validator().iter_errors(doc))
    if not errors:
        if digest is not None:
            cache.record("compose-valid", digest)
        return
    best = jsonschema.exceptions.best_match(errors)
    path, message = _describe(best)
    where = key_path(path) or "(root)"
    raise ConfigError(f"validating {source}: {where}: {message}")

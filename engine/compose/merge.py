"""Several -f files merged as Docker Compose merges them (the Compose Specification's merge
rules): mappings merge key by key, scalars are overridden, `command`/`entrypoint` (and
`healthcheck.test`) are replaced, `ports` are unioned, `volumes` merge by target,
`secrets`/`configs` by source, other sequences are concatenated without duplicates.

`normalize_service` first gives list-or-mapping keys one shape (environment, labels,
depends_on, networks…), so that a list in one file and a mapping in another merge."""

from __future__ import annotations

import copy
from typing import Any

_MAPPING_OR_LIST = ("environment", "labels", "sysctls", "annotations")
_STRING_OR_LIST = ("dns", "dns_search", "env_file", "tmpfs", "profiles")
_REPLACED = ("command", "entrypoint")


def _kv_list(items: list, sep: str = "=") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, has, value = str(item).partition(sep)
        out[key] = value if has else None
    return out


def _scalar_str(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normalize_service(svc: dict) -> dict:
    """A copy of a service mapping with one shape per key (before merging/modelling)."""
    svc = copy.deepcopy(svc)
    for key in _MAPPING_OR_LIST:
        if isinstance(svc.get(key), list):
            svc[key] = _kv_list(svc[key])
        if isinstance(svc.get(key), dict):
            svc[key] = {k: _scalar_str(v) for k, v in svc[key].items()}
    for key in _STRING_OR_LIST:
        if isinstance(svc.get(key), str):
            svc[key] = [svc[key]]
    build = svc.get("build")
    if isinstance(build, str):
        svc["build"] = build = {"context": build}
    if isinstance(build, dict) and isinstance(build.get("args"), list):
        build["args"] = _kv_list(build["args"])
    deps = svc.get("depends_on")
    if isinstance(deps, list):
        svc["depends_on"] = {d: {"condition": "service_started"} for d in deps}
    elif isinstance(deps, dict):
        svc["depends_on"] = {d: {"condition": "service_started", **(v or {})}
                             for d, v in deps.items()}
    nets = svc.get("networks")
    if isinstance(nets, list):
        svc["networks"] = {n: None for n in nets}
    ext = svc.get("extends")
    if isinstance(ext, str):
        svc["extends"] = {"service": ext}
    return svc


def _port_key(port: Any) -> Any:
    if isinstance(port, dict):
        return tuple(sorted((k, str(v)) for k, v in port.items()))
    return str(port)


def volume_target(vol: Any) -> str:
    """The container path a volume entry mounts on (its identity when merging)."""
    if isinstance(vol, dict):
        return str(vol.get("target", ""))
    parts = str(vol).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _source(item: Any) -> str:
    return str(item.get("source")) if isinstance(item, dict) else str(item)


def _merge_by(base: list, over: list, key) -> list:
    merged = {key(item): item for item in base}
    for item in over:
        merged[key(item)] = item
    return list(merged.values())


def _union(base: list, over: list) -> list:
    out = list(base)
    for item in over:
        if item not in out:
            out.append(item)
    return out


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merged recursively; anything else in `over` replaces `base`."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(out[k], v) if k in out else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def merge_service(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key not in out or out[key] is None or value is None:
            out[key] = copy.deepcopy(value)
        elif key in _REPLACED:
            out[key] = copy.deepcopy(value)
        elif key == "ports" or key == "expose":
            out[key] = _merge_by(out[key], value, _port_key)
        elif key == "volumes":
            out[key] = _merge_by(out[key], value, volume_target)
        elif key in ("secrets", "configs"):
            out[key] = _merge_by(out[key], value, _source)
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = deep_merge(out[key], value)
        elif isinstance(out[key], list) and isinstance(value, list):
            out[key] = _union(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_documents(base: dict, over: dict) -> dict:
    """Merge one (normalized) compose document over another."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key == "services":
            services = dict(out.get("services") or {})
            for name, svc in (value or {}).items():
                services[name] = (merge_service(services[name], svc) if name in services
                                  else copy.deepcopy(svc))
            out["services"] = services
        elif key in out:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out

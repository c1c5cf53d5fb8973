"""The container record on disk (<data_root>/containers/<id>/config.v2.json) ↔ Container: the
one place that converts it either way.

Format 2 keeps the typed spec as plain data under its Python names (attrs fields; tuples as
lists, nested classes as objects), marked by "format": 2 inside host_config. Format 1 (records
written before the typed spec) kept Docker's Config/HostConfig JSON; it is read through
`legacy(config, host_config)`, which the daemon takes from engine.api (the only code that knows
Docker's JSON), and written back as format 2 by the next save.

The top-level keys stay those of format 1 on purpose: a daemon of the previous build treats a
record with other keys as half-created and removes the container's directory, so a downgrade
would lose every container; with these keys it loads them (reading their settings wrongly
until it is upgraded again, which reads them right).
"""

from __future__ import annotations

import functools
import json
import os
import types
import typing
from collections.abc import Callable

import attrs

from engine.containers.spec import ContainerConfig, HostConfig

FORMAT = 2
RECORD_NAME = "config.v2.json"

#: (Docker's Config dict, Docker's HostConfig dict) → (ContainerConfig, HostConfig)
LegacyReader = Callable[[dict, dict], "tuple[ContainerConfig, HostConfig]"]


class UnreadableRecord(Exception):
    """A whole record (valid JSON) this build cannot turn into a Container: a format-1 one and
    no reader for it, or one its reader refused. Recovery leaves such a record in place."""


# --- typed spec ↔ plain data -------------------------------------------------------------
def unstructure(obj) -> dict:
    """An attrs instance as plain data (what attrs.asdict gives, at a third of its cost: a
    container's create pays it once)."""
    return {name: _plain(getattr(obj, name)) for name in _names(type(obj))}


def _plain(value):
    kind = type(value)
    if value is None or kind in (str, int, bool, float):
        return value
    if kind is tuple or kind is list:
        return [_plain(v) for v in value]
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if attrs.has(kind):
        return unstructure(value)
    return value


@functools.cache
def _names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in attrs.fields(cls))


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def structure(cls, data: dict):
    """Plain data (as unstructure gives it) → an instance of the attrs class `cls`. Keys it
    does not know are ignored (a record of a newer build); missing ones take the default."""
    hints = _hints(cls)
    fields = attrs.fields_dict(cls)
    return cls(**{name: _value(hints[name], value) for name, value in data.items() if name in fields})


def _value(tp, value):
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin = typing.get_origin(tp)
    if attrs.has(tp):
        return structure(tp, value)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return tuple(_value(item, v) for v in value)
    if origin is dict:
        item = typing.get_args(tp)[1]
        return {k: _value(item, v) for k, v in value.items()}
    return value


# --- the record --------------------------------------------------------------------------
def path_in(directory: str) -> str:
    return os.path.join(directory, RECORD_NAME)


def to_data(container) -> dict:
    """The record as JSON-able data. The spec's plain form is cached on the container (the
    spec is frozen and replaced whole by an update), so a save at each state change costs one
    json.dumps of what changed, not a walk of the spec."""
    cache = container._record_cache
    if cache is None or cache[0] is not container.config or cache[1] is not container.host_config:
        cache = (container.config, container.host_config,
                 unstructure(container.config), {**unstructure(container.host_config), "format": FORMAT})
        container._record_cache = cache
    state = attrs.asdict(container.state, recurse=True)
    state["status"] = container.state.status.value
    return {
        "id": container.id, "name": container.name, "created_ns": container.created_ns,
        "image_id": container.image_id, "path": container.path, "args": container.args,
        "config": cache[2], "host_config": cache[3], "directory": container.directory,
        "state": state, "restart_count": container.restart_count,
        "manually_stopped": container.manually_stopped, "exec_ids": container.exec_ids,
    }


def format_of(record: dict) -> int:
    host_config = record.get("host_config")
    return record.get("format") or (host_config.get("format") if isinstance(host_config, dict) else None) or 1


def from_data(record: dict, legacy: LegacyReader | None = None):
    try:
        return _from_data(dict(record), legacy)
    except UnreadableRecord:
        raise
    except Exception as exc:
        raise UnreadableRecord(f"{type(exc).__name__}: {exc}") from exc


def _from_data(record: dict, legacy: LegacyReader | None):
    from engine.containers.model import Container, State, Status

    fmt = format_of(record)
    record.pop("format", None)  # where the first format-2 records had it
    if fmt == 1:
        if legacy is None:
            raise UnreadableRecord("a record of format 1 and no reader for it")
        config, host_config = legacy(record["config"], record["host_config"])
    else:
        config = structure(ContainerConfig, record["config"])
        host_config = structure(HostConfig, record["host_config"])
    state = dict(record.pop("state"))
    state["status"] = Status(state["status"])
    record.update(config=config, host_config=host_config)
    return Container(state=State(**state), **record)


def save(container) -> None:
    """Write the record atomically (temp name, fsync-free rename: metadata is rebuilt from the
    kernel's view at recovery if it lags)."""
    target = path_in(container.directory)
    tmp = target + ".tmp"
    data = json.dumps(to_data(container)).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.replace(tmp, target)


def load(directory: str, legacy: LegacyReader | None = None):
    with open(path_in(directory)) as f:
        return from_data(json.load(f), legacy)

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

import ctypes
import errno
import functools
import json
import os
import threading
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


def _spec_cache(container) -> tuple:
    """(config, host_config, their plain forms, their JSON), cached on the container: the
    spec is frozen and replaced whole by an update, so a save at each state change encodes
    only what changes (state, counters), not the spec."""
    cache = container._record_cache
    if cache is None or cache[0] is not container.config or cache[1] is not container.host_config:
        config = unstructure(container.config)
        host_config = {**unstructure(container.host_config), "format": FORMAT}
        cache = (container.config, container.host_config, config, host_config,
                 json.dumps(config), json.dumps(host_config))
        container._record_cache = cache
    return cache


def _head(container) -> dict:
    return {"id": container.id, "name": container.name, "created_ns": container.created_ns,
            "image_id": container.image_id, "path": container.path, "args": container.args}


def _tail(container) -> dict:
    return {"directory": container.directory, "state": _state(container.state),
            "restart_count": container.restart_count, "manually_stopped": container.manually_stopped,
            "exec_ids": container.exec_ids}


def _state(state) -> dict:
    """attrs.asdict(state, recurse=True) with the status's value, at a fifth of its cost (a
    record is saved at every state change): the fields are scalars but `health`."""
    out = {name: getattr(state, name) for name in _names(type(state))}
    out["status"] = state.status.value
    if out["health"] is not None:
        out["health"] = attrs.asdict(state.health, recurse=True)
    return out


def to_data(container) -> dict:
    """The record as JSON-able data."""
    cache = _spec_cache(container)
    return {**_head(container), "config": cache[2], "host_config": cache[3], **_tail(container)}


def encode(container) -> bytes:
    """The record's bytes: json.dumps(to_data(container)), with the spec's JSON reused."""
    cache = _spec_cache(container)
    head, tail = json.dumps(_head(container)), json.dumps(_tail(container))
    return "".join((head[:-1], ', "config": ', cache[4], ', "host_config": ', cache[5], ", ", tail[1:])).encode()


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


SPARE_SUFFIX = ".tmp"
#: A reused directory's second spare (engine/containers/reclaim.py): after the first save
#: renames the spare to the record, it becomes the spare, so no save allocates an inode.
SECOND_SPARE_SUFFIX = ".tmp2"

# Saves come from the event loop and from worker threads (network connect, update): one at a
# time, so two never write the spare at once and the record always ends as the last snapshot.
_save_lock = threading.Lock()


def save(container) -> None:
    """Write the record atomically, without fsync (as before; a daemon crash never leaves a
    partial record, a power loss may: `load` then reads the spare).

    The new record is written into the directory's spare file (config.v2.json.tmp), which
    then trades places with the record (renameat2 RENAME_EXCHANGE): the previous record is the
    next save's spare. A save at each state change (create, start, exit: three per
    `docker run --rm`) used to write a new temp file and rename it over the record; on ext4
    that allocates an inode and frees one per save (~100 µs of kernel CPU each on a file
    system that deletes as fast as a container burst does: ext4 skips recently freed inodes
    when allocating) and forces the new file's writeback at the rename (auto_da_alloc).
    Where exchange is not supported (or there is no record yet), the spare is renamed over
    the record as before."""
    target = path_in(container.directory)
    spare = target + SPARE_SUFFIX
    with _save_lock:
        data = encode(container)
        # (record size, spare size) as this process last left them; None: not known
        record_size, spare_size = container._record_sizes or (None, None)
        container._record_sizes = None  # until this save has completed
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            offset = 0
            while offset < len(data):
                offset += os.pwrite(fd, view[offset:], offset)
            # No O_TRUNC: a truncation to 0 forces writeback on ext4. A spare no longer than
            # the new record is all overwritten: no truncation at all.
            if spare_size is None or spare_size > len(data):
                os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        if _exchange(spare, target):
            container._record_sizes = (len(data), record_size)
        else:
            os.replace(spare, target)
            try:
                os.rename(target + SECOND_SPARE_SUFFIX, spare)
                container._record_sizes = (len(data), None)
            except FileNotFoundError:
                container._record_sizes = (len(data), 0)  # no spare: the next save makes it


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None  # a libc without it (glibc < 2.28)
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_exchange_unsupported = False


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically; False when `b` does not exist or the kernel or the file
    system cannot exchange."""
    global _exchange_unsupported
    fn = _renameat2()
    if fn is None or _exchange_unsupported:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.ENOENT:
        return False
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        _exchange_unsupported = True  # the data root's file system does not exchange
        return False
    raise OSError(err, os.strerror(err), b)


def load(directory: str, legacy: LegacyReader | None = None):
    """The container of a record. A record that is not whole JSON (a power loss after a
    save, which does not fsync) is read from the spare: the record before it, if it is this
    container's (a reused directory's spare may still hold a removed container's)."""
    path = path_in(directory)
    with open(path) as f:
        text = f.read()
    try:
        data = json.loads(text)
    except ValueError:
        try:
            with open(path + SPARE_SUFFIX) as f:
                data = json.load(f)
            if data.get("id") != os.path.basename(os.path.normpath(directory)):
                raise ValueError("another container's record")
        except (OSError, ValueError, AttributeError):
            raise ValueError(f"{path}: not a whole record, and no whole spare") from None
    return from_data(data, legacy)

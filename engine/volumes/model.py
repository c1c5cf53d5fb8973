"""Volume and mount-point records (attrs). Volumes persist as JSON under
<data_root>/volumes/_records; a container's volume mount points under
<data_root>/volumes/_containers/<id>.json (the driver keeps the data itself)."""

from __future__ import annotations

import json
import os
import re
import time

import attrs

from engine import errors

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def rfc3339(t: float) -> str:
    """Docker's volume CreatedAt: RFC 3339, seconds, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def validate_name(name: str, verb: str = "create") -> str:
    if len(name) < 2 and name:
        raise errors.InvalidParameter(
            f"{verb} {name}: volume name is too short, names should be at least two alphanumeric characters")
    if not NAME_RE.match(name or ""):
        raise errors.InvalidParameter(
            f'{verb} {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')
    return name


def _write_json(path: str, data) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


@attrs.frozen
class VolumeStatus:
    """What a volume's driver says of it now (inspect)."""

    mountpoint: str = ""
    status: dict | None = None  # the driver's own status map, shown as the driver gives it
    error: str = ""  # the driver could not be asked: why


@attrs.frozen
class PruneReport:
    deleted: tuple[str, ...] = ()  # volume names
    space_reclaimed: int = 0


@attrs.define(eq=False)
class Volume:
    name: str
    driver: str
    created_at: str
    labels: dict = attrs.Factory(dict)
    options: dict = attrs.Factory(dict)
    anonymous: bool = False

    def save(self, directory: str) -> None:
        _write_json(os.path.join(directory, self.name + ".json"), attrs.asdict(self))

    @classmethod
    def load(cls, path: str) -> "Volume":
        with open(path) as f:
            return cls(**json.load(f))


@attrs.define(eq=False)
class MountPoint:
    """One volume mounted into one container (Docker's MountPoint of type volume)."""

    name: str
    destination: str
    driver: str = "local"
    rw: bool = True
    mode: str = "z"
    copy_data: bool = True
    anonymous: bool = False
    source: str = ""  # the host path last reported by the driver


def save_mounts(path: str, mounts: list[MountPoint]) -> None:
    _write_json(path, [attrs.asdict(m) for m in mounts])


def load_mounts(path: str) -> list[MountPoint]:
    with open(path) as f:
        return [MountPoint(**m) for m in json.load(f)]

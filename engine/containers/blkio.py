"""Per-device block I/O limits (HostConfig.BlkioWeightDevice, BlkioDevice{Read,Write}{Bps,IOps}):
shape checked and unsupported kinds discarded with dockerd's warnings at create; device paths
turned into major:minor at start, as dockerd does."""

from __future__ import annotations

import os
import stat

from engine import errors
from engine.runtime import cgroups

#: HostConfig field → (cgroups.Resources/Support field, value key in each entry)
FIELDS = {
    "BlkioWeightDevice": ("blkio_weight_device", "Weight"),
    "BlkioDeviceReadBps": ("blkio_read_bps", "Rate"),
    "BlkioDeviceWriteBps": ("blkio_write_bps", "Rate"),
    "BlkioDeviceReadIOps": ("blkio_read_iops", "Rate"),
    "BlkioDeviceWriteIOps": ("blkio_write_iops", "Rate"),
}


def validate(host: dict, warnings: list[str], support: cgroups.Support | None = None) -> None:
    """At create: each entry is {"Path": str, <Rate|Weight>: int}; a kind the host's cgroups
    lack is emptied with dockerd's warning."""
    support = support or cgroups.support()
    for field, (name, key) in FIELDS.items():
        entries = host.get(field)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise errors.InvalidParameter(f"invalid {field}: a list of devices is expected")
        for entry in entries:
            value = entry.get(key) if isinstance(entry, dict) else None
            if (not isinstance(entry, dict) or not isinstance(entry.get("Path"), str) or not entry["Path"]
                    or not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise errors.InvalidParameter(f"invalid {field} entry: {entry!r}")
            if key == "Weight" and value and not 10 <= value <= 1000:
                raise errors.InvalidParameter(
                    f"invalid weight for device: {entry['Path']}: weight must be between 10 and 1000")
        if entries and not getattr(support, name):
            warnings.append(cgroups.BLKIO_DEVICE_UNSUPPORTED_WARNINGS[name])
            host[field] = []


def resolve(host: dict) -> dict[str, tuple]:
    """At start (blocking: a worker thread): Resources fields with (major, minor, value)
    entries. A missing or non-block device fails the start naming the path."""
    out: dict[str, tuple] = {}
    for field, (name, key) in FIELDS.items():
        entries = []
        for entry in host.get(field) or []:
            path = entry["Path"]
            try:
                st = os.stat(path)
            except OSError as e:
                raise errors.InvalidParameter(f"error gathering device information while adding "
                                              f"custom device \"{path}\": {e.strerror.lower()}") from None
            if not stat.S_ISBLK(st.st_mode):
                raise errors.InvalidParameter(f"{path} is not a block device")
            entries.append((os.major(st.st_rdev), os.minor(st.st_rdev), entry[key]))
        out[name] = tuple(entries)
    return out

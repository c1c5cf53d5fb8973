"""Per-device block I/O limits (HostConfig.BlkioWeightDevice, BlkioDevice{Read,Write}{Bps,IOps}):
checked and unsupported kinds discarded with dockerd's warnings at create; device paths
turned into major:minor at start, as dockerd does."""

from __future__ import annotations

import os
import stat

import attrs

from engine import errors
from engine.containers.spec import ResourceLimits
from engine.runtime import cgroups

#: ResourceLimits field (also the cgroups.Resources/Support one) → Docker's name, in messages
FIELDS = {
    "blkio_weight_device": "BlkioWeightDevice",
    "blkio_read_bps": "BlkioDeviceReadBps",
    "blkio_write_bps": "BlkioDeviceWriteBps",
    "blkio_read_iops": "BlkioDeviceReadIOps",
    "blkio_write_iops": "BlkioDeviceWriteIOps",
}


def validate(res: ResourceLimits, warnings: list[str], support: cgroups.Support | None = None) -> ResourceLimits:
    """At create: the values in range; a kind the host's cgroups lack is emptied with
    dockerd's warning. Returns the limits to keep."""
    support = support or cgroups.support()
    for name, field in FIELDS.items():
        entries = getattr(res, name)
        if entries is None:
            continue
        for entry in entries:
            if not entry.path or entry.value < 0:
                raise errors.InvalidParameter(f"invalid {field} entry: {entry!r}")
            if name == "blkio_weight_device" and entry.value and not 10 <= entry.value <= 1000:
                raise errors.InvalidParameter(
                    f"invalid weight for device: {entry.path}: weight must be between 10 and 1000")
        if entries and not getattr(support, name):
            warnings.append(cgroups.BLKIO_DEVICE_UNSUPPORTED_WARNINGS[name])
            res = attrs.evolve(res, **{name: ()})
    return res


def resolve(res: ResourceLimits) -> dict[str, tuple]:
    """At start (blocking: a worker thread): Resources fields with (major, minor, value)
    entries. A missing or non-block device fails the start naming the path."""
    out: dict[str, tuple] = {}
    for name in FIELDS:
        entries = []
        for entry in getattr(res, name) or ():
            path = entry.path
            try:
                st = os.stat(path)
            except OSError as e:
                raise errors.InvalidParameter(f"error gathering device information while adding "
                                              f"custom device \"{path}\": {e.strerror.lower()}") from None
            if not stat.S_ISBLK(st.st_mode):
                raise errors.InvalidParameter(f"{path} is not a block device")
            entries.append((os.major(st.st_rdev), os.minor(st.st_rdev), entry.value))
        out[name] = tuple(entries)
    return out

"""Which optional knobs this host's cgroups offer (dockerd's sysinfo): checked at create so
the API answers with dockerd's warnings and discards what cannot be applied."""

import functools
import os

import attrs

from ._detect import Layout, layout


@attrs.frozen
class Support:
    memory_swappiness: bool = False
    oom_kill_disable: bool = False
    blkio_weight_device: bool = False
    blkio_read_bps: bool = False
    blkio_write_bps: bool = False
    blkio_read_iops: bool = False
    blkio_write_iops: bool = False


def detect_support(lay: Layout) -> Support:
    if lay.mode == "v2":
        # v2 has no swappiness nor OOM-killer switch; io.max / io.weight come with "io".
        root = lay.hierarchies[0].mountpoint
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                io = "io" in f.read().split()
        except OSError:
            io = False
        return Support(blkio_weight_device=io, blkio_read_bps=io, blkio_write_bps=io,
                       blkio_read_iops=io, blkio_write_iops=io)

    def has(controller: str, name: str) -> bool:
        h = lay.by_controller(controller)
        return h is not None and os.path.exists(os.path.join(h.mountpoint, name))

    return Support(
        memory_swappiness=has("memory", "memory.swappiness"),
        oom_kill_disable=has("memory", "memory.oom_control"),
        blkio_weight_device=has("blkio", "blkio.weight_device") or has("blkio", "blkio.bfq.weight_device"),
        blkio_read_bps=has("blkio", "blkio.throttle.read_bps_device"),
        blkio_write_bps=has("blkio", "blkio.throttle.write_bps_device"),
        blkio_read_iops=has("blkio", "blkio.throttle.read_iops_device"),
        blkio_write_iops=has("blkio", "blkio.throttle.write_iops_device"),
    )


@functools.cache
def support() -> Support:
    """This host's answer, detected once per process."""
    return detect_support(layout())

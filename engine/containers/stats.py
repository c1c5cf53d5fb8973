"""`docker stats` samples: the container's cgroup counters (engine.runtime.cgroups) and its
network namespace's per-interface counters (/proc/<pid>/net/dev shows the namespace of that
process). engine.api writes Docker's JSON from a StatsSample."""

from __future__ import annotations

import attrs

from engine.runtime.cgroups import CgroupStats


@attrs.frozen
class NetworkStats:
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@attrs.frozen
class StatsSample:
    read_ns: int
    name: str
    id: str
    cgroup: CgroupStats | None = None  # None: the container does not run
    networks: dict[str, NetworkStats] = attrs.Factory(dict)  # interface → counters, lo left out


def parse_net_dev(text: str) -> dict[str, NetworkStats]:
    """/proc/net/dev → {ifname: counters}, loopback left out as dockerd leaves it out."""
    out: dict[str, NetworkStats] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or name == "lo":
            continue
        fields = [int(x) for x in rest.split()]
        if len(fields) < 16:
            continue
        out[name] = NetworkStats(*fields[0:4], *fields[8:12])
    return out


def network_stats(pid: int) -> dict[str, NetworkStats]:
    """The interfaces of `pid`'s network namespace; {} when the process is gone."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            return parse_net_dev(f.read())
    except OSError:
        return {}

"""Per-interface network counters for `docker stats`, read from the container's network
namespace (/proc/<pid>/net/dev shows the namespace of that process)."""

from __future__ import annotations

_COLUMNS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
_TX_COLUMNS = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/dev → dockerd's `networks` block: {ifname: {rx_bytes, …, tx_dropped}},
    loopback left out as dockerd leaves it out."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or name == "lo":
            continue
        fields = [int(x) for x in rest.split()]
        if len(fields) < 16:
            continue
        rx = dict(zip(_COLUMNS, (fields[0], fields[1], fields[2], fields[3])))
        tx = dict(zip(_TX_COLUMNS, (fields[8], fields[9], fields[10], fields[11])))
        out[name] = {**rx, **tx}
    return out


def network_stats(pid: int) -> dict[str, dict[str, int]]:
    """The interfaces of `pid`'s network namespace; {} when the process is gone."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            return parse_net_dev(f.read())
    except OSError:
        return {}

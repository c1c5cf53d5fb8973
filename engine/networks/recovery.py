"""Startup recovery: the network records, and the host state a daemon killed before its
shutdown left behind (veths of containers that no longer run, bridges of networks that no
longer exist). Only links carrying this daemon's tag are touched, so private daemons side by
side never delete each other's. Blocking: run in a worker thread."""

from __future__ import annotations

import logging
import os

from engine.networks import _netlink
from engine.networks.model import Network

log = logging.getLogger(__name__)


def load_networks(directory: str) -> list[Network]:
    """The network records under `directory`; an unreadable one is removed."""
    out = []
    for entry in os.listdir(directory):
        if not entry.endswith(".json"):
            continue
        try:
            out.append(Network.load(os.path.join(directory, entry)))
        except (OSError, ValueError, TypeError):
            log.warning("removing unreadable network record %s", entry)
            os.unlink(os.path.join(directory, entry))
    return out


def remove_stale_links(tag: str, kept_veths: set[str], bridges: set[str]) -> None:
    """Delete this daemon's veths other than `kept_veths` (endpoints of containers still
    running) and its bridges other than `bridges`."""
    for name in _netlink.links_with_prefix(f"pv{tag}") + _netlink.links_with_prefix(f"pc{tag}"):
        if name not in kept_veths:
            log.info("removing stale veth %s", name)
            _netlink.delete_link(name)
    for name in _netlink.links_with_prefix(f"pb{tag}"):
        if name not in bridges:
            _netlink.delete_link(name)


def remove_links_of_gone(tag: str, bridge: str | None) -> None:
    """Delete every link of a daemon gone with its data root (owners.py), and its default
    bridge when that is not named after the tag."""
    remove_stale_links(tag, set(), set())
    if bridge is not None:
        _netlink.delete_link(bridge)


def enable_ip_forward() -> None:
    """Containers' traffic is routed through the host (as dockerd, which turns it on too)."""
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            forwarding = f.read().strip() == "1"
        if not forwarding:
            with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                f.write("1")
    except OSError:
        pass

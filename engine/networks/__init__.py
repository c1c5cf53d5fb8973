"""Networks: manager, driver protocol, bridge/host/null drivers, IPAM, embedded DNS, port
publishing (nftables DNAT + userland proxy), Docker remote network driver adapter."""

from engine.networks.manager import NetworkManager, daemon_tag
from engine.networks.model import Endpoint, Network

__all__ = ["Endpoint", "Network", "NetworkManager", "daemon_tag"]

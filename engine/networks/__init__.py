"""Networks: manager, driver protocol, bridge/host/null drivers, IPAM (IPv4 and IPv6),
embedded DNS, container links, port publishing (nftables DNAT + userland proxy), Docker
remote network driver adapter."""

from engine.networks.attachments import Attachment
from engine.networks.manager import NetworkManager, daemon_tag
from engine.networks.model import Endpoint, EndpointSettings, IpamPool, Network, NetworkSpec

__all__ = ["Attachment", "Endpoint", "EndpointSettings", "IpamPool", "Network", "NetworkManager", "NetworkSpec",
           "daemon_tag"]

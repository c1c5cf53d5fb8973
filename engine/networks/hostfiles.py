"""A networked container's /etc/resolv.conf and /etc/hosts (files of its own, bind-mounted,
written in place). Blocking: run in a worker thread."""

from __future__ import annotations

from engine.networks import links
from engine.networks.dns import EmbeddedDns
from engine.networks.model import Endpoint, Network


def write(container, eps: dict[str, Endpoint], networks: dict[str, Network], legacy=(), daemon=None) -> None:
    """resolv.conf → the embedded DNS of the first user-defined network among `eps` (unless
    --dns), with the daemon's (`daemon`: engine.config.Config) search and options; /etc/hosts
    gets the container's own addresses and its legacy links."""
    from engine.containers import config as cfg

    host = container.host_config
    dns_net = next((networks[nid] for nid in eps if EmbeddedDns.wants(networks[nid])), None)
    if dns_net is not None and not host.dns:
        text = cfg.resolv_conf(host, dns=(dns_net.gateway,), daemon=daemon)
        with open(container.resolv_conf_path, "w") as f:
            f.write(text)
    if eps and not host.shares_host_network:
        text = cfg.hosts_file(container.config.hostname, host)
        text += links.hosts_entries(legacy)
        for ep in eps.values():
            for address in (ep.ip, ep.ip6):
                if address:
                    text += f"{address}\t{container.config.hostname}\n"
        with open(container.hosts_path, "w") as f:
            f.write(text)

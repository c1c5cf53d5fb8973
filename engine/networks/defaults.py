"""The daemon's built-in networks: `host` and `none` (records only) and the default bridge,
whose subnet comes from --bip (or is picked among free ones) and whose link name from
--bridge (or the data root: pe0 for the default one, pe<tag> for a private daemon). A
changed --bip or name replaces the old link at the next start."""

from __future__ import annotations

import ipaddress
import logging
import secrets

import trio

from engine.networks import _netlink, addressing
from engine.networks.model import Network, created_now

log = logging.getLogger(__name__)


async def ensure_builtin(networks: dict[str, Network], directory: str, *, bip: str | None, bridge_name: str,
                         tag: str, data_root: str, default_pools=(), mtu: int = 1500, icc: bool = True,
                         host_ip: str = "0.0.0.0") -> Network:
    """Add the missing built-in networks to `networks` (id → Network) and save their records
    under `directory`; the default bridge is returned. `mtu` is the default bridge's when it
    is made (an existing one keeps its own: its live containers' veths have it); `icc` and
    `host_ip` (--icc, --ip) are its options at every start."""
    by_name = {n.name: n for n in networks.values()}
    for name, driver in (("host", "host"), ("none", "null")):
        if name not in by_name:
            network = Network(id=secrets.token_hex(32), name=name, driver=driver,
                              created=created_now(), builtin=True)
            await trio.to_thread.run_sync(network.save, directory)
            networks[network.id] = network
    bridge = by_name.get("bridge")
    if bridge is not None and bip:
        iface = ipaddress.ip_interface(bip)
        if bridge.subnet != str(iface.network) or bridge.gateway != str(iface.ip):
            await trio.to_thread.run_sync(_netlink.delete_link, bridge.bridge)
            bridge.subnet, bridge.gateway = str(iface.network), str(iface.ip)
    if bridge is not None and bridge.bridge != bridge_name:
        await trio.to_thread.run_sync(_netlink.delete_link, bridge.bridge)
        bridge.bridge = bridge_name
    if bridge is None:
        if bip:
            iface = ipaddress.ip_interface(bip)
            subnet, gateway = str(iface.network), str(iface.ip)
        else:
            subnet = await addressing.pick_subnet(list(networks.values()), tag=tag, data_root=data_root,
                                                  default_bridge=bridge_name, default=True, pools=default_pools)
            gateway = str(next(ipaddress.ip_network(subnet).hosts()))
        bridge = Network(id=secrets.token_hex(32), name="bridge", driver="bridge",
                         created=created_now(), subnet=subnet, gateway=gateway,
                         bridge=bridge_name, builtin=True,
                         options={"com.docker.network.bridge.default_bridge": "true",
                                  "com.docker.network.bridge.enable_icc": "true",
                                  "com.docker.network.bridge.enable_ip_masquerade": "true",
                                  "com.docker.network.bridge.name": bridge_name,
                                  "com.docker.network.driver.mtu": str(mtu)})
        networks[bridge.id] = bridge
    elif bridge.options.get("com.docker.network.driver.mtu", "1500") != str(mtu):
        log.warning("the default bridge network keeps its MTU %s (the daemon's is %s) until it is made again",
                    bridge.options.get("com.docker.network.driver.mtu", "1500"), mtu)
    bridge.options["com.docker.network.bridge.name"] = bridge.bridge
    # As dockerd's default bridge, these follow the daemon's options at every start (a live
    # container keeps what it was attached with: isolation and bindings are set per endpoint).
    bridge.options["com.docker.network.bridge.host_binding_ipv4"] = host_ip
    bridge.options["com.docker.network.bridge.enable_icc"] = "true" if icc else "false"
    await trio.to_thread.run_sync(bridge.save, directory)
    return bridge


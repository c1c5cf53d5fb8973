"""Docker's /networks routes (list, inspect, create, connect, disconnect, remove, prune), and
the Docker JSON of networks and endpoints both ways: request bodies → NetworkSpec /
EndpointSettings for the manager, manager state → inspect shapes (also the NetworkSettings
part of container inspect)."""

from __future__ import annotations

from engine import errors
from engine.api import _filters as filters_api
from engine.api._gotypes import expect, str_list, str_map
from engine.api._request import Request
from engine.api._responses import empty, json_response
from engine.api._router import Router
from engine.filters import label_matches
from engine.networks import Attachment, EndpointSettings, IpamPool, NetworkSpec, links
from engine.timefmt import parse_since

router = Router()

_LIST_FILTERS = {"name": None, "id": None, "driver": None, "label": None, "scope": None,
                 "type": filters_api.one_of(("custom", "builtin"), "invalid filter: 'type'='{value}'"),
                 "dangling": filters_api.boolean}
_SHARED_MODES = ("host", "none")


# --- Docker JSON → typed -------------------------------------------------------------------
def network_spec(body: dict) -> NetworkSpec:
    ipam = expect(body.get("IPAM"), dict, "NetworkCreateRequest.IPAM", {})
    pools = []
    for pool in expect(ipam.get("Config"), list, "IPAM.Config", []):
        pool = expect(pool, dict, "IPAM.Config", {})
        pools.append(IpamPool(subnet=expect(pool.get("Subnet"), str, "IPAMConfig.Subnet", ""),
                              ip_range=expect(pool.get("IPRange"), str, "IPAMConfig.IPRange", ""),
                              gateway=expect(pool.get("Gateway"), str, "IPAMConfig.Gateway", ""),
                              aux_addresses=str_map(pool.get("AuxiliaryAddresses"), "IPAMConfig.AuxiliaryAddresses")))
    return NetworkSpec(
        name=expect(body.get("Name"), str, "NetworkCreateRequest.Name", ""),
        driver=expect(body.get("Driver"), str, "NetworkCreateRequest.Driver", "") or "bridge",
        internal=expect(body.get("Internal"), bool, "NetworkCreateRequest.Internal", False),
        attachable=expect(body.get("Attachable"), bool, "NetworkCreateRequest.Attachable", False),
        ingress=expect(body.get("Ingress"), bool, "NetworkCreateRequest.Ingress", False),
        enable_ipv6=expect(body.get("EnableIPv6"), bool, "NetworkCreateRequest.EnableIPv6", False),
        labels=str_map(body.get("Labels"), "NetworkCreateRequest.Labels"),
        options=str_map(body.get("Options"), "NetworkCreateRequest.Options"),
        ipam_driver=expect(ipam.get("Driver"), str, "IPAM.Driver", "") or "default",
        ipam_options=str_map(ipam["Options"], "IPAM.Options") if ipam.get("Options") is not None else None,
        pools=pools,
        config_only=expect(body.get("ConfigOnly"), bool, "NetworkCreateRequest.ConfigOnly", False),
        config_from=expect(expect(body.get("ConfigFrom"), dict, "NetworkCreateRequest.ConfigFrom", {}).get("Network"),
                            str, "ConfigReference.Network", ""),
    )


def endpoint_settings(conf) -> EndpointSettings:
    """An EndpointSettings object (create's EndpointsConfig value, connect's EndpointConfig)."""
    conf = expect(conf, dict, "EndpointSettings", {})
    ipam = expect(conf.get("IPAMConfig"), dict, "EndpointSettings.IPAMConfig", {})
    return EndpointSettings(
        aliases=str_list(conf.get("Aliases"), "EndpointSettings.Aliases"),
        links=str_list(conf.get("Links"), "EndpointSettings.Links"),
        ipv4_address=expect(ipam.get("IPv4Address"), str, "EndpointIPAMConfig.IPv4Address", ""),
        ipv6_address=expect(ipam.get("IPv6Address"), str, "EndpointIPAMConfig.IPv6Address", ""),
        link_local_ips=str_list(ipam.get("LinkLocalIPs"), "EndpointIPAMConfig.LinkLocalIPs"),
        mac_address=expect(conf.get("MacAddress"), str, "EndpointSettings.MacAddress", ""),
        driver_opts=str_map(conf.get("DriverOpts"), "EndpointSettings.DriverOpts"),
    )


def endpoints_config(body: dict) -> dict[str, EndpointSettings]:
    """A container create body's NetworkingConfig.EndpointsConfig, typed; the container-wide
    Config.MacAddress goes to the primary network's endpoint (as dockerd does for API < 1.44)."""
    networking = expect(body.get("NetworkingConfig"), dict, "NetworkingConfig", {})
    raw = expect(networking.get("EndpointsConfig"), dict, "NetworkingConfig.EndpointsConfig", {})
    out = {ref: endpoint_settings(conf) for ref, conf in raw.items()}
    mac = expect(body.get("MacAddress"), str, "Config.MacAddress", "")
    if mac:
        host = body.get("HostConfig")
        mode = (host.get("NetworkMode") if isinstance(host, dict) else None) or "default"
        primary = out.setdefault(mode, EndpointSettings())
        primary.mac_address = primary.mac_address or mac
    return out


# --- typed → Docker JSON -------------------------------------------------------------------
def _ipam_config(settings: EndpointSettings) -> dict | None:
    """EndpointIPAMConfig with the fields given (null when none is)."""
    ipam = {"IPv4Address": settings.ipv4_address, "IPv6Address": settings.ipv6_address,
            "LinkLocalIPs": list(settings.link_local_ips)}
    return {key: value for key, value in ipam.items() if value} or None


def host_links(container) -> list | None:
    """HostConfig.Links as dockerd shows them: "/target:/container/alias"."""
    values = container.host_config.links or ()
    return [f"/{name}:/{container.name.lstrip('/')}/{alias}" for name, alias in links.parse_all(values)] or None


def _aliases(network, container, ep, settings: EndpointSettings) -> list | None:
    aliases = list(settings.aliases)
    if ep is not None and network.user_defined:
        aliases.append(container.id[:12])
    return aliases or None


def endpoint_shape(network, container, ep, att: Attachment | None) -> dict:
    """An EndpointSettings of NetworkSettings.Networks: as configured (`att`; none for
    --network host/none) and, while the container runs, its endpoint `ep`. `network` is None
    for one the container was created with before it existed, or removed since (ep is None then too)."""
    settings = att.settings if att is not None else EndpointSettings()
    return {
        "IPAMConfig": _ipam_config(settings), "Links": list(settings.links) or None,
        # a live endpoint also answers to the short id (dockerd for API < 1.45); as configured before
        "Aliases": _aliases(network, container, ep, settings),
        "NetworkID": network.id if network is not None else "", "EndpointID": ep.id if ep else "",
        "Gateway": ep.gateway if ep else "", "IPAddress": ep.ip if ep else "",
        "IPPrefixLen": ep.prefixlen if ep else 0,
        "IPv6Gateway": ep.gateway6 if ep else "", "GlobalIPv6Address": ep.ip6 if ep else "",
        "GlobalIPv6PrefixLen": ep.prefixlen6 if ep else 0,
        "MacAddress": ep.mac if ep else settings.mac_address,
        "DriverOpts": dict(settings.driver_opts) or None,
    }


def container_settings(manager, container) -> dict:
    """NetworkSettings pieces: Networks, Ports, and the default bridge's top-level fields."""
    eps = manager.endpoints_of(container.id)
    mode = container.host_config.network_mode
    networks = {}
    if mode in _SHARED_MODES:
        network = manager.get(mode)
        networks[mode] = endpoint_shape(network, container, None, None)
    for att in manager.attachments(container.id):
        if not att.network_id:  # created before its network existed: listed, as by dockerd
            networks[att.ref] = endpoint_shape(None, container, None, att)
            continue
        try:
            network = manager.get(att.network_id)
        except errors.NotFound:  # removed since: listed until the next start, as by dockerd
            if att.ref:
                networks[att.ref] = gone = endpoint_shape(None, container, None, att)
                if container.state.started_at_ns:  # dockerd learns a network's id when it joins it
                    gone["NetworkID"] = att.network_id
            continue
        networks[network.name] = endpoint_shape(network, container, eps.get(network.id), att)
    port_map: dict = {}
    for key in container.config.exposed_ports or ():
        port_map[key if "/" in key else key + "/tcp"] = None
    for ep in eps.values():
        for b in ep.ports:
            port_map.setdefault(b.binding.key, None)
            port_map[b.binding.key] = (port_map[b.binding.key] or []) + [
                {"HostIp": b.binding.host_ip or "0.0.0.0", "HostPort": str(b.host_port)}]
    top = {"IPAddress": "", "Gateway": "", "MacAddress": "", "IPPrefixLen": 0, "EndpointID": "", "Bridge": "",
           "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": ""}
    for nid, ep in eps.items():
        network = manager.get(nid)
        if network.name == "bridge":
            top = {"IPAddress": ep.ip, "Gateway": ep.gateway, "MacAddress": ep.mac,
                   "IPPrefixLen": ep.prefixlen, "EndpointID": ep.id, "Bridge": network.bridge,
                   "GlobalIPv6Address": ep.ip6, "GlobalIPv6PrefixLen": ep.prefixlen6, "IPv6Gateway": ep.gateway6}
    return {"Networks": networks, "Ports": port_map if eps else {}, **top,
            "SandboxKey": f"/proc/{container.state.pid}/ns/net" if eps and container.state.pid else ""}


def ports_summary(manager, container) -> list[dict]:
    out = []
    published = set()
    for ep in manager.endpoints_of(container.id).values():
        for b in ep.ports:
            out.append({"IP": b.binding.host_ip or "0.0.0.0", "PrivatePort": b.binding.container_port,
                        "PublicPort": b.host_port, "Type": b.binding.proto})
            published.add(b.binding.key)
    for key in container.config.exposed_ports or ():
        port, _, proto = key.partition("/")
        if f"{port}/{proto or 'tcp'}" not in published and port.isdigit():
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
    return out


def _pool_shape(pool) -> dict:
    entry = {"Subnet": pool.subnet}
    if pool.ip_range:
        entry["IPRange"] = pool.ip_range
    if pool.gateway:
        entry["Gateway"] = pool.gateway
    if pool.aux_addresses:
        entry["AuxiliaryAddresses"] = dict(pool.aux_addresses)
    return entry


def _ipam_shape(network) -> list[dict]:
    """Configured pools as given; a family the daemon picked shows its subnet and gateway."""
    import ipaddress

    given = {ipaddress.ip_network(p.subnet, strict=False).version: p for p in network.pools if p.subnet}
    config = []
    if 4 in given:
        config.append(_pool_shape(given[4]))
    elif network.subnet:
        config.append({"Subnet": network.subnet, "Gateway": network.gateway})
    if 6 in given:
        config.append(_pool_shape(given[6]))
    elif network.enable_ipv6 and network.subnet6:
        config.append({"Subnet": network.subnet6, "Gateway": network.gateway6})
    return config


def network_shape(manager, network) -> dict:
    members = {}
    for cid, ep in manager.endpoints_on(network.id).items():
        members[cid] = {"Name": ep.container.name.lstrip("/"), "EndpointID": ep.id, "MacAddress": ep.mac,
                        "IPv4Address": f"{ep.ip}/{ep.prefixlen}" if ep.ip else "",
                        "IPv6Address": f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else ""}
    return {
        "Name": network.name, "Id": network.id, "Created": network.created, "Scope": "local",
        "Driver": network.driver, "EnableIPv6": network.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": dict(network.ipam_options) if network.ipam_options is not None else None, "Config": _ipam_shape(network)},
        "Internal": network.internal, "Attachable": network.attachable, "Ingress": False,
        "ConfigFrom": {"Network": network.config_from}, "ConfigOnly": network.config_only, "Containers": members,
        "Options": dict(network.options), "Labels": dict(network.labels),
    }


# --- routes --------------------------------------------------------------------------------
def _matches(network, filters: dict, manager) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "name" and not any(v in network.name for v in values):
            return False
        if key == "id" and not any(network.id.startswith(v) for v in values):
            return False
        if key == "driver" and network.driver not in values:
            return False
        if key == "label" and not all(label_matches(network.labels, v) for v in values):
            return False
        if key == "scope" and "local" not in values:
            return False
        if key == "type":
            if ("builtin" if network.builtin else "custom") not in values:
                return False
        if key == "dangling":
            if filters_api.truthy(values) != (not network.builtin and not manager.in_use(network)):
                return False
    return True


@router.get("/networks")
async def list_networks(req: Request):
    manager = req.daemon.networks
    filters = req.query.filters(_LIST_FILTERS)
    out = [network_shape(manager, n) for n in manager.all() if _matches(n, filters, manager)]
    out.sort(key=lambda n: n["Name"])
    return json_response(out)


@router.get("/networks/{id}")
async def inspect_network(req: Request):
    manager = req.daemon.networks
    network = manager.get(req.params["id"])
    scope = req.query.get("scope")
    if scope and scope not in ("local", "swarm", "global"):
        raise errors.InvalidParameter(f"invalid scope: {scope}")
    if scope and scope != "local":
        raise errors.NotFound(f"network {req.params['id']} not found")
    return json_response(network_shape(manager, network))


@router.post("/networks/create")
async def create_network(req: Request):
    body = await req.json(default=None)
    if not isinstance(body, dict):
        raise errors.InvalidParameter("network create needs a JSON object body")
    scope = body.get("Scope")
    if scope not in (None, "", "local"):
        raise errors.Forbidden(f"a network of scope {scope!r} needs a swarm: this node is not a swarm manager")
    network = await req.daemon.networks.create(network_spec(body))
    return json_response({"Id": network.id, "Warning": ""}, status=201)


@router.delete("/networks/{id}")
async def remove_network(req: Request):
    await req.daemon.networks.remove(req.params["id"])
    return empty(204)


def _running_pid(daemon, container) -> int | None:
    sup = daemon.containers.supervisor(container)
    run = sup.run
    if run is None or not container.state.status.is_live():
        return None
    return run.process.pid


@router.post("/networks/{id}/connect")
async def connect(req: Request):
    body = await req.json_object("types.NetworkConnect")
    ref = expect(body.get("Container"), str, "NetworkConnect.Container", "")
    if not ref:
        raise errors.InvalidParameter("no container specified")
    daemon = req.daemon
    settings = endpoint_settings(body.get("EndpointConfig"))
    container = daemon.containers.get(ref)
    await daemon.networks.connect(req.params["id"], container, _running_pid(daemon, container), settings)
    return empty(200)


@router.post("/networks/{id}/disconnect")
async def disconnect(req: Request):
    body = await req.json_object("types.NetworkDisconnect")
    ref = expect(body.get("Container"), str, "NetworkDisconnect.Container", "")
    if not ref:
        raise errors.InvalidParameter("no container specified")
    force = expect(body.get("Force"), bool, "NetworkDisconnect.Force", False)
    daemon = req.daemon
    container = daemon.containers.get(ref)
    await daemon.networks.disconnect(req.params["id"], container, force)
    return empty(200)


@router.post("/networks/prune")
async def prune(req: Request):
    manager = req.daemon.networks
    selected = filters_api.prune_filters(req.query.filters(filters_api.PRUNE))

    def keep(network) -> bool:
        return not selected.selects(parse_since(network.created), network.labels)

    removed = await manager.prune(keep)
    return json_response({"NetworksDeleted": removed or None})

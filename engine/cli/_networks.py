"""Network commands: network create/ls/inspect/rm/prune/connect/disconnect."""

from __future__ import annotations

import argparse

from ._app import Cli, CommandError, arg, command, key_values
from ._format import TemplateError, filters_param, render_rows, short_id

NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                   "IPv6": "IPV6", "Internal": "INTERNAL", "CreatedAt": "CREATED AT", "Labels": "LABELS"}
NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


@command("network create", "Create a network",
         arg("name"),
         arg("-d", "--driver", default="bridge", help="Driver to manage the Network"),
         arg("--subnet", action="append", default=[], help="Subnet in CIDR format"),
         arg("--gateway", action="append", default=[], help="IPv4 Gateway for the master subnet"),
         arg("--ip-range", action="append", default=[], help="Allocate container ip from a sub-range"),
         arg("--internal", action="store_true", help="Restrict external access to the network"),
         arg("--attachable", action="store_true", help="Enable manual container attachment"),
         arg("--ipv6", action="store_true", help="Enable IPv6 networking"),
         arg("-o", "--opt", action="append", default=[], help="Set driver specific options"),
         arg("--ipam-opt", action="append", default=[], help="Set IPAM driver specific options"),
         arg("--ipam-driver", default="default", help="IP Address Management Driver"),
         arg("--aux-address", action="append", default=[], help="Auxiliary IPv4 or IPv6 addresses used by Network driver"),
         arg("--config-only", action="store_true", help="Create a configuration only network"),
         arg("--config-from", default="", help="The network from which to copy the configuration"),
         arg("--scope", default="", help="Control the network's scope"),
         arg("--ingress", action="store_true", help="Create swarm routing-mesh network"),
         arg("--label", action="append", default=[], help="Set metadata on a network"))
def network_create(cli: Cli, a: argparse.Namespace) -> int:
    import ipaddress

    if len(a.gateway) > len(a.subnet) or len(a.ip_range) > len(a.subnet):
        raise CommandError("Error response from daemon: every ip-range or gateway must have a corresponding subnet", 1)
    configs = []
    for i, subnet in enumerate(a.subnet):
        entry = {"Subnet": subnet}
        if i < len(a.gateway):
            entry["Gateway"] = a.gateway[i]
        if i < len(a.ip_range):
            entry["IPRange"] = a.ip_range[i]
        configs.append(entry)
    for aux in a.aux_address:  # name=address, given to the subnet that holds the address (the docker CLI's rule)
        name, _, address = aux.partition("=")
        try:
            owner = next(c for c in configs
                         if ipaddress.ip_address(address) in ipaddress.ip_network(c["Subnet"], strict=False))
        except (ValueError, StopIteration):
            raise CommandError(f"no matching subnet for aux-address {address}", 1) from None
        owner.setdefault("AuxiliaryAddresses", {})[name] = address
    body = {"Name": a.name, "CheckDuplicate": True, "Driver": a.driver, "Internal": a.internal,
            "Attachable": a.attachable, "EnableIPv6": a.ipv6, "Options": key_values(a.opt, "--opt"),
            "Labels": key_values(a.label, "--label"), "Ingress": a.ingress, "ConfigOnly": a.config_only,
            "IPAM": {"Driver": a.ipam_driver, "Config": configs, "Options": key_values(a.ipam_opt, "--ipam-opt")}}
    if a.config_from:
        body["ConfigFrom"] = {"Network": a.config_from}
    if a.scope:
        body["Scope"] = a.scope
    res = cli.client.post("/networks/create", body)
    cli.print(res["Id"])
    return 0


@command("network ls", "List networks",
         arg("-f", "--filter", action="append", default=[], help="Provide filter values (e.g. 'driver=bridge')"),
         arg("--format", default=None, help="Pretty-print networks using a Go template"),
         arg("--no-trunc", action="store_true", help="Do not truncate the output"),
         arg("-q", "--quiet", action="store_true", help="Only display network IDs"),
         aliases=("network list",))
def network_ls(cli: Cli, a: argparse.Namespace) -> int:
    try:
        filters = filters_param(a.filter)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    nets = cli.client.get("/networks", params={"filters": filters}) or []
    nets.sort(key=lambda n: n.get("Name", ""))
    rows = [{
        "ID": short_id(n["Id"], a.no_trunc), "Name": n["Name"], "Driver": n["Driver"],
        "Scope": n.get("Scope", "local"), "IPv6": str(bool(n.get("EnableIPv6"))).lower(),
        "Internal": str(bool(n.get("Internal"))).lower(), "CreatedAt": n.get("Created", ""),
        "Labels": ",".join(f"{k}={v}" for k, v in (n.get("Labels") or {}).items()),
    } for n in nets]
    if a.quiet:
        for r in rows:
            cli.print(r["ID"])
        return 0
    try:
        out = render_rows(a.format or NETWORK_TABLE, rows, NETWORK_HEADERS)
    except TemplateError as exc:
        raise CommandError(f"template parsing error: {exc}") from None
    cli.out.write(out)
    return 0


@command("network inspect", "Display detailed information on one or more networks",
         arg("networks", nargs="+"),
         arg("-f", "--format", default=None, help="Format output using a Go template"),
         arg("-v", "--verbose", action="store_true", help="Verbose output for diagnostics"))
def network_inspect(cli: Cli, a: argparse.Namespace) -> int:
    return cli.inspect_each(a.networks, "/networks/{}", "network", a.format)


@command("network rm", "Remove one or more networks", arg("networks", nargs="+"),
         arg("-f", "--force", action="store_true", help="Do not error if the network does not exist"),
         aliases=("network remove",))
def network_rm(cli: Cli, a: argparse.Namespace) -> int:
    return cli.remove_each(a.networks, "/networks/{}", missing_ok=a.force)


@command("network prune", "Remove all unused networks",
         arg("-f", "--force", action="store_true", help="Do not prompt for confirmation"),
         arg("--filter", action="append", default=[], help="Provide filter values (e.g. 'label=<label>')"))
def network_prune(cli: Cli, a: argparse.Namespace) -> int:
    if not a.force:
        cli.out.write("WARNING! This will remove all custom networks not used by at least one container.\n"
                      "Are you sure you want to continue? [y/N] ")
        cli.out.flush()
        answer = input()
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    try:
        filters = filters_param(a.filter)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    res = cli.client.post("/networks/prune", params={"filters": filters}) or {}
    deleted = res.get("NetworksDeleted") or []
    if deleted:
        cli.print("Deleted Networks:")
        for name in deleted:
            cli.print(name)
    return 0


@command("network connect", "Connect a container to a network",
         arg("network"), arg("container"),
         arg("--alias", action="append", default=[], help="Add network-scoped alias for the container"),
         arg("--ip", default=None, help="IPv4 address (e.g., 172.30.100.104)"),
         arg("--link", action="append", default=[], help="Add link to another container"))
def network_connect(cli: Cli, a: argparse.Namespace) -> int:
    endpoint: dict = {"Aliases": a.alias or None}
    if a.ip:
        endpoint["IPAMConfig"] = {"IPv4Address": a.ip}
    cli.client.post(f"/networks/{a.network}/connect", {"Container": a.container, "EndpointConfig": endpoint})
    return 0


@command("network disconnect", "Disconnect a container from a network",
         arg("network"), arg("container"),
         arg("-f", "--force", action="store_true", help="Force the container to disconnect from a network"))
def network_disconnect(cli: Cli, a: argparse.Namespace) -> int:
    cli.client.post(f"/networks/{a.network}/disconnect", {"Container": a.container, "Force": a.force})
    return 0

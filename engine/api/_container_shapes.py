"""Docker's JSON of a container as inspect and list show it (State, Health, Mounts,
NetworkSettings, the summary) and the list's filters; the routes are engine.api.containers."""

from __future__ import annotations

import re

from engine import errors
from engine.api import _container_json as container_json
from engine.api import _filters as filters_api
from engine.api import networks as networks_api
from engine.api.volumes import mount_point_shape
from engine.containers import health
from engine.containers.health import Health
from engine.containers.model import Container, Status, rfc3339_ns
from engine.filters import label_matches


# --- shapes ----------------------------------------------------------------------------------
def _no_network_settings() -> dict:
    """NetworkSettings of a container without a live endpoint (its Networks added to it)."""
    return {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "MacAddress": "",
    }


def network_settings(c: Container, daemon=None) -> dict:
    mode = c.host_config.network_mode
    networks = {}
    live = getattr(daemon, "networks", None)
    if live is not None:
        return {**_no_network_settings(), **networks_api.container_settings(live, c)}
    if mode in ("host", "none"):
        networks[mode] = {
            "IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": mode, "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None,
        }
    return {**_no_network_settings(), "Networks": networks}


def volume_points(c: Container, daemon) -> list:
    volumes = getattr(daemon, "volumes", None) or getattr(getattr(daemon, "containers", None), "volumes", None)
    return volumes.container_mounts(c.id) if volumes is not None else []


def mounts(c: Container, daemon=None) -> list[dict]:
    out = []
    for bind in c.host_config.binds or ():
        if bind.is_volume:
            continue  # a named volume: below
        out.append({
            "Type": "bind", "Source": bind.source, "Destination": bind.destination,
            "Mode": bind.mode, "RW": not bind.read_only, "Propagation": bind.propagation,
        })
    for mount in c.host_config.mounts or ():
        if mount.type == "volume":
            continue
        out.append({
            "Type": mount.type, "Source": mount.source, "Destination": mount.target, "Mode": "",
            "RW": not mount.read_only, "Propagation": mount.effective_propagation,
        })
    out.extend({"Type": "bind", "Source": b.source, "Destination": b.destination, "Mode": "",
                "RW": not b.read_only, "Propagation": b.propagation} for b in c.host_config.inherited_binds)
    out.extend(mount_point_shape(point) for point in volume_points(c, daemon))
    return out


def health_shape(health: Health) -> dict:
    """State.Health as dockerd shows it (Log oldest first, null before the first probe)."""
    return {
        "Status": health.status,
        "FailingStreak": health.failing_streak,
        "Log": [
            {"Start": rfc3339_ns(r.start_ns), "End": rfc3339_ns(r.end_ns), "ExitCode": r.exit_code, "Output": r.output}
            for r in health.log
        ] or None,
    }


def state_shape(c: Container) -> dict:
    st = c.state
    state = {
        "Status": st.status.value,
        "Running": st.status in (Status.RUNNING, Status.PAUSED),
        "Paused": st.status is Status.PAUSED,
        "Restarting": st.status is Status.RESTARTING,
        "OOMKilled": st.oom_killed,
        "Dead": st.status is Status.DEAD,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": rfc3339_ns(st.started_at_ns),
        "FinishedAt": rfc3339_ns(st.finished_at_ns),
    }
    if c.state.health is not None:
        state["Health"] = health_shape(c.state.health)
    return state


def inspect_shape(c: Container, daemon) -> dict:
    try:
        lower = ":".join(daemon.containers.lower_dirs(c))
    except errors.NotFound:
        lower = ""
    return {
        "Id": c.id,
        "Created": rfc3339_ns(c.created_ns),
        "Path": c.path,
        "Args": c.args,
        "State": state_shape(c),
        "Image": c.image_id,
        "ResolvConfPath": c.resolv_conf_path,
        "HostnamePath": c.hostname_path,
        "HostsPath": c.hosts_path,
        "LogPath": c.log_path,
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": list(c.exec_ids) or None,
        "HostConfig": {**container_json.host_config_shape(c.host_config), "Links": networks_api.host_links(c)},
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {"LowerDir": lower, "MergedDir": c.rootfs, "UpperDir": c.upper_dir, "WorkDir": c.work_dir},
        },
        "Mounts": mounts(c, daemon),
        "Config": container_json.config_shape(c.config),
        "NetworkSettings": network_settings(c, daemon),
    }


def summary_shape(c: Container, daemon=None) -> dict:
    live = getattr(daemon, "networks", None)
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.config.image,
        "ImageID": c.image_id,
        "Command": c.command_line,
        "Created": c.created_ns // 1_000_000_000,
        "Ports": networks_api.ports_summary(live, c) if live is not None else [],
        "Labels": dict(c.config.labels),
        "State": c.state.status.value,
        "Status": c.status_text(),
        "HostConfig": {"NetworkMode": c.host_config.network_mode},
        "NetworkSettings": {"Networks": network_settings(c, daemon)["Networks"]},
        "Mounts": mounts(c, daemon),
    }


# --- list / filters --------------------------------------------------------------------------


def _name_matches(pattern: str, name: str) -> bool:
    """dockerd matches the regexp against the name with and without its leading slash
    ("^/web$", "^web")."""
    try:
        return re.search(pattern, "/" + name) is not None or re.search(pattern, name) is not None
    except re.error:
        return False


def _port_set(values: list[str], key: str) -> set[str]:
    """Filter values "80", "80/udp", "8000-8010[/tcp]" → {"80/tcp", …}, as dockerd parses them."""
    ports = set()
    for value in values:
        spec, _, proto = value.partition("/")
        first, _, last = spec.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise errors.InvalidParameter(f"invalid port specification: {value!r} in filter '{key}'")
        ports.update(f"{p}/{proto or 'tcp'}" for p in range(int(first), int(last or first) + 1))
    return ports


def _ports(key: str, values: list[str]) -> None:
    _port_set(values, key)


LIST_FILTERS: dict[str, filters_api.Check | None] = {
    "id": None, "name": None, "label": None, "ancestor": None, "before": None, "since": None, "volume": None,
    "network": None, "isolation": None, "publish": _ports, "expose": _ports, "exited": filters_api.integer(),
    "is-task": filters_api.boolean, "status": filters_api.one_of({s.value for s in Status}),
    "health": filters_api.one_of(health.STATUSES, "Unrecognised filter value for health: {value}"),
}
"""docker ps's filters (before and since name containers: resolved by the route)."""


def _on_network(settings: dict, values: list[str]) -> bool:
    networks = settings.get("Networks") or {}
    return any(v in networks or any((ep or {}).get("NetworkID", "").startswith(v) for ep in networks.values())
               for v in values)


def matches(c: Container, filters: dict[str, list[str]], daemon) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "id" and not any(c.id.startswith(v) for v in values):
            return False
        if key == "name" and not any(_name_matches(v, c.name) for v in values):
            return False
        if key == "label" and not all(label_matches(c.config.labels, v) for v in values):
            return False
        if key == "status":
            if c.state.status.value not in values:
                return False
        if key == "exited":
            if c.state.status is not Status.EXITED or str(c.state.exit_code) not in values:
                return False
        if key == "ancestor":
            ok = False
            for v in values:
                try:
                    ok = ok or daemon.images.resolve(v).id == c.image_id
                except errors.NotFound:
                    ok = ok or c.config.image == v
            if not ok:
                return False
        if key in ("before", "since"):
            for v in values:
                other = daemon.containers.get(v)  # the route checked they exist
                if key == "before" and not c.created_ns < other.created_ns:
                    return False
                if key == "since" and not c.created_ns > other.created_ns:
                    return False
        if key == "is-task" and filters_api.truthy(values):
            return False  # no swarm: no container is a task
        if key == "health":
            status = c.state.health.status if c.state.health is not None else health.NO_HEALTHCHECK
            if status not in values:
                return False
        if key == "network" and not _on_network(network_settings(c, daemon), values):
            return False
        if key == "volume":
            mounted = {m.get("Name") or m.get("Source") for m in mounts(c, daemon)} | \
                {m.get("Destination") for m in mounts(c, daemon)}
            if not mounted & set(values):
                return False
        if key in ("expose", "publish"):
            side = "PrivatePort" if key == "expose" else "PublicPort"
            live = getattr(daemon, "networks", None)
            ports = {f"{p[side]}/{p['Type']}" for p in (networks_api.ports_summary(live, c) if live else [])
                     if p.get(side)}
            if not ports & _port_set(values, key):
                return False
    return True

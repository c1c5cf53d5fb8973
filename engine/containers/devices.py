"""Host devices given to a container (`--device`, HostConfig.Devices) and extra device cgroup
rules (`--device-cgroup-rule`, HostConfig.DeviceCgroupRules), as Docker does it: the form is
checked at create, the host paths are looked up at each start (a device may come and go)."""

from __future__ import annotations

import os
import stat

from engine import errors
from engine.runtime import DeviceSpec, cgroups


def validate(host: dict) -> None:
    """At create: the shape of each mapping and rule (nothing on the host is looked at)."""
    devices = host.get("Devices") or []
    if not isinstance(devices, list):
        raise errors.InvalidParameter("invalid Devices: a list of device mappings is expected")
    for mapping in devices:
        if not isinstance(mapping, dict) or not isinstance(mapping.get("PathOnHost"), str) or not mapping["PathOnHost"]:
            raise errors.InvalidParameter(f"invalid device mapping {mapping!r}: PathOnHost is required")
        inside = mapping.get("PathInContainer") or ""
        if inside and not inside.startswith("/"):
            raise errors.InvalidParameter(f"invalid device mapping: {inside} is not an absolute path")
        mode = mapping.get("CgroupPermissions") or "rwm"
        if not isinstance(mode, str) or set(mode) - set("rwm"):
            raise errors.InvalidParameter(f"invalid device mode: {mode}")
    rules = host.get("DeviceCgroupRules") or []
    if not isinstance(rules, list):
        raise errors.InvalidParameter("invalid DeviceCgroupRules: a list of rules is expected")
    for rule in rules:
        cgroups.DeviceRule.parse(rule)


def _node(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None


def _device(st: os.stat_result, inside: str, access: str) -> tuple[DeviceSpec, cgroups.DeviceRule]:
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return (DeviceSpec(path=inside, type=kind, major=major, minor=minor, mode=stat.S_IMODE(st.st_mode),
                       uid=st.st_uid, gid=st.st_gid),
            cgroups.DeviceRule(kind, major, minor, access))


def resolve(host: dict) -> tuple[tuple[DeviceSpec, ...], tuple[cgroups.DeviceRule, ...]]:
    """At start (blocking: call from a worker thread): the nodes to create in the container
    and the cgroup rules that allow them plus the DeviceCgroupRules. A host path that is a
    directory gives every device node under it, at the same place under the container path.
    A missing host device fails the start with Docker's message."""
    nodes: list[DeviceSpec] = []
    rules: list[cgroups.DeviceRule] = []
    for mapping in host.get("Devices") or []:
        on_host = mapping["PathOnHost"]
        inside = mapping.get("PathInContainer") or on_host
        access = mapping.get("CgroupPermissions") or "rwm"
        resolved = os.path.realpath(on_host)
        found = []
        if (st := _node(resolved)) is not None:
            found.append(_device(st, inside, access))
        elif os.path.isdir(resolved):
            for dirpath, _dirs, files in os.walk(resolved):
                for name in sorted(files):
                    path = os.path.join(dirpath, name)
                    if (st := _node(path)) is not None:
                        found.append(_device(st, inside + path[len(resolved):], access))
        if not found:
            reason = "not a device node" if os.path.exists(resolved) else "no such file or directory"
            raise errors.SystemError_(
                f'error gathering device information while adding custom device "{on_host}": {reason}')
        for node, rule in found:
            nodes.append(node)
            rules.append(rule)
    rules += [cgroups.DeviceRule.parse(r) for r in host.get("DeviceCgroupRules") or []]
    return tuple(nodes), tuple(rules)

"""Host devices given to a container (`--device`, HostConfig.Devices) and extra device cgroup
rules (`--device-cgroup-rule`, HostConfig.DeviceCgroupRules), as Docker does it: the form is
checked at create, the host paths are looked up at each start (a device may come and go)."""

from __future__ import annotations

import os
import stat

from engine import errors
from engine.containers.spec import HostConfig
from engine.runtime import DeviceSpec, cgroups


def validate(host: HostConfig) -> None:
    """At create: each mapping and rule (nothing on the host is looked at)."""
    for mapping in host.devices:
        if not mapping.path_on_host:
            raise errors.InvalidParameter(f"invalid device mapping {mapping!r}: PathOnHost is required")
        inside = mapping.path_in_container
        if inside and not inside.startswith("/"):
            raise errors.InvalidParameter(f"invalid device mapping: {inside} is not an absolute path")
        mode = mapping.cgroup_permissions or "rwm"
        if set(mode) - set("rwm"):
            raise errors.InvalidParameter(f"invalid device mode: {mode}")
    for rule in host.device_cgroup_rules or ():
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


def resolve(host: HostConfig) -> tuple[tuple[DeviceSpec, ...], tuple[cgroups.DeviceRule, ...]]:
    """At start (blocking: call from a worker thread): the nodes to create in the container
    and the cgroup rules that allow them plus the DeviceCgroupRules. A host path that is a
    directory gives every device node under it, at the same place under the container path.
    A missing host device fails the start with Docker's message."""
    nodes: list[DeviceSpec] = []
    rules: list[cgroups.DeviceRule] = []
    for mapping in host.devices:
        on_host = mapping.path_on_host
        inside = mapping.path_in_container or on_host
        access = mapping.cgroup_permissions or "rwm"
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
    rules += [cgroups.DeviceRule.parse(r) for r in host.device_cgroup_rules or ()]
    return tuple(nodes), tuple(rules)

"""HostConfig.CgroupParent: where a container's cgroups live. dockerd's cgroupfs driver
rules: an absolute parent is under each hierarchy's root, a relative one under the daemon's
own cgroup; empty = the daemon's --cgroup-parent. Every place that finds a container's cgroup
(start, stats, top, update, pause, re-adoption, removal, startup cleanup) goes through here."""

from __future__ import annotations

from engine.runtime import cgroups


def parent_of(container, default: str) -> str:
    return container.host_config.cgroup_parent or default


def cgroup_of(container, default: str) -> cgroups.CgroupManager:
    return cgroups.for_container(parent_of(container, default), container.id)


def validate(parent: str) -> None:
    if parent:
        cgroups.check_name("cgroup parent", parent, allow_slash=True)

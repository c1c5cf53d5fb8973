"""`docker update`: new resource limits and restart policy for a container. They are merged
into its record as dockerd merges them (a zero/unset field keeps the old value), applied to
the cgroups of a running container at once, and persisted; a failure changes nothing."""

from __future__ import annotations

import attrs
import trio

from engine import errors
from engine.containers.config import MIN_MEMORY, check_kernel_memory
from engine.containers.model import Container, Status
from engine.containers.spec import HostConfig, RestartPolicy
from engine.runtime import cgroups

# cgroups.Resources ↔ ResourceLimits fields where zero means "keep".
_FIELDS = ("blkio_weight", "cpu_shares", "nano_cpus", "cpu_period", "cpu_quota", "cpuset_cpus", "cpuset_mems",
           "memory", "memory_swap", "memory_reservation", "cpu_realtime_period", "cpu_realtime_runtime")


def merged_host_config(container: Container, resources: cgroups.Resources,
                       restart_policy: RestartPolicy | None) -> HostConfig:
    """The container's HostConfig with the update applied; InvalidParameter (dockerd's
    messages) when the update conflicts with what is set."""
    host = container.host_config
    old = host.resources

    def conflict(message: str) -> errors.InvalidParameter:
        return errors.InvalidParameter(f"Cannot update container {container.id}: {message}")

    for new, current, message in (
        (resources.nano_cpus, old.cpu_period, "Nano CPUs cannot be updated as CPU Period has already been set"),
        (resources.nano_cpus, old.cpu_quota, "Nano CPUs cannot be updated as CPU Quota has already been set"),
        (resources.cpu_period, old.nano_cpus, "CPU Period cannot be updated as NanoCPUs has already been set"),
        (resources.cpu_quota, old.nano_cpus, "CPU Quota cannot be updated as NanoCPUs has already been set"),
    ):
        if new and new > 0 and current > 0:
            raise conflict(f"Conflicting options: {message}")
    if resources.memory and resources.memory > old.memory_swap and not resources.memory_swap:
        raise conflict("Memory limit should be smaller than already set memoryswap limit, "
                       "update the memoryswap at the same time")
    changed = {name: getattr(resources, name) for name in _FIELDS if getattr(resources, name)}
    if resources.pids_limit is not None:
        changed["pids_limit"] = resources.pids_limit if resources.pids_limit > 0 else 0
    host = attrs.evolve(host, resources=attrs.evolve(old, **changed))
    if restart_policy is not None and restart_policy.name:
        if restart_policy.name != "no" and host.auto_remove:
            raise conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
        host = attrs.evolve(host, restart_policy=restart_policy)
    return host


async def update_container(manager, container: Container, resources: cgroups.Resources,
                           restart_policy: RestartPolicy | None, kernel_memory: int = 0) -> list[str]:
    """Validate, apply to the live cgroups (running or paused), then persist. Returns warnings.
    A kernel memory limit is recorded only (deprecated, as at create)."""
    from engine.containers.launch import resources_from

    if container.state.status in (Status.REMOVING, Status.DEAD):
        raise errors.Conflict('Container is marked for removal and cannot be "update"')
    # dockerd checks the request's own values first, in its words (verifyContainerSettings:
    # not its swap-without-memory rule, the container may have the memory limit); what only
    # the merged values break is an update error ("Cannot update container …").
    if resources.memory and resources.memory < MIN_MEMORY:
        raise errors.InvalidParameter("Minimum memory limit allowed is 6MB")
    if resources.blkio_weight and not (10 <= resources.blkio_weight <= 1000):
        raise errors.InvalidParameter("Range of blkio weight is from 10 to 1000")
    cgroups.check_memory_reservation(resources.memory, resources.memory_reservation)
    cgroups.check_cfs(resources.cpu_period, resources.cpu_quota)
    if restart_policy is not None:
        restart_policy.validate()
    warnings = [check_kernel_memory(kernel_memory)] if kernel_memory else []
    cgroups.check_cpusets(resources.cpuset_cpus, resources.cpuset_mems, cgroups.support())
    if (resources.cpu_realtime_period or resources.cpu_realtime_runtime) and not cgroups.support().cpu_realtime:
        raise errors.InvalidParameter("Your kernel does not support CPU real-time scheduler")
    host = merged_host_config(container, resources, restart_policy)
    if kernel_memory:
        host = attrs.evolve(host, resources=attrs.evolve(host.resources, kernel_memory=kernel_memory))
    limits = resources_from(host)
    try:
        limits.validate()
    except errors.InvalidParameter as exc:
        raise errors.InvalidParameter(f"Cannot update container {container.id}: {exc.message}") from None
    run = manager.supervisor(container).run
    if run is not None and container.state.status in (Status.RUNNING, Status.PAUSED):
        try:
            warnings += await trio.to_thread.run_sync(run.cgroup.update, limits)
        except errors.EngineError as exc:
            # Some controllers may have taken the new values: put the recorded ones back.
            try:
                await trio.to_thread.run_sync(run.cgroup.update, resources_from(container.host_config))
            except errors.EngineError:
                pass
            raise errors.SystemError_(f"Cannot update container {container.id}: {exc.message}") from None
    container.host_config = host
    await trio.to_thread.run_sync(container.save)
    manager.publish(container, "update")
    return warnings

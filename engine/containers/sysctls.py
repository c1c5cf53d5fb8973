"""--sysctl (HostConfig.Sysctls): only the namespaced keys runc accepts, checked at create
against the container's namespace modes; the child writes them (engine.runtime RuntimeSpec.sysctls)."""

from __future__ import annotations

from engine import errors
from engine.containers.spec import HostConfig

#: IPC-namespaced kernel.* keys (plus every fs.mqueue.*), as runc's validator lists them.
IPC_KEYS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})


def validate(host: HostConfig) -> None:
    """Refuse what would not stay inside the container's own namespaces (runc's messages)."""
    sysctls = host.sysctls
    if sysctls is None:
        return
    network = host.network_mode or "default"
    for key in sysctls:
        if not key or any(p in ("", "..") for p in key.replace("/", ".").split(".")):
            raise errors.InvalidParameter(f'sysctl "{key}" is not in a separate kernel namespace')
        if key in IPC_KEYS or key.startswith("fs.mqueue."):
            if host.ipc_mode == "host":
                raise errors.InvalidParameter(f'sysctl "{key}" is not allowed in the hosts ipc namespace')
            continue
        if key.startswith("net."):
            if network == "host":
                raise errors.InvalidParameter(f'sysctl "{key}" is not allowed in the hosts network namespace')
            if network.startswith("container:"):
                raise errors.InvalidParameter(
                    f'sysctl "{key}" is not allowed: the network namespace is another container\'s')
            continue
        if host.uts_mode != "host":
            if key == "kernel.domainname":
                continue
            if key == "kernel.hostname":
                raise errors.InvalidParameter(
                    f'sysctl "{key}" is not allowed as it conflicts with the OCI "hostname" field')
        raise errors.InvalidParameter(f'sysctl "{key}" is not in a separate kernel namespace')

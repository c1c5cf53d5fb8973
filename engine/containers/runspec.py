"""A container's typed spec → the runtime's flat RuntimeSpec (at each start). Docker's defaults
are set here explicitly; the runtime knows nothing of Docker's JSON."""

from __future__ import annotations

import functools
import os
import stat

from engine import errors
from engine.containers import config as cfg
from engine.containers import propagation as bind_propagation
from engine.containers.model import Container
from engine.containers.spec import HostConfig
from engine.runtime import (
    DEFAULT_DEVICES,
    INIT_PATH,
    DeviceSpec,
    MASKED_PATHS,
    MOUNT_FLAG_OPTIONS,
    READONLY_PATHS,
    MountSpec,
    ProcessSpec,
    RuntimeSpec,
    default_mounts,
    init_mount,
    resolve_capabilities,
    seccomp_program,
)


def namespaces_for(container: Container, donor_pid) -> dict[str, str | None]:
    """New pid/mnt/uts/ipc/cgroup/net namespaces unless a mode shares the host's or another
    container's (CgroupnsMode "host": the host's cgroup namespace). `donor_pid(kind, ref)`
    gives the pid of the running container whose namespace "container:<ref>" joins."""
    host = container.host_config
    namespaces: dict[str, str | None] = {"mnt": None}
    if host.cgroupns_mode != "host":
        namespaces["cgroup"] = None
    if host.uts_mode != "host":
        namespaces["uts"] = None
    for ns, kind, mode in (("pid", "pid", host.pid_mode), ("ipc", "ipc", host.ipc_mode),
                           ("net", "network", host.network_mode)):
        if mode.startswith("container:"):
            namespaces[ns] = f"/proc/{donor_pid(kind, mode.split(':', 1)[1])}/ns/{ns}"
        elif mode != "host":
            namespaces[ns] = None
    return namespaces


def check_donors(host: HostConfig, get_container) -> None:
    """At create, as dockerd: the container a PidMode or IpcMode "container:<ref>" names must
    exist (its namespaces are joined at start, when it must run), and so must every container
    a link names (400, not 404: the CLI would go and pull the image)."""
    for mode in (host.pid_mode, host.ipc_mode):
        ref = mode.split(":", 1)[1] if mode.startswith("container:") else ""
        if ref:
            try:
                get_container(ref)
            except errors.NotFound as exc:
                raise errors.InvalidParameter(exc.message) from None
    if host.links:
        from engine.networks import links

        for name, _alias in links.parse_all(host.links):
            try:
                get_container(name)
            except errors.NotFound as exc:
                raise errors.InvalidParameter(f"could not get container for {name}: {exc.message}") from None


def _shm_mount(host: HostConfig, shm_source: str | None) -> MountSpec | None:
    """/dev/shm as dockerd mounts it: a host-side one bound in (`shm_source`: the container's
    own when IPC-shareable, the donor's for container:<ref>, the host's for host), none for
    IpcMode none, else a tmpfs of the container's own."""
    if host.ipc_mode == "none":
        return None
    if shm_source is not None:
        return MountSpec(destination="/dev/shm", type="bind", source=shm_source, options=("rbind", "rprivate"))
    return MountSpec(destination="/dev/shm", type="tmpfs", source="shm",
                     options=("nosuid", "noexec", "nodev", "mode=1777", f"size={host.shm_bytes}"))


#: /dev entries a privileged container does not copy from the host (Docker's HostDevices).
_SKIP_HOST_DEV = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev", "console", "ptmx"}


def host_devices() -> tuple[DeviceSpec, ...]:
    """Every character/block device node under the host's /dev, as --privileged gets them."""
    found = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        if dirpath == "/dev":
            dirnames[:] = [d for d in dirnames if d not in _SKIP_HOST_DEV]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if dirpath == "/dev" and name in _SKIP_HOST_DEV:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                found.append(DeviceSpec(
                    path=path, type="c" if stat.S_ISCHR(st.st_mode) else "b",
                    major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                    mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                ))
    return tuple(found)


def _tmpfs_mounts(host: HostConfig) -> list[MountSpec]:
    return [_tmpfs(destination, [o for o in (options or "").split(",") if o])
            for destination, options in (host.tmpfs or {}).items()]


#: File system data a tmpfs may be given, as dockerd's MergeTmpfsOptions allows.
_TMPFS_DATA = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"})


def _tmpfs(destination: str, options: list[str]) -> MountSpec:
    """A tmpfs as dockerd mounts one: noexec, nosuid and nodev unless the options say
    otherwise (exec, suid, dev: later options win), with dockerd's refusal of the others."""
    for option in options:
        key, eq, _ = option.partition("=")
        if option not in MOUNT_FLAG_OPTIONS and not (eq and key in _TMPFS_DATA):
            quoted = " ".join(f'"{part}"' for part in option.split("=", 1))
            raise errors.SystemError_(f"invalid tmpfs option [{quoted}]")
    return MountSpec(destination=destination, type="tmpfs", source="tmpfs",
                     options=("noexec", "nosuid", "nodev", *options))


def _bind_mounts(container: Container) -> list[MountSpec]:
    mounts = []
    host = container.host_config
    for bind in host.binds or ():
        if bind.is_volume:
            continue  # a named volume: engine.volumes mounted it (volume_mounts)
        if not os.path.exists(bind.source):
            # Docker creates a missing bind source directory.
            os.makedirs(bind.source, exist_ok=True)
        mounts.append(_bind(bind.source, bind.destination, bind.propagation, bind.read_only,
                            named=bool(bind.named_propagation)))
    for mount in host.mounts or ():
        kind = mount.type or "bind"
        if kind == "bind":
            mounts.append(_bind(mount.source, mount.target, mount.effective_propagation, mount.read_only,
                                named=bool(mount.propagation)))
        elif kind == "tmpfs":  # dockerd's ConvertTmpfsOptions
            options = ["ro"] if mount.read_only else []
            options += [f"mode={mount.tmpfs_mode:o}"] if mount.tmpfs_mode else []
            options += [f"size={mount.tmpfs_size}"] if mount.tmpfs_size else []
            mounts.append(_tmpfs(mount.target, options))
        elif kind != "volume":  # volumes: see volume_mounts
            raise errors.InvalidParameter(f"mount type {kind!r} is not supported yet")
    # A donor's rslave may be its default over the data root: not checked, as there.
    mounts += [_bind(b.source, b.destination, b.propagation, b.read_only, named=b.propagation != "rslave")
               for b in host.inherited_binds]
    return mounts


def _bind(source: str, destination: str, propagation: str, read_only: bool | None, named: bool = True) -> MountSpec:
    """An rbind; a propagation the user named needs a source mount that can give it (rslave
    given by default over the data root works on a private source too: only the root's copy,
    which is shared, has a master)."""
    if named or propagation != "rslave":
        bind_propagation.check(source, propagation)
    options = ("rbind", propagation) + (("ro",) if read_only else ())
    return MountSpec(destination=destination, type="bind", source=source, options=options)


def _volume_mounts(points) -> list[MountSpec]:
    """engine.volumes MountPoints (mounted: .source is the host path) → rbind mounts."""
    return [MountSpec(destination=p.destination, type="bind", source=p.source,
                      options=("rbind", "rprivate") + (() if p.rw else ("ro",))) for p in points]


def build_runtime_spec(container: Container, cgroup_mounts: list[MountSpec], namespaces: dict,
                       volume_mounts=(), extra_env=(), devices=(), shm_source: str | None = None,
                       user: cfg.ExecUser | None = None, daemon=None) -> RuntimeSpec:
    """Everything the child needs between clone and exec. Reads the container's /etc/passwd
    (for -u name) unless given the `user` it names, so call it after the rootfs is mounted
    and from a worker thread (when it reads, or a bind source is made).
    `extra_env` (legacy link variables) come before the container's own Env, which wins;
    `devices` (--device nodes) come after the default ones and, privileged, the host's;
    `daemon` (engine.config.Config): its default ulimits (under the container's own), --init,
    no-new-privileges and seccomp profile (when the container says nothing of them)."""
    conf, host = container.config, container.host_config
    hostname = conf.hostname or container.short_id
    privileged = host.privileged
    if user is None:
        user = cfg.resolve_user(container.rootfs, conf.user, host.group_add)
    security = host.security_opt or ()
    capabilities = tuple(resolve_capabilities(host.cap_add or (), host.cap_drop or (), privileged))
    init = bool(host.init if host.init is not None else daemon is not None and daemon.init)
    process = ProcessSpec(
        # --init: pe-init is PID 1 and runs the command as its child (signals, zombies).
        args=([INIT_PATH, "--"] if init else []) + [container.path, *container.args],
        exec_signals_blocked=init,
        env=cfg.with_home(cfg.process_env(conf.env, hostname, conf.tty, extra_env), user),
        cwd=conf.working_dir or "/",
        uid=user.uid,
        gid=user.gid,
        additional_gids=user.groups,
        capabilities=capabilities,
        no_new_privileges=cfg.no_new_privileges(security, daemon is not None and daemon.no_new_privileges),
        rlimits=cfg.rlimits(host, daemon.default_ulimits if daemon is not None else ()),
        tty=conf.tty,
        seccomp_bpf=seccomp_program(security, privileged, capabilities, daemon.seccomp_profile if daemon else ""),
        oom_score_adj=host.oom_score_adj,
    )
    mounts: list[MountSpec] = []
    for mount in default_mounts():
        if mount.destination == "/dev/shm":
            mount = _shm_mount(host, shm_source)
            if mount is None:
                continue
        if mount.destination == "/sys" and privileged:
            mount = MountSpec(destination="/sys", type="sysfs", source="sysfs", options=("nosuid", "noexec", "nodev"))
        mounts.append(mount)
    mounts.extend(cgroup_mounts)
    # User mounts and the binds for hostname/hosts/resolv.conf (the files live in the container
    # dir), parents before children: Docker sorts them together by path depth, so a volume on
    # /etc does not hide them; a user mount on one of those paths replaces ours.
    user = _tmpfs_mounts(host) + _bind_mounts(container) + _volume_mounts(volume_mounts)
    if init:
        user.append(init_mount())
    targets = {os.path.normpath(m.destination) for m in user}
    for source, destination in (
        (container.resolv_conf_path, "/etc/resolv.conf"),
        (container.hostname_path, "/etc/hostname"),
        (container.hosts_path, "/etc/hosts"),
    ):
        if destination not in targets:
            user.insert(0, MountSpec(destination=destination, type="bind", source=source, options=("rbind", "rprivate")))
    user.sort(key=lambda m: len([p for p in m.destination.split("/") if p]))
    mounts.extend(user)
    return RuntimeSpec(
        devices=DEFAULT_DEVICES + (host_devices() if privileged else ()) + tuple(devices),
        rootfs=container.rootfs,
        readonly_rootfs=host.readonly_rootfs,
        hostname=hostname,
        process=process,
        mounts=tuple(mounts),
        # [] (--security-opt systempaths=unconfined) masks nothing; None (a record from
        # before create filled them in) the defaults.
        masked_paths=() if privileged else tuple(MASKED_PATHS if host.masked_paths is None else host.masked_paths),
        readonly_paths=() if privileged else tuple(READONLY_PATHS if host.readonly_paths is None
                                                   else host.readonly_paths),
        namespaces=namespaces,
        privileged=privileged,
        sysctls=_sysctls(host, namespaces),
    )


def _sysctls(host: HostConfig, namespaces: dict) -> tuple[tuple[str, str], ...]:
    """The container's --sysctl, over dockerd 20.10's defaults for a network namespace of its
    own: unprivileged ICMP echo sockets and ports below 1024 without a capability."""
    sysctls = dict(host.sysctls or {})
    if "net" in namespaces and namespaces["net"] is None:
        for key, value in _own_netns_defaults():
            sysctls.setdefault(key, value)
    return tuple(sorted(sysctls.items()))


@functools.cache
def _own_netns_defaults() -> tuple[tuple[str, str], ...]:
    # ip_unprivileged_port_start came with Linux 4.11; dockerd sets it only where it exists.
    defaults = [("net.ipv4.ping_group_range", "0 2147483647")]
    if os.path.exists("/proc/sys/net/ipv4/ip_unprivileged_port_start"):
        defaults.append(("net.ipv4.ip_unprivileged_port_start", "0"))
    return tuple(defaults)

"""Container model: the persisted record and its lifecycle state machine.

The record is what survives a daemon restart (written as one JSON file per container, temp name
then rename). Runtime-only things — the process, pumps, attach subscribers — live on the
supervisor (engine/containers/supervisor.py), never here.
"""

from __future__ import annotations

import enum
import os
import time

import attrs

from engine import errors
from engine.containers.health import Health, health_from
from engine.containers.spec import ContainerConfig, HostConfig, RestartPolicy  # noqa: F401 (RestartPolicy: re-exported)
from engine.timefmt import format_rfc3339nano
from engine.units import human_duration

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_ns() -> int:
    return time.time_ns()


def rfc3339_ns(t_ns: int | None) -> str:
    """Docker's timestamp format: RFC 3339 with nanoseconds, UTC."""
    return format_rfc3339nano(t_ns, fixed=True) if t_ns else ZERO_TIME


class Status(str, enum.Enum):
    """Docker's container states. The `can_*` checks are where each verb asks permission."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"

    def can_start(self) -> bool:
        return self in (Status.CREATED, Status.EXITED)

    def can_stop(self) -> bool:
        return self in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    def can_kill(self) -> bool:
        return self in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    def can_pause(self) -> bool:
        return self is Status.RUNNING

    def can_unpause(self) -> bool:
        return self is Status.PAUSED

    def can_exec(self) -> bool:
        return self is Status.RUNNING

    def is_live(self) -> bool:
        """A process exists (or is about to, for restarting)."""
        return self in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)


@attrs.define
class State:
    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at_ns: int = 0
    finished_at_ns: int = 0
    health: Health | None = attrs.field(default=None, converter=health_from)


@attrs.frozen
class ExitStatus:
    """What a wait for a container answers: its exit code and the error of its last start."""

    exit_code: int
    error: str = ""


@attrs.define
class Container:
    """One container's persisted record (engine.containers.record reads and writes it). Its
    spec (`config`, `host_config`) is built once at create; an update replaces `host_config`."""

    id: str
    name: str  # without the leading "/"
    created_ns: int
    image_id: str  # "sha256:…"
    path: str
    args: list[str]
    config: ContainerConfig
    host_config: HostConfig
    directory: str  # <data_root>/containers/<id>
    state: State = attrs.Factory(State)
    restart_count: int = 0
    manually_stopped: bool = False
    exec_ids: list[str] = attrs.Factory(list)
    # (config, host_config, their plain data): engine.containers.record's, not persisted
    _record_cache: tuple | None = attrs.field(default=None, init=False, repr=False, eq=False)
    # (record file size, spare file size) as the last save left them: engine.containers.record's
    _record_sizes: tuple | None = attrs.field(default=None, init=False, repr=False, eq=False)

    # --- paths -----------------------------------------------------------------------------
    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def log_path(self) -> str:
        return os.path.join(self.directory, f"{self.id}-json.log")

    @property
    def rootfs(self) -> str:
        return os.path.join(self.directory, "merged")

    @property
    def shm_path(self) -> str:
        """The host-side /dev/shm of an IPC-shareable container (its joiners mount it too)."""
        return os.path.join(self.directory, "shm")

    @property
    def upper_dir(self) -> str:
        return os.path.join(self.directory, "diff")

    @property
    def work_dir(self) -> str:
        return os.path.join(self.directory, "work")

    @property
    def hostname_path(self) -> str:
        return os.path.join(self.directory, "hostname")

    @property
    def hosts_path(self) -> str:
        return os.path.join(self.directory, "hosts")

    @property
    def resolv_conf_path(self) -> str:
        return os.path.join(self.directory, "resolv.conf")

    @property
    def record_path(self) -> str:
        return os.path.join(self.directory, "config.v2.json")

    # --- persistence ------------------------------------------------------------------------
    def save(self) -> None:
        from engine.containers import record

        record.save(self)

    @classmethod
    def load(cls, directory: str, legacy=None) -> "Container":
        """`legacy`: engine.containers.record.LegacyReader, for records of format 1."""
        from engine.containers import record

        return record.load(directory, legacy)

    # --- checks ------------------------------------------------------------------------------
    def wrong_state(self, verb: str) -> errors.Conflict:
        return errors.Conflict(
            f"Cannot {verb} container {self.id}: container is {self.state.status.value}"
        )

    @property
    def restart_policy(self) -> RestartPolicy:
        return self.host_config.restart_policy

    @property
    def command_line(self) -> str:
        """`docker ps`'s COMMAND as dockerd writes it: an argument with a space in '…'."""
        args = [f"'{a}'" if " " in a else a for a in self.args]
        return " ".join([self.path, *args]).strip()

    def status_text(self, now: int | None = None) -> str:
        """`docker ps` STATUS column ("Up 3 seconds", "Exited (0) 2 minutes ago")."""
        now = now or now_ns()
        st = self.state
        if st.status is Status.RUNNING and st.health is not None:
            # dockerd: "(health: starting)", "(healthy)", "(unhealthy)"
            health = "health: starting" if st.health.status == "starting" else st.health.status
            return f"Up {human_duration((now - st.started_at_ns) / 1e9)} ({health})"
        if st.status is Status.RUNNING:
            return f"Up {human_duration((now - st.started_at_ns) / 1e9)}"
        if st.status is Status.PAUSED:
            return f"Up {human_duration((now - st.started_at_ns) / 1e9)} (Paused)"
        if st.status is Status.RESTARTING:
            return f"Restarting ({st.exit_code}) {human_duration((now - st.finished_at_ns) / 1e9)} ago"
        if st.status is Status.EXITED:
            return f"Exited ({st.exit_code}) {human_duration((now - st.finished_at_ns) / 1e9)} ago"
        if st.status is Status.REMOVING:
            return "Removal In Progress"
        if st.status is Status.DEAD:
            return "Dead"
        return "Created"


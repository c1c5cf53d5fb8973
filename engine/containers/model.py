"""Container model: the persisted record and its lifecycle state machine.

The record is what survives a daemon restart (written as one JSON file per container, temp name
then rename). Runtime-only things — the process, pumps, attach subscribers — live on the
supervisor (engine/containers/supervisor.py), never here.
"""

from __future__ import annotations

import enum
import json
import os
import time

import attrs

from engine import errors
from engine.containers.health import Health, health_from
from engine.units import human_duration

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_ns() -> int:
    return time.time_ns()


def rfc3339_ns(t_ns: int | None) -> str:
    """Docker's timestamp format: RFC 3339 with nanoseconds, UTC."""
    if not t_ns:
        return ZERO_TIME
    secs, frac = divmod(t_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


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


@attrs.frozen
class RestartPolicy:
    """HostConfig.RestartPolicy. An empty name is what clients before Docker 25 sent for "no"."""

    name: str = "no"
    maximum_retry_count: int = 0

    @classmethod
    def from_docker(cls, value: dict | None) -> "RestartPolicy":
        value = value or {}
        retries = value.get("MaximumRetryCount") or 0
        if not isinstance(retries, int):
            raise errors.InvalidParameter("invalid restart policy: MaximumRetryCount must be an integer")
        return cls(value.get("Name") or "", retries)

    def validate(self) -> None:
        """dockerd's rules, with its messages."""
        if self.name in ("no", "always", "unless-stopped"):
            if self.maximum_retry_count:
                message = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                if self.maximum_retry_count < 0:
                    message += " and cannot be negative"
                raise errors.InvalidParameter(message)
        elif self.name == "on-failure":
            if self.maximum_retry_count < 0:
                raise errors.InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
        elif self.name:
            raise errors.InvalidParameter(
                f"invalid restart policy: unknown policy '{self.name}'; use one of 'no', 'always', "
                "'on-failure', or 'unless-stopped'"
            )

    def to_docker(self) -> dict:
        return {"Name": self.name or "no", "MaximumRetryCount": self.maximum_retry_count}


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

    def to_docker(self) -> dict:
        return {
            "Status": self.status.value,
            "Running": self.status in (Status.RUNNING, Status.PAUSED),
            "Paused": self.status is Status.PAUSED,
            "Restarting": self.status is Status.RESTARTING,
            "OOMKilled": self.oom_killed,
            "Dead": self.status is Status.DEAD,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": rfc3339_ns(self.started_at_ns),
            "FinishedAt": rfc3339_ns(self.finished_at_ns),
        }


@attrs.define
class Container:
    """One container's persisted record. `config` and `host_config` keep Docker's JSON shapes
    (normalized at create), because inspect returns them and clients compare them."""

    id: str
    name: str  # without the leading "/"
    created_ns: int
    image_id: str  # "sha256:…"
    path: str
    args: list[str]
    config: dict
    host_config: dict
    directory: str  # <data_root>/containers/<id>
    state: State = attrs.Factory(State)
    restart_count: int = 0
    manually_stopped: bool = False
    exec_ids: list[str] = attrs.Factory(list)

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
    def to_record(self) -> dict:
        # Shallow: json serialises config/host_config as they are; only State is attrs
        # (a deep attrs.asdict copy of every dict was most of a save's cost).
        record = {name: getattr(self, name) for name in _RECORD_FIELDS}
        state = attrs.asdict(self.state, recurse=True)
        state["status"] = self.state.status.value
        record["state"] = state
        return record

    @classmethod
    def from_record(cls, record: dict) -> "Container":
        state = record.pop("state")
        state["status"] = Status(state["status"])
        return cls(state=State(**state), **record)

    def save(self) -> None:
        """Write the record atomically (temp name, fsync-free rename: metadata is rebuilt
        from the kernel's view at recovery if it lags)."""
        tmp = self.record_path + ".tmp"
        data = json.dumps(self.to_record()).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, self.record_path)

    @classmethod
    def load(cls, directory: str) -> "Container":
        with open(os.path.join(directory, "config.v2.json")) as f:
            return cls.from_record(json.load(f))

    # --- checks ------------------------------------------------------------------------------
    def wrong_state(self, verb: str) -> errors.Conflict:
        return errors.Conflict(
            f"Cannot {verb} container {self.id}: container is {self.state.status.value}"
        )

    @property
    def restart_policy(self) -> dict:
        return self.host_config.get("RestartPolicy") or {"Name": "", "MaximumRetryCount": 0}

    @property
    def command_line(self) -> str:
        return " ".join([self.path, *self.args]).strip()

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


_RECORD_FIELDS = tuple(f.name for f in attrs.fields(Container) if f.name != "state")

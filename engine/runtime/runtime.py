"""The runtime interface the container managers use: how a container's processes are created,
waited for and found again after a daemon restart. The managers never call native/ or the
spawn protocol directly.

Two implementations:
    InProcessRuntime   clones from the daemon itself (engine/runtime/spawn.py); containers are
                       the daemon's children and die with its supervision (no live restore).
    SpawnerRuntime     engine/runtime/spawner.py: a small long-lived native process clones them
                       and reads their output into a spill file per run (engine/runtime/spill.py),
                       with a daemon or without one.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from engine.runtime.spawn import ContainerProcess, Prepare, Stdio, spawn_container, spawn_exec
from engine.runtime.spec import ProcessSpec, RuntimeSpec


@attrs.define
class Adopted:
    """A container process the runtime kept while no daemon watched it.
    Running: `process` is set and `fds` are the daemon-side stdio ends it held (in the order
    they were given to `hold`). Exited meanwhile: `exit_code` is set."""

    container_id: str
    pid: int
    process: ContainerProcess | None = None
    fds: list[int] = attrs.Factory(list)
    exit_code: int | None = None


@attrs.frozen
class HeldOutput:
    """The daemon-side output ends of an init the runtime holds from its spawn on, as after
    `hold(spill=spill_path(directory, pid))`: no message of its own after the spawn. No `fds`:
    the runtime makes the child's stdout and stderr pipes itself (the Stdio's are unset)."""

    fds: tuple[int, ...]
    directory: str


class Runtime(Protocol):
    live_restore: bool
    spills: bool  # output is read by the runtime into spill files (hold(spill=…), wait_output)

    async def spawn_container(self, container_id: str, spec: RuntimeSpec, stdio: Stdio,
                              prepare: Prepare | None = None, held: HeldOutput | None = None) -> ContainerProcess:
        """Start the container's init; returns once it exec'ed (SpawnError otherwise).
        `held` (runtimes that spill, no tty): its output ends, held from the spawn on."""

    async def spawn_exec(self, container_id: str, target_pid: int, process: ProcessSpec, stdio: Stdio,
                         prepare: Prepare | None = None) -> ContainerProcess:
        """Start `process` inside the running container whose init is `target_pid`."""

    async def hold(self, container_id: str, fds: Sequence[int], pid: int = 0, spill: str | None = None) -> None:
        """Keep (duplicates of) the daemon-side output ends of the container's init `pid`;
        with `spill`, read them into that file from now on (the daemon reads the file)."""

    async def wait_output(self, container_id: str, pid: int, read_to: int, keep_from: int,
                          armed: bool = False) -> int | None:
        """The spill was read up to `read_to` and is needed from `keep_from`: wait until it
        has more. Returns its generation (changed: read it again from the start), or None.
        `armed`: the first wait of a run spawned with `held`, armed by the spawn itself; that
        wait may also return engine.runtime.spill.NO_SPILL (the run ended without a byte: it
        has no spill file and never will)."""

    async def flush_output(self, container_id: str, pid: int) -> dict[int, int] | None:
        """Read into the run's spill what its output fds hold now: returns the stream offsets
        ({1: stdout, 2: stderr}) the spill then holds, or None (no spill, or not read)."""

    async def adopt(self) -> dict[str, Adopted]:
        """Container inits still known to the runtime (running, or exited since the last daemon)."""

    async def release(self, container_id: str, pid: int = 0) -> None:
        """The daemon recorded the exit of the container's init `pid` (0: every process of
        the container it knows), or gave it up: forget it."""

    async def aclose(self, stop: bool) -> None:
        """The daemon stops. stop=True: nothing is left running, the runtime may go too."""


class InProcessRuntime:
    """Spawn from the daemon process itself: the fallback when the spawner is unavailable."""

    live_restore = False
    spills = False

    async def spawn_container(self, container_id, spec, stdio, prepare=None, held=None) -> ContainerProcess:
        return await spawn_container(spec, stdio, prepare=prepare)

    async def spawn_exec(self, container_id, target_pid, process, stdio, prepare=None) -> ContainerProcess:
        return await spawn_exec(target_pid, process, stdio, prepare=prepare)

    async def hold(self, container_id, fds, pid: int = 0, spill: str | None = None) -> None:
        return None

    async def wait_output(self, container_id, pid, read_to, keep_from, armed=False) -> int | None:
        return None

    async def flush_output(self, container_id, pid) -> dict[int, int] | None:
        return None

    async def adopt(self) -> dict[str, Adopted]:
        return {}

    async def release(self, container_id, pid: int = 0) -> None:
        return None

    async def aclose(self, stop: bool) -> None:
        return None

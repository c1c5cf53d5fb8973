"""The background half of `docker rm`: deleting removed containers' directories.

`rm` answers once the record is gone and the directory has been moved into
<data_root>/tmp (which every daemon start empties); the files go here, later. Removals that
arrive while a deletion runs are batched into the next one: one worker-thread hop and one C
call per directory (engine.runtime.remove_tree: the GIL is not taken back at every unlink),
so a burst of removals costs the event loop almost nothing.
"""
from __future__ import annotations

import logging

import trio

from engine.runtime import remove_tree

log = logging.getLogger(__name__)


class Reclaimer:
    """Build, `nursery.start_soon(reclaimer.run)`, then `put(id, path)` from the event loop."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, str]] = []
        self._wake = trio.Event()

    def put(self, container_id: str, path: str) -> None:
        self._pending.append((container_id, path))
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch, self._pending = self._pending, []
            await trio.to_thread.run_sync(_delete, batch)


def _delete(batch: list[tuple[str, str]]) -> None:
    for container_id, path in batch:
        reclaim_now(container_id, path)


def reclaim_now(container_id: str, path: str) -> None:
    """Delete one removed container's directory (blocking: in a worker thread)."""
    try:
        remove_tree(path)
    except OSError as exc:
        log.warning("cleaning up removed container %s: %s", container_id[:12], exc)

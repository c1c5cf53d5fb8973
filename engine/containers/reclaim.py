"""The background half of `docker rm`: emptying or deleting removed containers' directories.

`rm` answers once the record is gone and the directory has been moved into
<data_root>/tmp (which every daemon start empties); the files go here, later, as host
operations on a native thread (engine.runtime.hostops: no Python worker thread takes the GIL
while a burst of containers runs). Removals that arrive while others are reclaimed wait for
the next round.
"""
from __future__ import annotations

import collections
import itertools
import logging
import os

import trio

from engine.containers import record
from engine.runtime import hostops, remove_tree

log = logging.getLogger(__name__)

#: What a new container's directory reuses of a removed one's: the directory itself, the
#: overlay's work dir and its mount point, emptied, and the record and its spare file (the next
#: records are written into them: engine.containers.record), none of which the container could
#: see or change; and, when they look untouched (as the work dir or the record do: mode, owner,
#: inode flags and project, no extended attributes or other links), its upper dir (emptied,
#: without the trusted.overlay.* marks overlayfs puts on it at mount) and the files bound at
#: /etc, which create rewrites. On ext4 without a journal every inode allocated skips each
#: inode of its group freed in the last minute or more (tens to hundreds of µs per file while a
#: burst churns them): up to nine inodes a container neither allocates nor frees.
SPARE_DIRS = ("work", "merged")
# (the record, renamed, first: the /etc files are compared with it, and a container that was
# never started has no spare)
SPARE_FILES = (record.RECORD_NAME + record.SECOND_SPARE_SUFFIX, record.RECORD_NAME + record.SPARE_SUFFIX)
SPARE_IF_UNTOUCHED = ("diff", "hostname", "hosts", "resolv.conf")
SPARES_MAX = 32


class Reclaimer:
    """Build, `nursery.start_soon(reclaimer.run)`, then `put(id, path)` from the event loop.
    `take_spare()` (any thread) hands out an emptied directory of a removed container, or None."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, str]] = []
        self._wake = trio.Event()
        self._spares: collections.deque[str] = collections.deque()  # thread-safe append/pop
        self._numbers = itertools.count()

    def put(self, container_id: str, path: str) -> None:
        self._pending.append((container_id, path))
        self._wake.set()

    def take_spare(self) -> str | None:
        try:
            return self._spares.pop()
        except IndexError:
            return None

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch, self._pending = self._pending, []
            await self.reclaim(batch)

    async def reclaim(self, batch: list[tuple[str, str]]) -> None:
        """Each (container id, directory): kept as a spare while fewer than SPARES_MAX are,
        else (or when it cannot be: a mount point left in it…) deleted. A cancelled reclaim
        stops between directories (those left in <data_root>/tmp go at the next start)."""
        for container_id, path in batch:
            await trio.lowlevel.checkpoint_if_cancelled()  # hostops.run itself waits shielded
            if len(self._spares) < SPARES_MAX:
                spare = os.path.join(os.path.dirname(path), f"spare-{next(self._numbers)}")
                try:  # nothing named after the container is left
                    await hostops.run(_spare_ops(path, spare))
                except OSError as exc:
                    log.debug("reusing removed container %s's directory: %s", container_id[:12], exc)
                else:
                    self._spares.append(spare)
                    continue
            try:
                await hostops.run([hostops.RemoveTree(path)])
            except hostops.HostOpError as exc:
                log.warning("cleaning up removed container %s: %s", container_id[:12], exc)
            except OSError:  # no native thread could be started
                await trio.to_thread.run_sync(reclaim_now, container_id, path)


def _spare_ops(path: str, spare: str) -> list[hostops.HostOp]:
    """Empty a removed container's directory down to SPARE_DIRS, themselves emptied, its
    record and the record's spare (the next container's two spares: SPARE_FILES) and what of
    SPARE_IF_UNTOUCHED looks untouched, then name it `spare`."""
    return [hostops.Rename(record.path_in(path), record.path_in(path) + record.SECOND_SPARE_SUFFIX, missing_ok=True),
            hostops.EmptyExcept(path, SPARE_DIRS, SPARE_FILES, SPARE_IF_UNTOUCHED),
            hostops.Rename(path, spare)]


def reclaim_now(container_id: str, path: str) -> None:
    """Delete one removed container's directory (blocking: in a worker thread)."""
    try:
        remove_tree(path)
    except OSError as exc:
        log.warning("cleaning up removed container %s: %s", container_id[:12], exc)

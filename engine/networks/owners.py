"""Which daemon owns the host-wide network state carrying a tag (its nft table pyengine_<tag>,
its links p?<tag>…): a small record per tag in the exec root, on /run, which is emptied at
boot as that state is.

A daemon removes its own leftovers at its next start (recovery.py). One killed before its
shutdown whose data root was deleted afterwards never starts again: its table and bridges would
stay on the host for good. Each daemon start therefore also removes the state of the tags whose
data root is gone and whose daemon no longer runs; a tag whose data root still exists is never
touched (its daemon may come back, and live containers may still use it).

Blocking file IO: call from a worker thread."""

from __future__ import annotations

import json
import logging
import os

import attrs

log = logging.getLogger(__name__)


@attrs.frozen
class Owner:
    tag: str
    data_root: str
    default_bridge: str  # may be a name without the tag (--bridge-name)
    pid: int
    started: int  # the process's start time (clock ticks after boot): a reused pid is not it

    def running(self) -> bool:
        return self.started != 0 and process_started(self.pid) == self.started

    def orphaned(self) -> bool:
        return not os.path.exists(self.data_root) and not self.running()


@attrs.frozen
class Orphan:
    """A tag whose host state nobody will remove but us."""

    tag: str
    bridge: str | None  # its default bridge, unless a live owner uses that name too


def process_started(pid: int) -> int:
    """Start time of process `pid` (field 22 of /proc/<pid>/stat), 0 when it does not run."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


class OwnerRecords:
    """The records under <exec_root>/networks: one JSON file per tag."""

    def __init__(self, exec_root: str) -> None:
        self.directory = os.path.join(exec_root, "networks")

    def _path(self, tag: str) -> str:
        return os.path.join(self.directory, f"{tag}.json")

    def register(self, tag: str, data_root: str, default_bridge: str) -> None:
        """Record this process as the owner of `tag` (written whole, then renamed into place)."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        pid = os.getpid()
        owner = Owner(tag, os.path.abspath(data_root), default_bridge, pid, process_started(pid))
        path = self._path(tag)
        with open(path + ".tmp", "w") as f:
            json.dump(attrs.asdict(owner), f)
        os.replace(path + ".tmp", path)

    def unregister(self, tag: str) -> None:
        try:
            os.unlink(self._path(tag))
        except FileNotFoundError:
            pass

    def orphans(self, own_tag: str, own_bridge: str) -> list[Orphan]:
        """The tags other than `own_tag` whose data root is gone and whose daemon is not
        running. An unreadable record is dropped: it names no state we could clean."""
        owners = []
        try:
            entries = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        for entry in entries:
            tag, ext = os.path.splitext(entry)
            if ext != ".json" or tag == own_tag:
                continue
            try:
                with open(os.path.join(self.directory, entry)) as f:
                    owners.append(Owner(**json.load(f)))
            except (OSError, ValueError, TypeError):
                log.warning("removing unreadable network owner record %s", entry)
                self.unregister(tag)
        gone = [o for o in owners if o.orphaned()]
        # A bridge name not derived from the tag (pe0, --bridge-name) may be another's now.
        used = {own_bridge} | {o.default_bridge for o in owners if o not in gone}
        return [Orphan(o.tag, o.default_bridge if o.default_bridge not in used else None) for o in gone]

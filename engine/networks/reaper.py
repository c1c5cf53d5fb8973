"""Host links deleted in the background: the veths of stopped containers that outlive them
(VethReaper), and removed networks' bridges (PendingDeletes).

The kernel destroys a veth pair with the container's network namespace, so a stopped
container's pair is normally gone within milliseconds and nobody waits for that. When
something keeps the namespace alive a little longer (a socket freed after an RCU grace
period, an open nsfs fd), the pair is handed to `VethReaper.reap_later`: still present
GRACE seconds later, it is deleted. `settle` (daemon shutdown) waits for all of them.

The kernel takes ~40 ms to delete a bridge (RCU grace periods), which `network rm` and
`compose down` need not wait for: PendingDeletes deletes it in a task, and a network create
waits for those first (a new bridge may take the subnet, or the name, of one being deleted)."""

from __future__ import annotations

import logging

import trio

from engine.networks import _netlink

log = logging.getLogger(__name__)

GRACE = 1.0  # seconds a stopped container's veth may outlive it before we delete it


class VethReaper:
    def __init__(self) -> None:
        self._doomed: dict[str, float] = {}  # host veth → trio deadline
        self._wakeup = trio.Event()

    def reap_later(self, host_veth: str) -> None:
        self._doomed[host_veth] = trio.current_time() + GRACE
        self._wakeup.set()

    async def run(self) -> None:
        """Runs in the network manager's nursery until it is cancelled."""
        while True:
            if not self._doomed:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            await trio.sleep_until(min(self._doomed.values()))
            now = trio.current_time()
            due = [name for name, deadline in self._doomed.items() if deadline <= now]
            for name in due:
                del self._doomed[name]
            try:
                deleted = await trio.to_thread.run_sync(_netlink.delete_links, due)
            except Exception as exc:
                log.warning("deleting veths of stopped containers failed: %s", exc)
                continue
            for name in deleted:
                log.info("deleted veth %s: its stopped container's namespace outlived it", name)

    async def settle(self, timeout: float = 1.0) -> None:
        """Wait until the doomed veths are gone (the kernel is usually done within
        milliseconds), then delete whatever is left."""
        names = set(self._doomed)
        self._doomed.clear()
        with trio.move_on_after(timeout):
            while names:
                names = await trio.to_thread.run_sync(_netlink.existing_links, names)
                if names:
                    await trio.sleep(0.01)
        if names:
            await trio.to_thread.run_sync(_netlink.delete_links, names)


class PendingDeletes:
    """Links being deleted by tasks of the network manager's nursery."""

    def __init__(self) -> None:
        self._deleting: dict[str, trio.Event] = {}  # link name → set once it is deleted

    def __len__(self) -> int:
        return len(self._deleting)

    def start(self, nursery: trio.Nursery, name: str) -> None:
        done = self._deleting[name] = trio.Event()
        nursery.start_soon(self._delete, name, done)

    async def _delete(self, name: str, done: trio.Event) -> None:
        try:
            with trio.CancelScope(shield=True):  # a daemon stopping meanwhile still deletes it
                await trio.to_thread.run_sync(_netlink.delete_link, name)
        except Exception as exc:
            log.warning("deleting link %s failed: %s", name, exc)
        finally:
            if self._deleting.get(name) is done:
                del self._deleting[name]
            done.set()

    async def wait(self) -> None:
        """Until every link handed to `start` is gone."""
        while self._deleting:
            await next(iter(self._deleting.values())).wait()

"""`docker container prune`: remove every stopped container that the filters select, as
dockerd does (until = created before; label / label! = all given labels match / not)."""

from __future__ import annotations

import logging

import attrs
import trio

from engine import errors
from engine.disk import directory_size
from engine.filters import PruneFilters

log = logging.getLogger(__name__)


@attrs.frozen
class PruneReport:
    deleted: list[str]
    space_reclaimed: int


async def prune_containers(manager, filters: PruneFilters) -> PruneReport:
    deleted, space = [], 0
    for container in list(manager.all()):
        if container.state.status.is_live() or not filters.selects(container.created_ns, container.config.labels):
            continue
        size = await trio.to_thread.run_sync(directory_size, container.upper_dir)
        try:
            await manager.remove(container.id)
        except errors.NotFound:
            continue  # removed meanwhile
        except errors.EngineError as exc:  # dockerd logs and goes on with the others
            log.warning("prune: could not remove %s: %s", container.id, exc.message)
            continue
        deleted.append(container.id)
        space += size
    manager.events.publish("container", "prune", "", {"reclaimed": str(space)})
    return PruneReport(deleted, space)


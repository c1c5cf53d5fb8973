"""Containers' disk usage as dockerd reports it (`ps --size`, `inspect --size`, `system df`):
SizeRw is what a container wrote (its upper dir), SizeRootFs that plus its image's layers."""

from __future__ import annotations

import trio

from engine import errors
from engine.containers.model import Container
from engine.disk import directory_size


async def sizes(images, containers: list[Container]) -> list[tuple[int, int]]:
    """(SizeRw, SizeRootFs) of each container, measured in a worker thread (directory walks).
    `images`: the daemon's engine.images.ImageStore."""
    def measure() -> list[tuple[int, int]]:
        out = []
        for c in containers:
            written = directory_size(c.upper_dir)
            try:
                base = images.get(c.image_id).size
            except errors.NotFound:
                base = 0
            out.append((written, written + base))
        return out

    return await trio.to_thread.run_sync(measure)

"""What a pull or a push reports while it runs (engine.api writes Docker's JSON progress
messages from these; the builder prints the plain ones in its output)."""

from __future__ import annotations

import attrs


@attrs.frozen
class Progress:
    """One step: `status` of layer `id` (a short digest; a tag or digest on a pull's first
    line; none for the image's own lines)."""

    status: str
    id: str = ""
    layer: bool = False  # a layer's step (Docker's message carries a progressDetail)
    current: int | None = None  # bytes so far, of `total` (a transfer or an extraction)
    total: int | None = None
    bar: bool = False  # shown with a progress bar (downloads, uploads)


@attrs.frozen
class Pushed:
    """A tag's manifest is in the registry (the push's aux message)."""

    tag: str
    digest: str
    size: int  # of the manifest
    image_id: str

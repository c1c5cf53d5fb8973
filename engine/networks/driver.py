"""The network driver interface. Built-in drivers register through the entry-point group
`pyengine.network_drivers` like third-party ones; Docker's remote network driver protocol is
adapted to the same interface (engine.networks.remote).

A driver class is built as `cls(context)`; `context` is the NetworkManager (it gives
`context.tag`, `context.veth_names()`, `context.config`, `context.reap_later(veth)`,
`context.delete_link_soon(name)` and `await context.links_deleted()`)."""

from __future__ import annotations

from typing import Protocol

from engine.networks.model import Endpoint, Network


class NetworkDriver(Protocol):
    name: str
    #: does a container on it get its own interface (and an address from our IPAM)?
    attaches: bool

    async def create_network(self, network: Network) -> None: ...

    async def delete_network(self, network: Network) -> None: ...

    async def restore_network(self, network: Network) -> None:
        """At daemon start: make the network's host state exist again (idempotent)."""

    async def release_network(self, network: Network) -> None:
        """At daemon shutdown: remove host state, keep the record."""

    async def join(self, network: Network, endpoint: Endpoint, pid: int) -> None:
        """Give the container (netns of `pid`, which has not exec'd yet) its interface."""

    async def leave(self, network: Network, endpoint: Endpoint) -> None: ...


def load_drivers(context) -> dict[str, object]:
    """Entry points of `pyengine.network_drivers`, with the built-ins as a fallback when the
    installed package metadata predates them."""
    from importlib.metadata import entry_points

    classes: dict[str, object] = {}
    for ep in entry_points(group="pyengine.network_drivers"):
        try:
            classes[ep.name] = ep.load()
        except Exception:  # a broken third-party driver must not stop the daemon
            import logging

            logging.getLogger(__name__).exception("network driver %s failed to load", ep.name)
    from engine.networks.bridge import BridgeDriver
    from engine.networks.host import HostDriver
    from engine.networks.null import NullDriver

    for name, cls in (("bridge", BridgeDriver), ("host", HostDriver), ("null", NullDriver)):
        classes.setdefault(name, cls)
    classes.pop("none", None)
    return {name: cls(context) for name, cls in classes.items()}

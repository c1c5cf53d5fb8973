"""`--volumes-from`: the mounts of other containers, copied at create as dockerd does (its
registerMountPoints): every volume and bind mount of each source container, running or not;
with ":ro" all read-only, else read-write as the source has them. A later source wins over an
earlier one at the same destination, and the container's own -v/--mount/--tmpfs over both.
What is copied stays when the source is removed (its volumes are then in use by this one)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

import attrs

from engine import errors
from engine.containers.spec import HostConfig, InheritedBind
from engine.volumes import MountPoint

_MODE_OPTIONS = {"ro", "rw", "z", "Z"}  # no propagation or copy mode: the source's stay


@attrs.frozen
class Inherited:
    volumes: tuple[MountPoint, ...] = ()  # copies of the sources' volume mount points
    binds: tuple[InheritedBind, ...] = ()


def parse(spec: str) -> tuple[str, bool]:
    """"container[:mode]" → (container reference, read-only), with dockerd's messages."""
    if not spec:
        raise errors.InvalidParameter("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    options = mode.split(",") if mode else []
    if any(o not in _MODE_OPTIONS for o in options) or ("ro" in options and "rw" in options):
        raise errors.InvalidParameter(f"invalid mode: {mode}")
    return ref, "ro" in options


def own_destinations(host: HostConfig) -> set[str]:
    """Where the container's own mounts go: what the sources' mounts do not take."""
    taken = {b.destination for b in host.binds or ()}
    taken.update(m.target for m in host.mounts or ())
    taken.update(host.tmpfs or ())
    return {posixpath.normpath(d) for d in taken if d}


def resolve(host: HostConfig, get_container: Callable, volume_points: Callable) -> Inherited:
    """The mounts `host.volumes_from` brings. `get_container(ref)`: the container (NotFound as
    dockerd's "No such container"); `volume_points(container id)`: its volume MountPoints."""
    if not host.volumes_from:  # the common case, on the create path: nothing to compute
        return Inherited()
    by_destination: dict[str, MountPoint | InheritedBind] = {}
    for spec in host.volumes_from or ():
        ref, read_only = parse(spec)
        try:
            source = get_container(ref)
        except errors.NotFound as exc:  # dockerd's 400: the request is wrong, not a missing image
            raise errors.InvalidParameter(exc.message) from None
        source_host = source.host_config
        for bind in _binds_of(source_host):
            if read_only:
                bind = attrs.evolve(bind, read_only=True)
            by_destination[posixpath.normpath(bind.destination)] = bind
        for point in volume_points(source.id):
            by_destination[posixpath.normpath(point.destination)] = attrs.evolve(
                point, rw=point.rw and not read_only, copy_data=False)
    taken = own_destinations(host)
    kept = [m for d, m in by_destination.items() if d not in taken]
    return Inherited(volumes=tuple(m for m in kept if isinstance(m, MountPoint)),
                     binds=tuple(m for m in kept if isinstance(m, InheritedBind)))


def _binds_of(host: HostConfig) -> list[InheritedBind]:
    """A container's host-path mounts: its -v ones, its --mount type=bind ones and those it
    inherited itself."""
    binds = [InheritedBind(b.source, b.destination, b.read_only, b.propagation)
             for b in host.binds or () if not b.is_volume]
    binds += [InheritedBind(m.source, m.target, bool(m.read_only), m.effective_propagation)
              for m in host.mounts or () if (m.type or "bind") == "bind"]
    return binds + list(host.inherited_binds)

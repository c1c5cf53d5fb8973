"""Bind propagation: read from the bind's options, and refused as dockerd refuses it when the
source's mount cannot propagate."""

from __future__ import annotations

import pytest

from engine import errors
from engine.containers import propagation

MOUNTINFO = """\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 254:0 /srv/shared /srv/shared rw,relatime shared:7 - ext4 /dev/vda rw
31 22 254:0 /srv/slave /srv/slave rw,relatime master:7 - ext4 /dev/vda rw
32 30 0:40 / /srv/shared/private rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize("bind,expected", [
    ("/a:/b", "rprivate"), ("/a:/b:ro", "rprivate"), ("/a:/b:rw,rshared", "rshared"), ("/a:/b:slave,ro", "slave"),
])
def test_propagation_of_a_bind(bind, expected):
    from engine.containers.spec import Bind

    assert Bind.parse(bind).propagation == expected


def test_shared_needs_a_shared_mount_and_slave_a_shared_or_slave_one():
    propagation.check("/srv/shared/data", "rshared", MOUNTINFO)
    propagation.check("/srv/slave/data", "rslave", MOUNTINFO)
    propagation.check("/anything", "rprivate", MOUNTINFO)
    with pytest.raises(errors.SystemError_) as info:
        propagation.check("/srv/slave/data", "rshared", MOUNTINFO)
    assert info.value.message == "path /srv/slave/data is mounted on /srv/slave but it is not a shared mount"
    with pytest.raises(errors.SystemError_) as info:
        propagation.check("/srv/shared/private/x", "slave", MOUNTINFO)  # the mount over it decides
    assert info.value.message == ("path /srv/shared/private/x is mounted on /srv/shared/private but it is not "
                                  "a shared or slave mount")


def _host(*binds, mounts=()):
    from engine.containers.spec import Bind, HostConfig, Mount

    return HostConfig(binds=tuple(Bind.parse(b) for b in binds) or None,
                      mounts=tuple(Mount(type="bind", source=s, target="/m", propagation=p) for s, p in mounts) or None)


@pytest.mark.parametrize("bind, expected", [
    ("/var:/h", "rslave"),  # holds the root
    ("/var/lib/pyengine/volumes:/h", "rslave"),  # within it
    ("/var/lib/pyengine:/h:ro", "rslave"),
    ("/var/lib/pyengine:/h:rshared", "rshared"),  # named: kept
    ("/var/lib/other:/h", "rprivate"),
    ("/var/lib/pyengine-x:/h", "rprivate"),  # a sibling that only shares the prefix
    ("named:/h", "rprivate"),  # a volume
])
def test_binds_over_the_data_root_default_to_rslave(bind, expected):
    host = propagation.for_daemon_root(_host(bind), "/var/lib/pyengine")
    assert host.binds[0].propagation == expected


def test_a_private_bind_over_the_data_root_is_refused_as_dockerd_refuses_it():
    with pytest.raises(errors.InvalidParameter) as info:
        propagation.for_daemon_root(_host("/:/host:rprivate"), "/var/lib/pyengine")
    assert info.value.message == (
        'invalid mount config: must use either propagation mode "rslave" or "rshared" when mount source is within '
        'the daemon root, daemon root: "/var/lib/pyengine", bind mount source: "/", propagation: "rprivate"')
    host = propagation.for_daemon_root(_host(mounts=[("/var", ""), ("/srv", "")]), "/var/lib/pyengine")
    assert [m.effective_propagation for m in host.mounts] == ["rslave", "rprivate"]
    with pytest.raises(errors.InvalidParameter):
        propagation.for_daemon_root(_host(mounts=[("/var", "private")]), "/var/lib/pyengine")

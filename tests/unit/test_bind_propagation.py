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
    assert propagation.of_bind(bind) == expected


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

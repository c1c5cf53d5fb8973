"""engine.containers.config.resolve_user: uid, gid and supplementary groups as dockerd 20.10
sets them (checked side by side with `id` in busybox): the primary group first, the user's
/etc/group memberships only when no group was given, then --group-add."""

from __future__ import annotations

import pytest

from engine import errors
from engine.containers.config import resolve_user


@pytest.fixture
def rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
                                         "app:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwheel:x:10:root,app\nstaff:x:50:\nnogroup:x:65534:\n"
                                        "app:x:1000:\n")
    return str(tmp_path)


@pytest.mark.parametrize("user, group_add, expected", [
    ("", None, (0, 0, (0, 10))),
    ("root", None, (0, 0, (0, 10))),
    ("0:4242", None, (0, 4242, (4242,))),  # an explicit group: no memberships
    ("4242:4242", None, (4242, 4242, (4242,))),
    ("4242", None, (4242, 0, (0,))),  # not in passwd: group 0
    ("nobody", None, (65534, 65534, (65534,))),
    ("app", ["staff"], (1000, 1000, (1000, 10, 50))),
    ("1000:staff", ["50"], (1000, 50, (50,))),
])
def test_groups_as_dockerd(rootfs, user, group_add, expected):
    assert resolve_user(rootfs, user, group_add) == expected


def test_unknown_names_are_refused(rootfs):
    with pytest.raises(errors.InvalidParameter, match="unable to find user ghost"):
        resolve_user(rootfs, "ghost")
    with pytest.raises(errors.InvalidParameter, match="unable to find group ghosts"):
        resolve_user(rootfs, "0:ghosts")

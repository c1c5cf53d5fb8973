"""engine.containers.config.resolve_user: uid, gid and supplementary groups as dockerd 20.10
sets them (checked side by side with `id` in busybox): the primary group first, the user's
/etc/group memberships only when no group was given, then --group-add; and the HOME runc puts
in a process's environment that sets none (the passwd entry's, "/" without one)."""

from __future__ import annotations

import pytest

from engine import errors
from engine.containers.config import ExecUser, resolve_user, with_home


@pytest.fixture
def rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
                                         "app:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwheel:x:10:root,app\nstaff:x:50:\nnogroup:x:65534:\n"
                                        "app:x:1000:\n")
    return str(tmp_path)


@pytest.mark.parametrize("user, group_add, expected", [
    ("", None, (0, 0, (0, 10), "/root")),
    ("root", None, (0, 0, (0, 10), "/root")),
    ("0:4242", None, (0, 4242, (4242,), "/root")),  # an explicit group: no memberships
    ("4242:4242", None, (4242, 4242, (4242,), "/")),
    ("4242", None, (4242, 0, (0,), "/")),  # not in passwd: group 0
    ("nobody", None, (65534, 65534, (65534,), "/")),
    ("app", ["staff"], (1000, 1000, (1000, 10, 50), "/home/app")),
    ("1000:staff", ["50"], (1000, 50, (50,), "/home/app")),
])
def test_groups_as_dockerd(rootfs, user, group_add, expected):
    assert resolve_user(rootfs, user, group_add) == ExecUser(*expected)


def test_home_is_added_only_when_the_env_has_none():
    app = ExecUser(1000, 1000, (1000,), "/home/app")
    assert with_home(["PATH=/bin"], app) == ["PATH=/bin", "HOME=/home/app"]
    assert with_home(["HOME=/srv", "PATH=/bin"], app) == ["HOME=/srv", "PATH=/bin"]


def test_unknown_names_are_refused(rootfs):
    with pytest.raises(errors.InvalidParameter, match="unable to find user ghost"):
        resolve_user(rootfs, "ghost")
    with pytest.raises(errors.InvalidParameter, match="unable to find group ghosts"):
        resolve_user(rootfs, "0:ghosts")
    with pytest.raises(errors.InvalidParameter, match="^Unable to find group ghosts: no matching entries"):
        resolve_user(rootfs, "", ["ghosts"])  # --group-add: dockerd's capital

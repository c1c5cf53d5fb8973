"""`pyengine bootstrap debian[:suite]`: debootstrap → rootfs tar → image. Tests never reach a
Debian mirror (only loopback traffic is allowed), so a stand-in `debootstrap` on the daemon's
PATH builds a tiny rootfs the way the real one lays it out; the pipeline around it is ours."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import _mounts_under, needs_root, private_daemon

pytestmark = needs_root

FAKE_DEBOOTSTRAP = r"""#!/bin/sh
# stand-in for debootstrap: args ... SUITE TARGET MIRROR
for last; do :; done
eval "target=\${$(($#-1))}"
eval "suite=\${$(($#-2))}"
echo "I: Retrieving InRelease"
echo "I: Validating Packages"
if [ "$FAKE_DEBOOTSTRAP_FAIL" = 1 ]; then
  mkdir -p "$target/proc" && mount -t tmpfs none "$target/proc"
  echo "E: Couldn't download packages: libc6" >&2
  exit 1
fi
mkdir -p "$target/bin" "$target/etc" "$target/var/cache/apt/archives" "$target/var/lib/apt/lists" "$target/tmp"
cp /bin/busybox "$target/bin/busybox"
ln -s busybox "$target/bin/sh"; ln -s busybox "$target/bin/cat"; ln -s busybox "$target/bin/ls"; ln -s busybox "$target/bin/bash"
echo 12.0 > "$target/etc/debian_version"
echo "$suite" > "$target/etc/suite"
echo "root:x:0:0:root:/root:/bin/bash" > "$target/etc/passwd"
echo "root:x:0:" > "$target/etc/group"
echo junk > "$target/var/cache/apt/archives/libc6.deb"
echo "nameserver 192.0.2.1" > "$target/etc/resolv.conf"
echo "I: Base system installed successfully."
"""


@pytest.fixture
def debian_daemon():
    def fake_debootstrap_on_path(handle):
        bindir = os.path.join(handle.root, "bin")
        os.makedirs(bindir)
        fake = os.path.join(bindir, "debootstrap")
        with open(fake, "w") as f:
            f.write(FAKE_DEBOOTSTRAP)
        os.chmod(fake, os.stat(fake).st_mode | stat.S_IEXEC)
        handle.extra_env = {"PATH": bindir + os.pathsep + os.environ.get("PATH", "")}

    with private_daemon("pe-debian-", bootstrap=False, prepare=fake_debootstrap_on_path) as handle:
        yield handle

def pe(handle, *args):
    return subprocess.run([sys.executable, "-m", "engine.cli", "-H", handle.host, *args],
                          capture_output=True, timeout=120)


def test_bootstrap_debian_builds_a_runnable_image(debian_daemon):
    result = pe(debian_daemon, "bootstrap", "debian:bookworm")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip().startswith("sha256:")
    assert b"Base system installed" in result.stderr  # progress is shown
    images = pe(debian_daemon, "images").stdout.decode()
    assert "debian" in images and "bookworm" in images
    run = pe(debian_daemon, "run", "--rm", "debian:bookworm", "sh", "-c",
             "cat /etc/debian_version /etc/suite; ls /var/cache/apt/archives | wc -l")
    assert run.stdout.decode().split() == ["12.0", "bookworm", "0"]
    inspect = debian_daemon.api("GET", "/images/debian:bookworm/json").json()
    assert inspect["Config"]["Cmd"] == ["bash"]
    # nothing of the bootstrap (the run's removed directory may stay as a spare for the next)
    assert not [e for e in os.listdir(os.path.join(debian_daemon.data_root, "tmp")) if not e.startswith("spare-")]


def test_failed_debootstrap_leaves_nothing(debian_daemon):
    debian_daemon.stop()
    debian_daemon.extra_env["FAKE_DEBOOTSTRAP_FAIL"] = "1"
    debian_daemon.start()
    result = pe(debian_daemon, "bootstrap", "debian:bookworm")
    assert result.returncode != 0
    assert b"debootstrap bookworm failed" in result.stderr and b"libc6" in result.stderr
    assert _mounts_under(debian_daemon.data_root + "/") == []
    assert not os.listdir(os.path.join(debian_daemon.data_root, "tmp"))
    assert "debian" not in pe(debian_daemon, "images").stdout.decode()


def test_unknown_suite_is_a_clear_error(debian_daemon):
    result = pe(debian_daemon, "bootstrap", "debian:nosuchsuite")
    assert result.returncode != 0 and b"unknown Debian suite" in result.stderr


def test_daemon_start_clears_scratch_left_by_a_crash(debian_daemon):
    scratch = os.path.join(debian_daemon.data_root, "tmp")
    os.makedirs(os.path.join(scratch, "debootstrap-dead", "rootfs", "proc"), exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", os.path.join(scratch, "debootstrap-dead", "rootfs", "proc")], check=True)
    open(os.path.join(scratch, "import-dead"), "w").close()
    debian_daemon.stop()
    debian_daemon.start()
    assert os.listdir(scratch) == []
    assert _mounts_under(scratch) == []

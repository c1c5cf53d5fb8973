"""The init layer: mount targets and /.dockerenv made once per image, only where the image's
merged view (whiteouts, opaque directories, non-directories) lacks them."""
import os
import stat

import attrs

from engine.containers.initlayer import InitLayers, populate
from engine.images import NOT_PLAIN, lookup_in_layers

ALL = ["/.dockerenv", "/dev", "/dev/console", "/dev/pts", "/dev/shm", "/etc", "/etc/hostname", "/etc/hosts",
       "/etc/mtab", "/etc/resolv.conf", "/proc", "/sys"]


def layer(path, files=(), dirs=()):
    os.makedirs(path, exist_ok=True)
    for d in dirs:
        os.makedirs(path / d, exist_ok=True)
    for f in files:
        os.makedirs((path / f).parent, exist_ok=True)
        (path / f).write_text("image")
    return str(path)


def whiteout(path):
    os.makedirs(path.parent, exist_ok=True)
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


def opaque(path):
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def listing(root):
    out = []
    for d, dirs, files in os.walk(root):
        out += ["/" + os.path.relpath(os.path.join(d, n), root) for n in dirs + files]
    return sorted(out)


def test_an_image_without_any_target_gets_dockerds_whole_list(tmp_path):
    lower = layer(tmp_path / "l1", files=["bin/sh"])
    init = tmp_path / "init"
    init.mkdir()
    populate(str(init), [lower])
    assert listing(init) == ALL
    assert os.readlink(init / "etc/mtab") == "/proc/mounts"
    for path in ("/.dockerenv", "/etc/hosts", "/dev/console"):
        st = os.lstat(str(init) + path)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755 and st.st_size == 0
    assert stat.S_IMODE(os.lstat(init / "etc").st_mode) == 0o755


def test_what_the_image_has_is_not_made_and_a_parent_keeps_the_images_attributes(tmp_path):
    lower = layer(tmp_path / "l1", files=["etc/hosts", "proc/x"], dirs=["dev/pts"])
    os.chmod(tmp_path / "l1/etc", 0o750)
    os.chown(tmp_path / "l1/etc", 7, 8)
    os.utime(tmp_path / "l1/etc", ns=(1_000_000_000, 2_000_000_000))
    init = tmp_path / "init"
    init.mkdir()
    populate(str(init), [lower])
    assert listing(init) == sorted(set(ALL) - {"/etc/hosts", "/proc", "/dev/pts"})
    st = os.lstat(init / "etc")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == (0o750, 7, 8, 2_000_000_000)


def test_whiteouts_opaque_directories_and_symlinks_are_read_as_overlayfs_does(tmp_path):
    bottom = layer(tmp_path / "l1", files=["etc/hosts", "etc/hostname", ".dockerenv"], dirs=["proc"])
    top = layer(tmp_path / "l2", files=["etc/resolv.conf"])
    whiteout(tmp_path / "l2/proc")  # deleted above: made again
    opaque(tmp_path / "l2/etc")  # hides the bottom's /etc/hosts and /etc/hostname
    layers = [top, bottom]
    assert lookup_in_layers(layers, "/proc") is None
    assert lookup_in_layers(layers, "/etc/hosts") is None
    assert lookup_in_layers(layers, "/etc/resolv.conf") is not None
    assert lookup_in_layers(layers, "/.dockerenv") is not None
    assert lookup_in_layers(layers, "/etc/resolv.conf/x") is NOT_PLAIN
    init = tmp_path / "init"
    init.mkdir()
    populate(str(init), layers)
    assert "/proc" in listing(init) and "/etc/hosts" in listing(init) and "/etc/hostname" in listing(init)
    assert "/etc/resolv.conf" not in listing(init) and "/.dockerenv" not in listing(init)

    # a file above a directory ends the merge; a symlinked /etc is left to the runtime
    linked = layer(tmp_path / "l3")
    os.symlink("/private/etc", tmp_path / "l3/etc")
    assert lookup_in_layers([linked, bottom], "/etc/hosts") is NOT_PLAIN
    init2 = tmp_path / "init2"
    init2.mkdir()
    populate(str(init2), [linked, bottom])
    assert not any(p.startswith("/etc") for p in listing(init2))
    assert not os.path.exists("/private/etc")


@attrs.define
class FakeImages:
    """The two ImageStore calls InitLayers makes."""

    layers: list
    home: str

    def layer_dirs(self, image):
        return self.layers

    def derived_dir(self, image, name):
        return os.path.join(self.home, name) if self.home else None  # None: no layers


def test_built_once_in_the_scratch_dir_and_a_lost_race_is_not_an_error(tmp_path):
    lower = layer(tmp_path / "l1", files=["bin/sh"])
    (tmp_path / "top").mkdir()
    layers = InitLayers(FakeImages([lower], str(tmp_path / "top")), str(tmp_path / "scratch"))
    assert layers.existing_lower_dirs(None) == [lower]
    init = str(tmp_path / "top/init")
    assert layers.lower_dirs(None) == [init, lower]
    assert "/etc/hosts" in listing(init) and os.listdir(tmp_path / "scratch") == []
    made = os.lstat(init).st_ino
    assert layers.lower_dirs(None) == [init, lower] and os.lstat(init).st_ino == made
    # another builder finished first (its layer is there when ours is renamed)
    layers._build(init, [lower])
    assert os.lstat(init).st_ino == made and os.listdir(tmp_path / "scratch") == []
    assert InitLayers(FakeImages([], None), "x").lower_dirs(None) == []

"""Images made on this host: a busybox rootfs built from the host's static busybox,
byte-for-byte reproducible, and debian:<suite> from debootstrap."""

import io
import os
import shutil
import subprocess
import tarfile

import trio

from engine.errors import SystemError_

BUSYBOX = "/bin/busybox"
FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z
FIXED_CREATED = "2024-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
"""
DIRS = [
    ("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755), ("proc", 0o755),
    ("root", 0o700), ("sys", 0o755), ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755),
    ("usr/sbin", 0o755), ("var", 0o755), ("var/spool", 0o755), ("var/spool/mail", 0o755),
    ("var/www", 0o755),
]


def _info(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.linkname = linkname
    ti.mtime = FIXED_MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def applets(busybox: str = BUSYBOX) -> list[str]:
    try:
        out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemError_(f"bootstrap: cannot list applets of {busybox}: {e}") from e
    return sorted({a for a in out.split() if a and "/" not in a and a not in ("busybox", ".", "..")})


def rootfs_tar(busybox: str = BUSYBOX) -> bytes:
    """The rootfs as an uncompressed tar; same bytes for the same busybox binary."""
    try:
        with open(busybox, "rb") as f:
            binary = f.read()
    except OSError as e:
        raise SystemError_(f"bootstrap: cannot read {busybox}: {e.strerror}") from e
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, mode in DIRS:
            tf.addfile(_info(name + "/", tarfile.DIRTYPE, mode))
        tf.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, len(binary)), io.BytesIO(binary))
        for a in applets(busybox):
            tf.addfile(_info(f"bin/{a}", tarfile.SYMTYPE, 0o777, linkname="busybox"))
        for name, text in (
            ("etc/passwd", PASSWD), ("etc/group", GROUP),
            ("etc/nsswitch.conf", "hosts: files dns\nnetworks: files\n"),
        ):
            data = text.encode()
            tf.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return buf.getvalue()


def go_arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x"}.get(m, m)


# --- debian via debootstrap ------------------------------------------------------------------
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITES = ("bookworm", "bullseye", "trixie", "sid", "stable", "oldstable", "testing", "unstable")


def debootstrap_command(suite: str, target: str, mirror: str) -> list[str]:
    """A minimal Debian (minbase: apt, dpkg, bash, coreutils) like Docker Hub's debian images."""
    if suite not in DEBIAN_SUITES:
        from engine.errors import InvalidParameter

        raise InvalidParameter(f"unknown Debian suite {suite!r}: use one of {', '.join(DEBIAN_SUITES)}")
    return ["debootstrap", "--variant=minbase", "--include=ca-certificates", suite, target, mirror]


def slim_rootfs(target: str) -> None:
    """Drop what an image should not carry: downloaded .debs, apt lists, the host's resolver
    settings (each container gets its own /etc/resolv.conf, hosts and hostname)."""
    for directory in ("var/cache/apt/archives", "var/lib/apt/lists"):
        path = os.path.join(target, directory)
        for entry in os.listdir(path) if os.path.isdir(path) else ():
            full = os.path.join(path, entry)
            if os.path.isfile(full) and not os.path.islink(full):
                os.unlink(full)
    for name in ("etc/resolv.conf", "etc/hostname"):
        path = os.path.join(target, name)
        if os.path.lexists(path):
            os.unlink(path)
            open(path, "w").close()


async def debian_image(store, suite: str = "bookworm", tag: str | None = None, mirror: str | None = None,
                       progress=None):
    """debian:<suite> imported into `store` (an ImageStore) from debootstrap (minbase)
    against a Debian mirror; `progress(line)` gets debootstrap's output. Everything it made
    is removed, whatever happens."""
    mirror = mirror or os.environ.get("PYENGINE_DEBIAN_MIRROR") or DEBIAN_MIRROR
    work = os.path.join(os.path.dirname(store.root.rstrip("/")), "tmp", f"debootstrap-{os.urandom(6).hex()}")
    target = os.path.join(work, "rootfs")
    os.makedirs(target)
    command = debootstrap_command(suite, target, mirror)
    try:
        if shutil.which(command[0]) is None:
            raise SystemError_("debootstrap is not installed (apt-get install debootstrap)")
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            tail: list[str] = []
            buffer = b""
            async for chunk in process.stdout:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace").rstrip()
                    tail = (tail + [text])[-5:]
                    if progress is not None:
                        progress(text)
            code = await process.wait()
        finally:
            if process.returncode is None:  # cancelled: the client went away
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
            await process.stdout.aclose()
        if code != 0:
            raise SystemError_(f"debootstrap {suite} failed (exit {code}): " + " | ".join(tail))
        tar_path = os.path.join(work, "rootfs.tar")

        def pack() -> None:
            from ._archive import tar_directory

            slim_rootfs(target)
            with open(tar_path, "wb") as out:
                tar_directory(target, out, overlay=False)

        await trio.to_thread.run_sync(pack)
        return await store.import_tar(
            tar_path, f"debian:{tag or suite}",
            changes=['CMD ["bash"]', f"ENV {DEFAULT_PATH}"],
            message=f"pyengine bootstrap debian {suite} from {mirror}",
        )
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(remove_tree_with_mounts, work)


def remove_tree_with_mounts(path: str) -> None:
    """rm -rf that first detaches anything mounted below `path` (a failed debootstrap can
    leave /proc or /sys mounted in its target)."""
    from engine.runtime import mountinfo, unmount

    for mount in sorted(mountinfo.mount_points(below=path), reverse=True):
        try:
            unmount(mount)
        except OSError:
            pass
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)

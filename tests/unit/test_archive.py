import base64
import contextlib
import gzip
import io
import json
import os
import tarfile

import pytest

from engine import errors
from engine.api.containers import path_stat_header
from engine.containers.archive import (
    MODE_DIR,
    MODE_SYMLINK,
    PathStat,
    archive_get,
    archive_put,
    resolve_in_container,
    stat_path,
)

CID = "c0ffee"


@pytest.fixture
def fs(tmp_path):
    """A fake container: rootfs with symlinks, a rw volume at /data, a ro one at /ro."""
    root = tmp_path / "root"
    (root / "real" / "etc").mkdir(parents=True)
    (root / "real" / "etc" / "passwd").write_text("root:x:0:0\n")
    os.symlink("/real/etc", root / "etc")  # absolute: must mean <root>/real/etc
    os.symlink("../../..", root / "escape")  # climbs above / → stays at /
    os.symlink("/", root / "toroot")
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a.txt").write_text("A")
    (root / "dir" / "sub" / "b.txt").write_text("B")
    os.symlink("a.txt", root / "dir" / "link")
    (root / "file").write_text("plain")
    (root / "data").mkdir()  # mount point (empty in the rootfs)
    (root / "ro").mkdir()
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "v.txt").write_text("volume")
    os.symlink("../../", vol / "up")  # /data/up → /
    rovol = tmp_path / "rovol"
    rovol.mkdir()
    (tmp_path / "host-secret").write_text("secret")
    mounts = [("/data", str(vol), False), ("/ro/", str(rovol), True)]
    return tmp_path, str(root), mounts


async def body(data: bytes, size: int = 700):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def make_tar(entries, compress=False) -> bytes:
    """entries: (name, kind, payload) with kind file/dir/sym/hard."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "file":
                info.size = len(payload)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(payload))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            tar.addfile(info)
    data = buf.getvalue()
    return gzip.compress(data) if compress else data


async def read_tar(chunks) -> dict:
    data = b"".join([c async for c in chunks])
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            if m.isreg():
                out[m.name] = tar.extractfile(m).read()
            elif m.issym():
                out[m.name] = ("->", m.linkname)
            elif m.islnk():
                out[m.name] = ("=>", m.linkname)
            else:
                out[m.name] = m.type
    return out


def test_resolve_in_container(fs):
    tmp, root, mounts = fs
    r = lambda p, follow=True: resolve_in_container(root, mounts, p, follow)  # noqa: E731
    assert r("/etc/passwd") == f"{root}/real/etc/passwd"
    assert r("etc/passwd") == f"{root}/real/etc/passwd"
    assert r("/escape/etc/passwd") == f"{root}/real/etc/passwd"
    assert r("/../../../etc") == f"{root}/real/etc"
    assert r("/toroot/../../etc/passwd") == f"{root}/real/etc/passwd"
    assert r("/etc", follow=False) == f"{root}/etc"
    assert r("/etc/") == f"{root}/real/etc"
    assert r("/data/v.txt") == f"{tmp}/vol/v.txt"
    assert r("/data") == f"{tmp}/vol"
    assert r("/data/up/etc/passwd") == f"{root}/real/etc/passwd"  # volume symlink in scope
    assert r("/ro/x") == f"{tmp}/rovol/x"
    assert r("/missing/deeper") == f"{root}/missing/deeper"
    assert r("/") == root


def test_symlink_loop(fs):
    _, root, mounts = fs
    os.symlink("loop", os.path.join(root, "loop"))
    with pytest.raises(errors.InvalidParameter):
        resolve_in_container(root, mounts, "/loop/x")


def test_stat_path(fs):
    tmp, root, mounts = fs
    st = stat_path(root, mounts, "/dir", CID)
    assert st.name == "dir" and st.mode == MODE_DIR | 0o755 and st.link_target == ""
    assert st.mtime_ns == os.lstat(os.path.join(root, "dir")).st_mtime_ns
    st = stat_path(root, mounts, "/etc", CID)
    assert st.mode == MODE_SYMLINK | 0o777
    assert st.link_target == "/real/etc"
    st = stat_path(root, mounts, "/etc/", CID)  # trailing slash follows the link
    assert st.mode & MODE_DIR and st.name == "etc"
    st = stat_path(root, mounts, "/data/v.txt", CID)
    assert (st.name, st.size, st.mode >> 20) == ("v.txt", 6, 0)  # a plain file
    assert stat_path(root, mounts, "/", CID).name == "/"
    assert stat_path(root, mounts, "/dir/.", CID).name == "."
    with pytest.raises(errors.NotFound) as info:
        stat_path(root, mounts, "/nope", CID)
    assert info.value.message == f"Could not find the file /nope in container {CID}"
    with pytest.raises(errors.NotFound):
        stat_path(root, mounts, "/file/below", CID)
    with pytest.raises(errors.InvalidParameter):
        stat_path(root, mounts, "", CID)


def test_path_stat_header():
    st = PathStat(name="x", size=1, mode=420, mtime_ns=1_704_067_200_120_000_000, link_target="/y")
    assert json.loads(base64.b64decode(path_stat_header(st))) == {
        "name": "x", "size": 1, "mode": 420, "mtime": "2024-01-01T00:00:00.12Z", "linkTarget": "/y"}


async def test_archive_get_dir_and_contents(fs):
    _, root, mounts = fs
    st, chunks = await archive_get(root, mounts, "/dir", CID)
    assert st.name == "dir"
    assert await read_tar(chunks) == {
        "dir": tarfile.DIRTYPE, "dir/a.txt": b"A", "dir/link": ("->", "a.txt"),
        "dir/sub": tarfile.DIRTYPE, "dir/sub/b.txt": b"B",
    }
    _, chunks = await archive_get(root, mounts, "/dir/.", CID)
    names = set(await read_tar(chunks))
    assert names == {".", "./a.txt", "./link", "./sub", "./sub/b.txt"}


async def test_archive_get_symlinks(fs):
    _, root, mounts = fs
    st, chunks = await archive_get(root, mounts, "/etc", CID)  # the link itself
    assert st.link_target == "/real/etc"
    assert await read_tar(chunks) == {"etc": ("->", "/real/etc")}
    _, chunks = await archive_get(root, mounts, "/etc/", CID)  # the target, named etc
    assert await read_tar(chunks) == {"etc": tarfile.DIRTYPE, "etc/passwd": b"root:x:0:0\n"}
    _, chunks = await archive_get(root, mounts, "/escape/etc/passwd", CID)
    assert await read_tar(chunks) == {"passwd": b"root:x:0:0\n"}


async def test_archive_get_enters_mounts(fs):
    _, root, mounts = fs
    _, chunks = await archive_get(root, mounts, "/data", CID)
    got = await read_tar(chunks)
    assert got["data/v.txt"] == b"volume" and got["data/up"] == ("->", "../../")
    _, chunks = await archive_get(root, mounts, "/", CID)
    got = await read_tar(chunks)
    # Docker rebases "/" to "": entries of the root are "/", "/bin"…
    assert got["/data/v.txt"] == b"volume" and got["/etc"] == ("->", "/real/etc")
    assert "host-secret" not in json.dumps(list(got))


async def test_archive_get_streams_big_file(fs):
    _, root, mounts = fs
    big = os.urandom(3 * 1024 * 1024 + 17)
    with open(os.path.join(root, "big"), "wb") as f:
        f.write(big)
    os.link(os.path.join(root, "big"), os.path.join(root, "dir", "big-hard"))
    _, chunks = await archive_get(root, mounts, "/big", CID)
    sizes = []
    data = b""
    async for c in chunks:
        sizes.append(len(c))
        data += c
    assert len(sizes) > 5 and max(sizes) <= 512 * 1024
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("big").read() == big
    with pytest.raises(errors.NotFound):
        await archive_get(root, mounts, "/nope", CID)


async def test_archive_get_abandoned_midway(fs):
    _, root, mounts = fs
    with open(os.path.join(root, "big"), "wb") as f:
        f.write(bytes(2 * 1024 * 1024))
    _, chunks = await archive_get(root, mounts, "/big", CID)
    async for _ in chunks:
        break
    await chunks.aclose()


async def test_archive_put_basic(fs):
    tmp, root, mounts = fs
    tar = make_tar([
        ("new", "dir", None), ("new/f.txt", "file", b"hello"), ("new/l", "sym", "/etc/passwd"),
        ("new/h", "hard", "new/f.txt"), ("top.txt", "file", b"t"),
    ])
    await archive_put(root, mounts, "/dir", body(tar), container_id=CID)
    d = os.path.join(root, "dir")
    assert open(f"{d}/new/f.txt", "rb").read() == b"hello"
    assert os.readlink(f"{d}/new/l") == "/etc/passwd"
    assert os.stat(f"{d}/new/h").st_ino == os.stat(f"{d}/new/f.txt").st_ino
    assert open(f"{d}/top.txt").read() == "t"
    assert os.stat(f"{d}/new/f.txt").st_mtime == 1_700_000_000
    assert oct(os.stat(f"{d}/new/f.txt").st_mode & 0o777) == oct(0o644)
    # Into a symlink to a directory (followed, in scope), gzip-compressed, into a volume.
    await archive_put(root, mounts, "/etc", body(make_tar([("g", "file", b"z")], compress=True)))
    assert open(f"{root}/real/etc/g").read() == "z"
    await archive_put(root, mounts, "/data", body(make_tar([("w", "file", b"v")])))
    assert open(f"{tmp}/vol/w").read() == "v"
    # Replacing: a file over a file, a file over a symlink (the link is replaced, not followed)
    await archive_put(root, mounts, "/dir", body(make_tar([("top.txt", "file", b"2"), ("link", "file", b"L")])))
    assert open(f"{d}/top.txt").read() == "2" and not os.path.islink(f"{d}/link")
    assert open(f"{d}/a.txt").read() == "A"


async def test_archive_put_hostile(fs):
    tmp, root, mounts = fs
    before = sorted(os.listdir(tmp))
    # planted symlinks are resolved in the container's scope
    tar = make_tar([
        ("evil", "sym", "/"), ("evil/etc/pwned", "file", b"1"),
        ("out", "sym", "../../../../../.."), ("out/x", "file", b"2"),
        ("/abs/y", "file", b"3"),
        ("sub/../z", "file", b"4"),
    ])
    await archive_put(root, mounts, "/dir", body(tar))
    assert open(f"{root}/real/etc/pwned").read() == "1"  # the container's /etc
    assert open(f"{root}/x").read() == "2"
    assert open(f"{root}/dir/abs/y").read() == "3"
    assert open(f"{root}/dir/z").read() == "4"
    assert sorted(os.listdir(tmp)) == before
    for name, kind, payload in [
        ("../escape.txt", "file", b"x"),
        ("a/../../escape.txt", "file", b"x"),
        ("h", "hard", "../../host-secret"),
    ]:
        with pytest.raises(errors.InvalidParameter):
            await archive_put(root, mounts, "/dir", body(make_tar([(name, kind, payload)])))
    assert sorted(os.listdir(tmp)) == before
    assert open(f"{tmp}/host-secret").read() == "secret"
    # A symlink in the volume pointing up leads into the rootfs, not the host.
    await archive_put(root, mounts, "/data/up", body(make_tar([("q", "file", b"q")])))
    assert open(f"{root}/q").read() == "q"


async def test_archive_put_errors(fs):
    tmp, root, mounts = fs
    tar = make_tar([("f", "file", b"x")])
    with pytest.raises(errors.NotFound) as info:
        await archive_put(root, mounts, "/nope", body(tar), container_id=CID)
    assert info.value.message == f"Could not find the file /nope in container {CID}"
    with pytest.raises(errors.InvalidParameter) as info:
        await archive_put(root, mounts, "/file", body(tar))
    assert info.value.message == "extraction point is not a directory"
    with pytest.raises(errors.Forbidden) as info:
        await archive_put(root, mounts, "/ro", body(tar))
    assert info.value.message == "mounted volume is marked read-only"
    with pytest.raises(errors.Forbidden) as info:
        await archive_put(root, mounts, "/dir", body(tar), readonly_rootfs=True)
    assert info.value.message == "container rootfs is marked read-only"
    await archive_put(root, mounts, "/data", body(tar), readonly_rootfs=True)  # volume is rw
    # an entry reaching into the read-only volume from above it
    with pytest.raises(errors.Forbidden):
        await archive_put(root, mounts, "/", body(make_tar([("ro/f", "file", b"x")])))
    assert os.listdir(f"{tmp}/rovol") == []
    # noOverwriteDirNonDir
    with pytest.raises(errors.InvalidParameter):
        await archive_put(root, mounts, "/", body(make_tar([("dir", "file", b"x")])), True)
    with pytest.raises(errors.InvalidParameter):
        await archive_put(root, mounts, "/", body(make_tar([("file", "dir", None)])), True)
    assert os.path.isdir(f"{root}/dir") and os.path.isfile(f"{root}/file")
    # without it, Docker replaces
    await archive_put(root, mounts, "/", body(make_tar([("file", "dir", None)])))
    assert os.path.isdir(f"{root}/file")
    # garbage body
    with pytest.raises(errors.InvalidParameter):
        await archive_put(root, mounts, "/dir", body(b"not a tar at all" * 100))


async def test_tars_are_headed_as_dockerds_and_an_empty_put_is_nothing(fs):
    """Whole-second mtimes (no PAX header of its own per file) and the host's user and group
    names, as Go's tar headers carry them; an empty body extracts nothing without an error."""
    tmp, root, mounts = fs
    os.utime(os.path.join(root, "file"), ns=(1_700_000_000_500_000_000, 1_700_000_000_500_000_000))
    _, chunks = await archive_get(root, mounts, "/file", CID)
    data = b"".join([c async for c in chunks])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["file"] and b"PaxHeader" not in data
    import pwd

    assert (members[0].mtime, members[0].uname) == (1_700_000_000, pwd.getpwuid(os.getuid()).pw_name)
    before = sorted(os.listdir(os.path.join(root, "dir")))
    await archive_put(root, mounts, "/dir", body(b""), container_id=CID)
    assert sorted(os.listdir(os.path.join(root, "dir"))) == before


async def test_archive_put_race_cannot_reach_the_host(fs):
    """CVE-2018-15664's symlink exchange: while an entry is written, a process in the
    container swaps its directory for a symlink to a host path. The entry's owner, mode and
    mtime still go to the file we wrote, never through the symlink to the host's file."""
    tmp, root, mounts = fs
    host_dir = tmp / "host-dir"
    host_dir.mkdir()
    host_file = host_dir / "a"
    host_file.write_text("host")
    os.chmod(host_file, 0o600)
    os.utime(host_file, ns=(1_600_000_000_000_000_000,) * 2)
    payload = os.urandom(1024 * 1024)
    tar = make_tar([("sub/a", "file", payload)])  # mode 0644, mtime 1_700_000_000
    swapped = False

    async def racing_body():
        nonlocal swapped
        for i in range(0, len(tar), 4096):
            if i >= 256 * 1024 and not swapped:  # well into the payload: the file is open
                os.rename(f"{root}/dir/sub", f"{root}/dir/sub.moved")
                os.symlink(str(host_dir), f"{root}/dir/sub")
                swapped = True
            yield tar[i:i + 4096]

    await archive_put(root, mounts, "/dir", racing_body())
    assert swapped
    st = os.stat(host_file)
    assert (host_file.read_text(), st.st_mode & 0o7777, st.st_mtime_ns) == ("host", 0o600, 1_600_000_000_000_000_000)
    written = f"{root}/dir/sub.moved/a"
    assert open(written, "rb").read() == payload
    assert (os.stat(written).st_mode & 0o7777, os.stat(written).st_mtime) == (0o644, 1_700_000_000)


async def test_archive_operations_leave_no_open_handle(fs):
    """Every directory handle a resolution opens is closed again, on success and on error."""
    tmp, root, mounts = fs

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    for path in ("/dir", "/etc/", "/data", "/", "/nope", "/file/below", "/escape/etc/passwd"):
        with pytest.raises(errors.NotFound) if "nope" in path or "below" in path else contextlib.nullcontext():
            stat_path(root, mounts, path, CID)
            await read_tar((await archive_get(root, mounts, path, CID))[1])
    _, chunks = await archive_get(root, mounts, "/dir", CID)
    await chunks.aclose()  # never started
    os.symlink("loop", os.path.join(root, "loop"))
    with pytest.raises(errors.InvalidParameter):
        stat_path(root, mounts, "/loop/x", CID)
    tar = make_tar([("new", "dir", None), ("new/f", "file", b"x"), ("new/l", "sym", "/etc"),
                    ("new/h", "hard", "new/f"), ("new/l/deeper", "file", b"y")])
    await archive_put(root, mounts, "/dir", body(tar))
    for bad in (make_tar([("h2", "hard", "missing")]), make_tar([("file/x", "file", b"x")])):
        with pytest.raises((errors.InvalidParameter, errors.SystemError_)):
            await archive_put(root, mounts, "/", body(bad))
    with pytest.raises(errors.Forbidden):
        await archive_put(root, mounts, "/", body(make_tar([("ro/f", "file", b"x")])))
    assert open_fds() == before


async def test_a_mount_whose_host_directory_is_gone_is_not_found(fs):
    tmp, root, mounts = fs
    mounts = [*mounts, ("/gone", str(tmp / "deleted-volume"), False)]
    with pytest.raises(errors.NotFound):
        stat_path(root, mounts, "/gone/x", CID)
    with pytest.raises(errors.NotFound):
        await archive_put(root, mounts, "/gone", body(make_tar([("f", "file", b"x")])), container_id=CID)

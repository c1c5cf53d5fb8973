"""The image store on a real filesystem (root: whiteouts need mknod and trusted.* xattrs)."""

import gzip
import io
import os
import stat
import tarfile

import pytest

from engine.errors import Conflict, InvalidParameter, NotFound
from engine.images import Deleted, ImageStore, Untagged
from engine.api._image_json import image_inspect, image_summary


def make_tar(entries, gz=False) -> bytes:
    """entries: (name, kind, payload): kind file/dir/sym/hard/chr/fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            data = None
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                ti.size = len(data)
                ti.mode = 0o644
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, payload
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, payload
            elif kind == "chr":
                ti.type, (ti.devmajor, ti.devminor) = tarfile.CHRTYPE, payload
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "image"))


def layer_entries(store):
    return sorted(os.listdir(store.layers_dir))


async def test_bootstrap_reproducible(store, tmp_path):
    a = await store.bootstrap()
    b = await store.bootstrap()
    other = ImageStore(str(tmp_path / "other"))
    c = await other.bootstrap()
    assert a.id == b.id == c.id
    assert a.repo_tags == ["busybox:latest"]
    (top,) = store.layer_dirs(a)
    assert os.readlink(os.path.join(top, "bin", "sh")) == "busybox"
    assert os.access(os.path.join(top, "bin", "busybox"), os.X_OK)
    assert "nobody:x:65534:65534" in open(os.path.join(top, "etc", "passwd")).read()
    assert stat.S_IMODE(os.stat(os.path.join(top, "tmp")).st_mode) == 0o1777
    for d in ("proc", "sys", "dev", "root"):
        assert os.path.isdir(os.path.join(top, d))
    assert a.container_config["Cmd"] == ["sh"]
    assert a.container_config["Env"][0].startswith("PATH=")
    assert a.config["rootfs"]["type"] == "layers" and len(a.diff_ids) == 1
    # the stored config is the exact bytes the id hashes
    import hashlib

    data = open(os.path.join(store.images_dir, a.id[7:] + ".json"), "rb").read()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == a.id
    # a fresh store sees the same thing
    again = ImageStore(store.root)
    assert again.resolve("busybox").id == a.id
    assert again.resolve("busybox").size == a.size > 1_000_000


async def test_import_gzip_with_changes_and_resolve(store):
    data = make_tar([("etc/", "dir", None), ("etc/hello", "file", "hi\n"), ("/abs/file", "file", "x")], gz=True)
    img = await store.import_tar(
        io.BytesIO(data), reference="example/app:v1",
        changes=['CMD ["/bin/hello"]', "ENV A=1", "WORKDIR /work", "EXPOSE 8080"], message="imported",
    )
    assert img.repo_tags == ["example/app:v1"]
    cfg = img.container_config
    assert cfg["Cmd"] == ["/bin/hello"] and cfg["Env"] == ["A=1"] and cfg["WorkingDir"] == "/work"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    (top,) = store.layer_dirs(img)
    assert open(os.path.join(top, "etc", "hello")).read() == "hi\n"
    assert os.path.exists(os.path.join(top, "abs", "file"))  # leading "/" stripped
    # diff id is the sha256 of the *uncompressed* tar
    import hashlib

    assert img.diff_ids == ["sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()]
    hexid = img.id[7:]
    for ref in ("example/app:v1", "docker.io/example/app:v1", hexid[:12], hexid, img.id, "sha256:" + hexid[:10]):
        assert store.resolve(ref).id == img.id
    with pytest.raises(NotFound, match="No such image: example/app:latest"):
        store.resolve("example/app")
    with pytest.raises(NotFound, match="No such image: busybox:latest"):
        store.resolve("busybox")
    insp = image_inspect(store, img)
    assert insp["Id"] == img.id and insp["Comment"] == "imported"
    assert insp["RootFS"] == {"Type": "layers", "Layers": img.diff_ids}
    assert insp["GraphDriver"]["Name"] == "overlay2" and insp["Config"]["Cmd"] == ["/bin/hello"]
    assert insp["Config"]["Entrypoint"] is None and insp["Os"] == "linux"
    summ = image_summary(img)
    assert summ["RepoTags"] == ["example/app:v1"] and summ["Created"] > 1_600_000_000


async def test_tag_untag_remove_and_layer_sharing(store):
    data = make_tar([("f", "file", "shared")])
    a = await store.import_tar(io.BytesIO(data), reference="one:latest", changes=["CMD a"])
    b = await store.import_tar(io.BytesIO(data), reference="two:latest", changes=["CMD b"])
    assert a.id != b.id and a.diff_ids == b.diff_ids
    assert len(layer_entries(store)) == 1
    store.tag("one", "one:extra")
    store.tag("one", "other/repo:x")
    assert store.resolve("one:extra").id == a.id
    assert sorted(store.resolve(a.id).repo_tags) == ["one:extra", "one:latest", "other/repo:x"]
    # by name with other tags: untag only
    assert store.remove("one:extra") == [Untagged("one:extra")]
    # by id with references in several repositories: must be forced
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove(a.id[7:19])
    store.untag("other/repo:x")
    with pytest.raises(NotFound):
        store.untag("other/repo:x")
    # in use by a container
    with pytest.raises(Conflict, match="must force"):
        store.remove("one", in_use=lambda i: ("c" * 64, False))
    with pytest.raises(Conflict, match="cannot be forced"):
        store.remove("one", force=True, in_use=lambda i: ("c" * 64, True))
    # removing a: layer stays (b uses it)
    recs = store.remove("one")
    assert recs == [Untagged("one:latest"), Deleted(a.id)]
    assert len(layer_entries(store)) == 1
    with pytest.raises(NotFound):
        store.resolve(a.id)
    # removing b frees the layer
    recs = store.remove(b.id)
    assert recs[0] == Untagged("two:latest") and Deleted(b.id) in recs
    assert Deleted(b.diff_ids[0]) in recs
    assert layer_entries(store) == []
    assert ImageStore(store.root).list() == []


async def test_force_remove_with_stopped_container_keeps_layers(store):
    img = await store.import_tar(io.BytesIO(make_tar([("f", "file", "x")])), reference="keep:me")
    recs = store.remove("keep:me", force=True, in_use=lambda i: ("d" * 64, False))
    assert recs == [Untagged("keep:me")]
    dangling = store.resolve(img.id)
    assert dangling.repo_tags == [] and os.path.isdir(store.layer_dirs(dangling)[0])
    assert image_summary(dangling)["RepoTags"] == ["<none>:<none>"]


@pytest.mark.parametrize(
    "entries, match",
    [
        ([("ok", "file", "x"), ("../x", "file", "evil")], "escapes"),
        ([("ok", "file", "x"), ("/../../x", "file", "evil")], "escapes"),
        ([("a/../../x", "file", "evil")], "escapes"),
        ([("link", "sym", "../../../../tmp"), ("link/pwned", "file", "evil")], "symlink"),
        ([("abs", "sym", "/tmp"), ("abs/pwned", "file", "evil")], "symlink"),
        ([("hl", "hard", "../../../../etc/passwd")], "escapes"),
        ([("hl", "hard", "/etc/passwd")], "not in this layer"),
    ],
)
async def test_malicious_tars_leave_nothing(store, tmp_path, entries, match):
    before_tmp = set(os.listdir("/tmp"))
    with pytest.raises(InvalidParameter, match=match):
        await store.import_tar(io.BytesIO(make_tar(entries)), reference="evil:latest")
    assert layer_entries(store) == []
    assert os.listdir(store.images_dir) == []
    assert not store.exists("evil")
    assert "pwned" not in set(os.listdir("/tmp")) - before_tmp


async def test_absolute_symlink_and_devices(store):
    entries = [
        ("bin/", "dir", None), ("bin/busybox", "file", "elf"), ("bin/sh", "sym", "/bin/busybox"),
        ("bin/ash", "hard", "bin/busybox"), ("dev/", "dir", None), ("dev/null", "chr", (1, 3)),
        ("run/fifo", "fifo", None),
    ]
    img = await store.import_tar(io.BytesIO(make_tar(entries)))
    (top,) = store.layer_dirs(img)
    assert os.readlink(os.path.join(top, "bin/sh")) == "/bin/busybox"
    assert os.stat(os.path.join(top, "bin/ash")).st_ino == os.stat(os.path.join(top, "bin/busybox")).st_ino
    assert not os.path.exists(os.path.join(top, "dev/null"))  # devices skipped
    assert stat.S_ISFIFO(os.stat(os.path.join(top, "run/fifo")).st_mode)
    assert img.repo_tags == [] and image_summary(img)["RepoTags"] == ["<none>:<none>"]


async def test_whiteouts_become_overlay_whiteouts(store):
    entries = [
        ("etc/", "dir", None), ("etc/.wh.removed", "file", ""), ("opaque/", "dir", None),
        ("opaque/.wh..wh..opq", "file", ""), ("opaque/keep", "file", "k"), (".wh..wh.plnk", "dir", None),
    ]
    img = await store.import_tar(io.BytesIO(make_tar(entries)))
    (top,) = store.layer_dirs(img)
    st = os.lstat(os.path.join(top, "etc", "removed"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not os.path.exists(os.path.join(top, "etc", ".wh.removed"))
    assert os.getxattr(os.path.join(top, "opaque"), "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(os.path.join(top, "opaque"))) == ["keep"]
    assert not os.path.exists(os.path.join(top, ".wh..wh.plnk"))


async def test_import_from_path_and_garbage(store, tmp_path):
    p = tmp_path / "rootfs.tar"
    p.write_bytes(make_tar([("hello", "file", "x")]))
    img = await store.import_tar(str(p), reference="frompath")
    assert store.resolve("frompath:latest").id == img.id
    with pytest.raises(InvalidParameter):
        await store.import_tar(io.BytesIO(b"\x1f\x8b" + b"not gzip at all" * 10))
    assert len(layer_entries(store)) == 1


def test_blobs_verified(store):
    import hashlib

    d = store.blobs.put(b"hello")
    assert d == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert store.blobs.open(d).read() == b"hello"
    with pytest.raises(InvalidParameter, match="digest mismatch"):
        store.blobs.put(b"other", expected=d.replace(d[-1], "0" if d[-1] != "0" else "1"))
    assert [n for n in os.listdir(store.blobs.root) if n.startswith(".tmp")] == []

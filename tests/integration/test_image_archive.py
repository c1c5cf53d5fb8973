"""docker save / load (docker-archive both ways, a hand-made archive, an OCI layout),
commit (with overlay whiteouts) and export, through the daemon with docker-py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest


def run(client, image, cmd, **kw):
    c = client.create_container(image, cmd, **kw)
    client.start(c["Id"])
    code = client.wait(c["Id"], timeout=60)["StatusCode"]
    return c["Id"], code, client.logs(c["Id"])


def tar_bytes(entries) -> bytes:
    """entries: (name, bytes | None for a dir)"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _load(daemon, data: bytes) -> list[str]:
    r = daemon.api("POST", "/images/load", content=data)
    assert r.status_code == 200, r.text
    lines = [json.loads(l) for l in r.text.splitlines() if l.strip()]
    assert not any("error" in l for l in lines), lines
    return [l["stream"] for l in lines]


def test_save_load_round_trip(daemon, dclient):
    dclient.tag("busybox", "roundtrip/app", "1.0")
    info = dclient.inspect_image("roundtrip/app:1.0")
    r = daemon.api("GET", "/images/get", params={"names": ["busybox", "roundtrip/app:1.0"]})
    assert r.status_code == 200
    data = r.content
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))
        repositories = json.load(tf.extractfile("repositories"))
        assert f"{info['Id'][7:]}.json" in names
        layer = tf.extractfile(manifest[0]["Layers"][0]).read()
    assert sha(layer) == info["RootFS"]["Layers"][0]
    assert sorted(manifest[0]["RepoTags"]) == ["busybox:latest", "roundtrip/app:1.0"]
    assert "roundtrip/app" in repositories and "1.0" in repositories["roundtrip/app"]

    dclient.remove_image("roundtrip/app:1.0")
    out = _load(daemon, data)
    assert "Loaded image: roundtrip/app:1.0\n" in out and "Loaded image: busybox:latest\n" in out
    assert dclient.inspect_image("roundtrip/app:1.0")["Id"] == info["Id"]
    dclient.remove_image("roundtrip/app:1.0")

    # one image by name: /images/{name}/get
    r = daemon.api("GET", "/images/busybox/get")
    assert r.status_code == 200 and r.content[:0] == b""


def _handmade_layers():
    base = tar_bytes([("data/", None), ("data/a.txt", b"from layer one\n"), ("data/gone.txt", b"x\n")])
    top = tar_bytes([("data/", None), ("data/b.txt", b"from layer two\n"), ("data/.wh.gone.txt", b"")])
    return base, top


def _config(diff_ids, cmd=("cat", "/data/a.txt")):
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-02-02T00:00:00Z",
        "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": "2024-02-02T00:00:00Z", "created_by": "hand"} for _ in diff_ids],
    }).encode()


def test_load_handmade_docker_archive_on_busybox(daemon, dclient):
    """A docker-archive written by hand, Docker 20.10's layout, on top of busybox's layer."""
    bb = dclient.inspect_image("busybox")
    r = daemon.api("GET", "/images/busybox/get")
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tf:
        m = json.load(tf.extractfile("manifest.json"))[0]
        bb_layer = tf.extractfile(m["Layers"][0]).read()
    base, top = _handmade_layers()
    diff_ids = [sha(bb_layer), sha(base), sha(top)]
    cfg = _config(diff_ids, ("sh", "-c", "cat /data/a.txt /data/b.txt; ls /data"))
    entries = [("manifest.json", json.dumps([{"Config": f"{sha(cfg)[7:]}.json", "RepoTags": ["handmade/img:v1"],
                                               "Layers": ["l0/layer.tar", "l1/layer.tar", "l2/layer.tar"]}]).encode()),
               ("repositories", json.dumps({"handmade/img": {"v1": "l2"}}).encode()),
               (f"{sha(cfg)[7:]}.json", cfg)]
    for i, layer in enumerate([bb_layer, base, top]):
        entries += [(f"l{i}/", None), (f"l{i}/VERSION", b"1.0"), (f"l{i}/json", b"{}"), (f"l{i}/layer.tar", layer)]
    out = _load(daemon, tar_bytes(entries))
    assert out == ["Loaded image: handmade/img:v1\n"]
    info = dclient.inspect_image("handmade/img:v1")
    assert info["Id"] == sha(cfg)
    assert info["RootFS"]["Layers"][0] == bb["RootFS"]["Layers"][0]
    cid, code, logs = run(dclient, "handmade/img:v1", None)
    assert code == 0, logs
    assert logs.decode().split() == ["from", "layer", "one", "from", "layer", "two", "a.txt", "b.txt"]
    dclient.remove_container(cid)
    dclient.remove_image("handmade/img:v1")


def test_load_gzipped_archive_and_oci_layout(daemon, dclient):
    base, top = _handmade_layers()
    import gzip

    gz_base = gzip.compress(base)
    cfg = _config([sha(base), sha(top)])
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(gz_base), "size": len(gz_base)},
                   {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(top), "size": len(top)}],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
        "annotations": {"io.containerd.image.name": "docker.io/oci/layout:2",
                        "org.opencontainers.image.ref.name": "2"}}]}).encode()
    entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
               ("blobs/", None), ("blobs/sha256/", None)]
    for blob in (cfg, manifest, gz_base, top):
        entries.append((f"blobs/sha256/{sha(blob)[7:]}", blob))
    import gzip as _gz

    out = _load(daemon, _gz.compress(tar_bytes(entries)))  # a compressed archive loads too
    assert out == ["Loaded image: oci/layout:2\n"]
    info = dclient.inspect_image("oci/layout:2")
    assert info["Id"] == sha(cfg)
    assert info["RootFS"]["Layers"] == [sha(base), sha(top)]
    dclient.remove_image("oci/layout:2")

    bad = tar_bytes([("hello.txt", b"hi")])
    r = daemon.api("POST", "/images/load", content=bad)
    assert r.status_code == 200  # as dockerd: the error is in the stream
    assert r.json()["errorDetail"]["message"] == r.json()["error"] != ""
    import docker

    with pytest.raises(docker.errors.ImageLoadError):
        docker.DockerClient(base_url=daemon.host).images.load(b"abc")


def test_commit_with_whiteouts_then_run(daemon, dclient):
    cid, code, logs = run(dclient, "busybox", ["sh", "-c", "echo added > /added.txt; rm /etc/group; mkdir /opq; echo x > /opq/f"])
    assert code == 0, logs
    r = daemon.api("POST", "/commit", params={"container": cid, "repo": "committed/img", "tag": "snap",
                                               "comment": "msg", "author": "me",
                                               "changes": ['CMD ["sh", "-c", "cat /added.txt; ls /etc"]', "ENV FOO=bar"]})
    assert r.status_code == 201, r.text
    new_id = r.json()["Id"]
    info = dclient.inspect_image("committed/img:snap")
    assert info["Id"] == new_id
    assert info["Comment"] == "msg" and info["Author"] == "me"
    assert info["Config"]["Cmd"] == ["sh", "-c", "cat /added.txt; ls /etc"]
    assert "FOO=bar" in info["Config"]["Env"]
    assert info["Parent"] == dclient.inspect_image("busybox")["Id"]
    assert len(info["RootFS"]["Layers"]) == len(dclient.inspect_image("busybox")["RootFS"]["Layers"]) + 1
    hist = dclient.history("committed/img:snap")
    assert hist[0]["Comment"] == "msg" and hist[0]["Size"] > 0

    # the new layer holds an AUFS whiteout for the deleted file
    r = daemon.api("GET", "/images/committed/img:snap/get")
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tf:
        m = json.load(tf.extractfile("manifest.json"))[0]
        with tarfile.open(fileobj=tf.extractfile(m["Layers"][-1])) as layer:
            names = layer.getnames()
    assert "etc/.wh.group" in names and "added.txt" in names and "opq/f" in names

    cid2, code, logs = run(dclient, "committed/img:snap", None)
    assert code == 0
    text = logs.decode()
    assert "added" in text and "passwd" in text and "group" not in text.split()
    for c in (cid, cid2):
        dclient.remove_container(c)
    dclient.remove_image("committed/img:snap")


def test_export_contents(daemon, dclient):
    cid, code, _ = run(dclient, "busybox", ["sh", "-c", "echo exported > /mark.txt; rm /etc/group"])
    assert code == 0
    r = daemon.api("GET", f"/containers/{cid}/export")
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tf:
        names = set(tf.getnames())
        assert tf.extractfile("mark.txt").read() == b"exported\n"
    assert "bin/busybox" in names and "etc/passwd" in names
    assert "etc/group" not in names and not any(".wh." in n for n in names)
    dclient.remove_container(cid)
    r = daemon.api("GET", "/containers/nope/export")
    assert r.status_code == 404


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_reads_our_docker_archive(daemon, dclient, tmp_path):
    r = daemon.api("GET", "/images/busybox/get")
    path = tmp_path / "bb.tar"
    path.write_bytes(r.content)
    out = subprocess.run(["skopeo", "inspect", f"docker-archive:{path}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["Layers"] and info["Os"] == "linux"
    assert info["Digest"].startswith("sha256:")


def test_init_layer_as_dockerds(daemon, dclient):
    """/.dockerenv and the mount targets (/etc/hosts…) come from the image's init layer: a
    container that writes nothing leaves its upper dir empty and commits as no new layer, its
    export holds dockerd's entries, and the init layer goes with the image's layers."""
    cid, code, logs = run(dclient, "busybox", ["sh", "-c", "ls -a /; ls /etc"])
    assert code == 0, logs
    assert {".dockerenv", "hosts", "hostname", "resolv.conf", "mtab"} <= set(logs.decode().split())
    data = dclient.inspect_container(cid)["GraphDriver"]["Data"]
    assert os.listdir(data["UpperDir"]) == []
    init, *layers = data["LowerDir"].split(":")
    assert os.path.basename(init) == "init" and len(layers) == len(dclient.inspect_image("busybox")["RootFS"]["Layers"])
    assert dclient.diff(cid) is None

    r = daemon.api("POST", "/commit", params={"container": cid, "repo": "initlayer/same"})
    assert r.status_code == 201, r.text
    same = dclient.inspect_image("initlayer/same")
    assert same["RootFS"]["Layers"] == dclient.inspect_image("busybox")["RootFS"]["Layers"]
    assert dclient.history("initlayer/same")[0]["Size"] == 0

    r = daemon.api("GET", f"/containers/{cid}/export")
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert members[".dockerenv"].isfile() and members["dev/console"].isfile() and members["dev/pts"].isdir()
    assert members["etc/mtab"].issym() and members["etc/mtab"].linkname == "/proc/mounts"
    assert members["etc/hosts"].size == 0  # the target, not the container's hosts file

    # an image of its own: its init layer sits in its top layer's directory and goes with it
    cid2, code, _ = run(dclient, "busybox", ["sh", "-c", "echo x > /new"])
    assert code == 0
    dclient.commit(cid2, repository="initlayer/changed")
    cid3, code, logs = run(dclient, "initlayer/changed", ["ls", "-a", "/"])
    assert code == 0 and ".dockerenv" in logs.decode().split()
    top_init = dclient.inspect_container(cid3)["GraphDriver"]["Data"]["LowerDir"].split(":")[0]
    assert os.path.isdir(top_init) and top_init != init
    for c in (cid, cid2, cid3):
        dclient.remove_container(c)
    dclient.remove_image("initlayer/changed")
    dclient.remove_image("initlayer/same")
    assert not os.path.exists(os.path.dirname(top_init)) and os.path.isdir(init)


@pytest.mark.parametrize("method, path, kwargs, status, message", [
    ("GET", "/v1.41/images/nosuch/json", {}, 404, "no such image: nosuch: No such image: nosuch:latest"),
    ("GET", "/v1.41/images/nosuch/get", {}, 404, "No such image: nosuch"),
    ("GET", "/v1.41/images/get", {"params": {"names": ["busybox", "nosuch"]}}, 404, "No such image: nosuch"),
])
def test_missing_images_named_as_dockerd_names_them(daemon, method, path, kwargs, status, message):
    response = daemon.api(method, path, **kwargs)
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_loading_what_is_not_an_archive_says_so_on_one_line(daemon):
    response = daemon.api("POST", "/v1.41/images/load", content=b"not a tar")
    assert json.loads(response.text.splitlines()[-1])["error"] == \
        "invalid archive: not a tar file (plain, gzip, bzip2 or xz)"

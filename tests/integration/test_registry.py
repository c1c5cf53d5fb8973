"""Pull / push against a real registry (Debian's docker-registry, distribution 2.8):
round trips through the daemon (docker-py), and the distribution code in process for
chunked uploads, concurrent pulls and auth flows."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trio

from registry_util import start_registry


@pytest.fixture(scope="module")
def registry():
    handle = start_registry()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def auth_registry():
    handle = start_registry(auth=("alice", "s3cret"))
    yield handle
    handle.stop()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def import_unique(daemon, repo: str, tag: str) -> str:
    data = layer_tar({"hello.txt": os.urandom(16).hex().encode(), "big.bin": os.urandom(300_000)})
    resp = daemon.api("POST", "/images/create", params={"fromSrc": "-", "repo": repo, "tag": tag},
                      content=data)
    assert resp.status_code == 200, resp.text
    return daemon.api("GET", f"/images/{repo}:{tag}/json").json()["Id"]


def statuses(stream) -> list[dict]:
    out = list(stream)
    for m in out:
        assert "error" not in m, out
    return out


# ------------------------------------------------------------------ through the daemon


def test_push_then_pull_round_trip(daemon, dclient, registry):
    ref = f"{registry.host}/team/app"
    image_id = import_unique(daemon, ref, "1.0")
    pushed = statuses(dclient.push(ref, tag="1.0", stream=True, decode=True))
    assert pushed[0]["status"] == f"The push refers to repository [{ref}]"
    assert any(m.get("status") == "Pushed" for m in pushed)
    aux = [m["aux"] for m in pushed if "aux" in m]
    assert aux and aux[0]["Tag"] == "1.0" and aux[0]["Digest"].startswith("sha256:")
    digest = aux[0]["Digest"]
    # /distribution: the manifest's descriptor and, for one image, the platform of its config
    arch = dclient.inspect_image(image_id)["Architecture"]
    dist = dclient.inspect_distribution(f"{ref}:1.0")
    assert dist["Descriptor"]["digest"] == digest and dist["Descriptor"]["size"] > 0
    assert dist["Platforms"] == [{"architecture": arch, "os": "linux"}]

    removed = dclient.remove_image(image_id, force=True)
    assert {"Deleted": image_id} in removed
    pulled = statuses(dclient.pull(ref, tag="1.0", stream=True, decode=True))
    texts = [m.get("status", "") for m in pulled]
    assert texts[0] == "Pulling from team/app" and pulled[0]["id"] == "1.0"
    assert "Pulling fs layer" in texts and "Download complete" in texts and "Pull complete" in texts
    assert any(m.get("status") == "Downloading" and m["progressDetail"].get("total") for m in pulled)
    assert f"Digest: {digest}" in texts
    assert texts[-1] == f"Status: Downloaded newer image for {ref}:1.0"
    info = dclient.inspect_image(f"{ref}:1.0")
    assert info["Id"] == image_id
    assert f"{ref}@{digest}" in info["RepoDigests"]

    again = statuses(dclient.pull(ref, tag="1.0", stream=True, decode=True))
    assert again[-1]["status"] == f"Status: Image is up to date for {ref}:1.0"
    assert any(m.get("status") == "Already exists" for m in again)

    # by digest, after removing it again
    dclient.remove_image(image_id, force=True)
    by_digest = statuses(dclient.pull(f"{ref}@{digest}", stream=True, decode=True))
    assert by_digest[-1]["status"] == f"Status: Downloaded newer image for {ref}@{digest}"
    assert dclient.inspect_image(f"{ref}@{digest}")["Id"] == image_id
    dclient.remove_image(image_id, force=True)


def test_second_push_skips_layers_and_mounts_across_repos(daemon, dclient, registry):
    ref = f"{registry.host}/team/skip"
    image_id = import_unique(daemon, ref, "v1")
    statuses(dclient.push(ref, tag="v1", stream=True, decode=True))
    second = statuses(dclient.push(ref, tag="v1", stream=True, decode=True))
    assert any(m.get("status") == "Layer already exists" for m in second)
    assert not any(m.get("status") == "Pushed" for m in second)

    other = f"{registry.host}/other/copy"
    dclient.tag(image_id, other, "v1")
    third = statuses(dclient.push(other, tag="v1", stream=True, decode=True))
    assert any(m.get("status") == "Mounted from team/skip" for m in third), third
    dclient.remove_image(image_id, force=True)


def test_pull_errors(daemon, dclient, registry):
    import docker

    with pytest.raises(docker.errors.NotFound) as e:
        dclient.pull(f"{registry.host}/team/nothing", tag="nope")
    assert "not found" in str(e.value)
    r = daemon.api("POST", "/images/create", params={"fromImage": "127.0.0.1:1/x/y", "tag": "1"})
    assert r.status_code >= 400 or "error" in r.text
    with pytest.raises(docker.errors.NotFound):
        dclient.push(f"{registry.host}/never/tagged", tag="1")


def test_auth_endpoint_and_push_with_credentials(daemon, dclient, auth_registry):

    ok = dclient.login("alice", "s3cret", registry=auth_registry.host, reauth=True)
    assert ok["Status"] == "Login Succeeded"
    r = daemon.api("POST", "/auth", json={"username": "alice", "password": "wrong",
                                           "serveraddress": auth_registry.host})
    assert r.status_code == 401, r.text

    ref = f"{auth_registry.host}/private/app"
    image_id = import_unique(daemon, ref, "1")
    denied = list(dclient.push(ref, tag="1", stream=True, decode=True,
                               auth_config={"username": "nobody", "password": "x"}))
    assert "error" in denied[-1]
    pushed = statuses(dclient.push(ref, tag="1", stream=True, decode=True,
                                   auth_config={"username": "alice", "password": "s3cret"}))
    assert any(m.get("status") == "Pushed" for m in pushed)
    dclient.remove_image(image_id, force=True)
    r = daemon.api("POST", "/images/create", params={"fromImage": ref, "tag": "1"})  # no credentials
    assert r.status_code == 404 and "pull access denied" in r.json()["message"], r.text
    statuses(dclient.pull(ref, tag="1", stream=True, decode=True,
                          auth_config={"username": "alice", "password": "s3cret"}))
    assert dclient.inspect_image(f"{ref}:1")["Id"] == image_id
    dclient.remove_image(image_id, force=True)


def test_events_for_pull_and_push(daemon, dclient, registry):
    import time

    since = int(time.time()) - 1
    ref = f"{registry.host}/team/events"
    image_id = import_unique(daemon, ref, "e")
    statuses(dclient.push(ref, tag="e", stream=True, decode=True))
    dclient.remove_image(image_id, force=True)
    statuses(dclient.pull(ref, tag="e", stream=True, decode=True))
    events = list(dclient.events(since=since, until=int(time.time()) + 1, decode=True,
                                 filters={"type": "image"}))
    actions = [e["Action"] for e in events]
    assert "push" in actions and "pull" in actions and "delete" in actions
    dclient.remove_image(image_id, force=True)


# ------------------------------------------------------------------ in process


def _store(tmp_path):
    from engine.images import ImageStore

    return ImageStore(str(tmp_path))


def _three_layer_image(store, reference: str):
    parent = None
    diffs = []
    for i in range(3):
        data = layer_tar({f"layer{i}.bin": os.urandom(40_000 + i)})
        diff, parent = store._commit_layer(io.BytesIO(data), parent, False)
        diffs.append(diff)
    if True:  # a whiteout in the top layer, too
        pass
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
              "created": "2024-01-01T00:00:00Z", "rootfs": {"type": "layers", "diff_ids": diffs},
              "history": [{"created": "2024-01-01T00:00:00Z"} for _ in diffs]}
    return store.create_image(config, reference)


async def _collect(coro_fn):
    out = []

    async def emit(m):
        out.append(m)

    result = await coro_fn(emit)
    return result, out


async def test_chunked_push_and_concurrent_pulls_download_once(tmp_path, registry):
    src = _store(tmp_path / "src")
    ref = f"{registry.host}/inproc/multi:1"
    image = _three_layer_image(src, ref)
    dist = src.distribution
    dist.chunk_size = 16 * 1024  # force PATCH chunks
    plan = dist.resolve_push(f"{registry.host}/inproc/multi", "1")
    results, msgs = await _collect(lambda emit: dist.push(plan, None, emit))
    assert [m.status for m in msgs if getattr(m, "status", None) == "Pushed"] == ["Pushed"] * 3
    assert results[0].image_id == image.id and msgs[-1] == results[0]

    dst = _store(tmp_path / "dst")
    ddist = dst.distribution
    outs = []

    async def one():
        p = await ddist.resolve_pull(ref, None)
        img, m = await _collect(lambda emit: ddist.pull(p, emit))
        outs.append((img, m))

    async with trio.open_nursery() as n:
        n.start_soon(one)
        n.start_soon(one)
    assert outs[0][0].id == outs[1][0].id == image.id
    assert ddist.statistics["blobs_downloaded"] == 3  # each blob once, for both pulls
    for c in image.chain_ids:
        assert dst.has_layer(c)
    # the pulled layers keep their registry blobs: save works and diff ids verify
    with dst.open_layer_tar(image.chain_ids[-1]) as f:
        assert "sha256:" + hashlib.sha256(f.read()).hexdigest() == image.diff_ids[-1]


async def test_killed_pull_leaves_no_image(tmp_path, registry):
    src = _store(tmp_path / "src")
    ref = f"{registry.host}/inproc/killed:1"
    _three_layer_image(src, ref)
    plan = src.distribution.resolve_push(f"{registry.host}/inproc/killed", "1")
    await _collect(lambda emit: src.distribution.push(plan, None, emit))

    dst = _store(tmp_path / "dst")
    dist = dst.distribution
    p = await dist.resolve_pull(ref, None)
    seen = []

    async def emit(m):
        seen.append(m)
        if getattr(m, "status", None) == "Download complete":
            raise KeyboardInterrupt  # stands in for a kill

    with pytest.raises((KeyboardInterrupt, BaseExceptionGroup)):
        await dist.pull(p, emit)
    assert dst.list() == []
    assert not [n for n in os.listdir(dst.blobs.root) if n.startswith(".tmp")]
    # a later pull finishes the job
    p = await dist.resolve_pull(ref, None)
    img, _ = await _collect(lambda emit: dist.pull(p, emit))
    assert dst.resolve(ref).id == img.id


# ------------------------------------------------------------------ bearer token flow


class _TokenRegistry(BaseHTTPRequestHandler):
    """/v2/ wants a Bearer token; /token hands one out for alice:s3cret (basic)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        port = self.server.server_address[1]
        if self.path.startswith("/token"):
            good = "Basic " + base64.b64encode(b"alice:s3cret").decode()
            if self.headers.get("Authorization") != good:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"token": "tok-123"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.headers.get("Authorization") == "Bearer tok-123":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.send_response(401)
        self.send_header("WWW-Authenticate",
                         f'Bearer realm="http://127.0.0.1:{port}/token",service="test-registry"')
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def token_registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_bearer_token_login(token_registry):
    from engine.errors import Unauthorized
    from engine.images import Registry

    async with Registry(token_registry, {"username": "alice", "password": "s3cret"}) as reg:
        await reg.ping()
    async with Registry(token_registry, {"username": "alice", "password": "nope"}) as reg:
        with pytest.raises(Unauthorized):
            await reg.ping()


def test_bearer_login_through_the_daemon(daemon, dclient, token_registry):
    ok = dclient.login("alice", "s3cret", registry=token_registry, reauth=True)
    assert ok["Status"] == "Login Succeeded"
    r = daemon.api("POST", "/auth", json={"username": "alice", "password": "bad",
                                           "serveraddress": token_registry})
    assert r.status_code == 401

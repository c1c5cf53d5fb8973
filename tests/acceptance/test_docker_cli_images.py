"""Image commands with the real docker CLI (pull/push/images/rmi/tag/history/save/load/
commit/export/login) and with the pyengine CLI, against a private pyengined and a private
docker-registry."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile

import pytest

from registry_util import start_registry
from tests.conftest import needs_root

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance]
needs_docker = pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")


@pytest.fixture(scope="module")
def registry():
    handle = start_registry()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def auth_registry():
    handle = start_registry(auth=("bob", "pa55"))
    yield handle
    handle.stop()


@pytest.fixture
def docker(daemon, tmp_path):
    env = {**daemon.env(), "DOCKER_CONFIG": str(tmp_path / "docker-config")}

    def run(*args, input=None, check=False, timeout=120):
        result = subprocess.run([DOCKER, *args], env=env, input=input, capture_output=True, timeout=timeout)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    return run


@pytest.fixture
def pe(daemon, tmp_path):
    env = {**daemon.env(), "PYENGINE_CONFIG": str(tmp_path / "pe-config")}

    def run(*args, input=None, check=False, timeout=120):
        result = subprocess.run([sys.executable, "-m", "engine.cli", "-H", daemon.host, *args],
                                env=env, input=input, capture_output=True, timeout=timeout)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    run.config = tmp_path / "pe-config" / "config.json"
    return run


def _unique_image(docker, name: str) -> str:
    """A new image (busybox + one file of its own) made with commit, so rmi can really delete
    it (a container that changed nothing commits as no new layer, as with dockerd)."""
    unique = os.urandom(4).hex()
    cid = docker("create", "busybox", "sh", "-c", f"echo {unique} > /unique", check=True).stdout.decode().strip()
    docker("start", "-a", cid, check=True)
    out = docker("commit", "-c", f"LABEL unique={unique}", cid, name, check=True)
    docker("rm", cid, check=True)
    return out.stdout.decode().strip()


@needs_docker
def test_docker_push_rmi_pull(docker, registry):
    ref = f"{registry.host}/team/app:1.0"
    image_id = _unique_image(docker, ref)
    out = docker("push", ref, check=True).stdout.decode()
    assert f"The push refers to repository [{registry.host}/team/app]" in out
    assert "Pushed" in out and "1.0: digest: sha256:" in out
    again = docker("push", ref, check=True).stdout.decode()
    assert "Layer already exists" in again and "Pushed" not in again
    digest = out.split("digest: ")[1].split()[0]

    docker("rmi", "-f", image_id, check=True)
    assert docker("image", "inspect", ref).returncode != 0
    pulled = docker("pull", ref, check=True).stdout.decode()
    assert "1.0: Pulling from team/app" in pulled and "Pull complete" in pulled
    assert f"Digest: {digest}" in pulled and f"Status: Downloaded newer image for {ref}" in pulled
    listing = docker("images", "--digests", f"{registry.host}/team/app", check=True).stdout.decode()
    assert digest in listing and "1.0" in listing
    assert docker("images", "-q", "--filter", f"reference={registry.host}/team/app:1.0",
                  check=True).stdout.decode().split() == [image_id.split(":")[1][:12]]
    by_digest = docker("pull", f"{registry.host}/team/app@{digest}", check=True).stdout.decode()
    assert "Status: Image is up to date" in by_digest
    missing = docker("pull", f"{registry.host}/team/app:nope")
    assert missing.returncode != 0 and b"not found" in missing.stderr
    docker("rmi", "-f", image_id, check=True)


@needs_docker
def test_docker_tag_history_save_load(docker, tmp_path):
    docker("tag", "busybox", "cli/saved:1", check=True)
    hist = docker("history", "cli/saved:1", check=True).stdout.decode()
    assert "IMAGE" in hist and "CREATED BY" in hist
    path = tmp_path / "out.tar"
    docker("save", "-o", str(path), "cli/saved:1", check=True)
    with tarfile.open(path) as tf:
        assert "manifest.json" in tf.getnames()
    docker("rmi", "cli/saved:1", check=True)
    out = docker("load", "-i", str(path), check=True).stdout.decode()
    assert "Loaded image: cli/saved:1" in out
    docker("rmi", "cli/saved:1", check=True)


@needs_docker
def test_docker_commit_and_export(docker, tmp_path):
    docker("run", "--name", "cli-web", "busybox", "sh", "-c", "echo hi > /hello; rm /etc/group", check=True)
    try:
        new = docker("commit", "-m", "msg", "-c", 'CMD ["sh", "-c", "cat /hello; ls /etc"]', "cli-web", "cli-web:snap",
                     check=True).stdout.decode().strip()
        assert new.startswith("sha256:")
        out = docker("run", "--rm", "cli-web:snap", check=True).stdout.decode()
        assert "hi" in out and "passwd" in out and "group" not in out.split()
        export = docker("export", "cli-web", check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(export)) as tf:
            names = tf.getnames()
        assert "hello" in names and "etc/group" not in names
    finally:
        docker("rm", "-f", "cli-web")
        docker("rmi", "cli-web:snap")


@needs_docker
def test_docker_import_from_stdin_and_from_a_url(docker, tmp_path):
    """docker import of a file and of a URL (served here on loopback), with the comment
    dockerd gives each (Imported from - / from <url>); an unreachable URL in Go's words."""
    import http.server
    import socket
    import threading

    docker("create", "--name", "cli-imp", "busybox", "true", check=True)
    try:
        (tmp_path / "www").mkdir()
        docker("export", "-o", str(tmp_path / "www" / "rootfs.tar"), "cli-imp", check=True)
    finally:
        docker("rm", "cli-imp")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/rootfs.tar"
    try:
        docker("import", str(tmp_path / "www" / "rootfs.tar"), "cli-imp:file", check=True)
        docker("import", url, "cli-imp:url", check=True)
        gone = docker("import", url + ".gone", "cli-imp:gone")
        assert gone.returncode == 1
        assert gone.stderr.decode().startswith(
            f"Error response from daemon: failed to GET {url}.gone with status 404 File not found: <")
        for tag, comment in (("file", "Imported from -"), ("url", f"Imported from {url}")):
            shown = docker("inspect", "-f", "{{.Comment}}", f"cli-imp:{tag}", check=True).stdout.decode().strip()
            assert shown == comment
            assert docker("run", "--rm", f"cli-imp:{tag}", "/bin/busybox", "true").returncode == 0
    finally:
        server.shutdown()
        server.server_close()
        serving.join()
        docker("rmi", "cli-imp:file", "cli-imp:url")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    refused = docker("import", f"http://127.0.0.1:{closed}/rootfs.tar", "cli-imp:gone")
    assert refused.returncode == 1
    assert refused.stderr.decode() == (f'Error response from daemon: Get "http://127.0.0.1:{closed}/rootfs.tar": '
                                       f"dial tcp 127.0.0.1:{closed}: connect: connection refused\n")
    assert docker("image", "inspect", "cli-imp:gone").returncode == 1


@needs_docker
def test_docker_login(docker, auth_registry):
    ok = docker("login", "-u", "bob", "--password-stdin", auth_registry.host, input=b"pa55\n")
    assert ok.returncode == 0, ok.stderr
    assert b"Login Succeeded" in ok.stdout
    bad = docker("login", "-u", "bob", "--password-stdin", auth_registry.host, input=b"wrong\n")
    assert bad.returncode != 0
    ref = f"{auth_registry.host}/private/x:1"
    image_id = _unique_image(docker, ref)
    docker("push", ref, check=True)  # with the credentials the CLI saved
    docker("rmi", "-f", image_id, check=True)
    docker("pull", ref, check=True)
    docker("logout", auth_registry.host, check=True)
    denied = docker("pull", ref.replace(":1", ":2"))
    assert denied.returncode != 0
    docker("rmi", "-f", image_id, check=True)


def test_pyengine_cli_image_story(pe, registry, auth_registry, tmp_path):
    ref = f"{registry.host}/pe/bb:1"
    pe("tag", "busybox", ref, check=True)
    out = pe("push", ref, check=True).stdout.decode()
    assert "Pushed" in out or "Layer already exists" in out or "Mounted from" in out
    assert "1: digest: sha256:" in out
    pe("rmi", ref, check=True)
    out = pe("pull", ref, check=True).stdout.decode()
    assert "Digest: sha256:" in out and f"{ref}" in out
    images = pe("images", "--digests", "--filter", f"reference={registry.host}/pe/bb", check=True).stdout.decode()
    assert "sha256:" in images and "1" in images
    assert pe("history", "busybox", check=True).stdout.decode().startswith("IMAGE")
    inspect = json.loads(pe("image", "inspect", "busybox", check=True).stdout)
    assert inspect[0]["RepoTags"]

    tar = tmp_path / "save.tar"
    pe("save", "-o", str(tar), "busybox", ref, check=True)
    pe("rmi", ref, check=True)
    assert f"Loaded image: {ref}" in pe("load", "-i", str(tar), check=True).stdout.decode()

    pe("run", "--name", "pe-commit", "busybox", "sh", "-c", "echo snap > /snap", check=True)
    try:
        pe("commit", "-m", "msg", "-c", 'CMD ["cat", "/snap"]', "pe-commit", "pe-commit:snap", check=True)
        assert pe("run", "--rm", "pe-commit:snap", check=True).stdout == b"snap\n"
        out = pe("export", "pe-commit", check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(out)) as tf:
            assert "snap" in tf.getnames()
    finally:
        pe("rm", "-f", "pe-commit")
    pe("rmi", "pe-commit:snap", check=True)
    pe("rmi", ref, check=True)
    # run pulls an image it does not have (--pull missing), its progress on stderr
    ran = pe("run", "--rm", ref, "echo", "pulled", check=True)
    assert ran.stdout == b"pulled\n"
    assert f"Unable to find image '{ref}' locally" in ran.stderr.decode() and b"Digest: sha256:" in ran.stderr
    never = pe("run", "--rm", "--pull", "never", f"{registry.host}/pe/bb:absent", "true")
    assert never.returncode == 125 and b"No such image" in never.stderr
    assert pe("run", "--rm", "-q", "--pull", "always", ref, "true", check=True).stderr == b""
    pe("rmi", ref, check=True)

    # login: credentials saved 0600 on the CLI side, used by push
    bad = pe("login", "-u", "bob", "--password-stdin", auth_registry.host, input=b"nope\n")
    assert bad.returncode != 0
    ok = pe("login", "-u", "bob", "--password-stdin", auth_registry.host, input=b"pa55\n", check=True)
    assert b"Login Succeeded" in ok.stdout
    assert stat.S_IMODE(os.stat(pe.config).st_mode) == 0o600
    private = f"{auth_registry.host}/pe/private:1"
    pe("tag", "busybox", private, check=True)
    assert b"digest: sha256:" in pe("push", private, check=True).stdout
    pe("logout", auth_registry.host, check=True)
    assert pe("push", private).returncode != 0
    pe("rmi", private, check=True)
    out = pe("image", "prune", "-f", check=True).stdout.decode()
    assert "Total reclaimed space" in out

"""Builds against a private pyengined with the real clients: `DOCKER_BUILDKIT=0 docker build`
(the classic builder protocol), docker-py's images.build() and docker-compose 1.29's `build:`;
multi-stage, --target, the layer cache, .dockerignore, ADD of a tar, every instruction's
effect on the image config, /system/df and /build/prune, and that a failed build leaves
nothing behind."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from tests.conftest import _mounts_under, needs_root

DOCKER = shutil.which("docker")
COMPOSE = shutil.which("docker-compose")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]

MULTI_STAGE = """\
# escape=\\
ARG BASE=busybox
FROM ${BASE} AS build
ARG GREETING=hello
ENV WHO=world \\
    EXTRA="two words"
WORKDIR /src
COPY . .
RUN echo "$GREETING $WHO" > /src/msg \\
 && cat conf/*.conf >> /src/msg
FROM busybox AS never-used
RUN exit 7
FROM busybox
COPY --from=build /src/msg /app/
COPY --from=build /src/conf/ /etc/app/
CMD ["cat", "/app/msg"]
"""


def _write(root, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def docker(daemon, tmp_path):
    env = {**daemon.env(), "DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": str(tmp_path / "docker-config")}

    def run(*args, input=None, cwd=None, check=False, timeout=180):
        result = subprocess.run([DOCKER, *args], env=env, input=input, capture_output=True,
                                timeout=timeout, cwd=cwd)
        if check:
            assert result.returncode == 0, (args, result.stdout.decode(), result.stderr.decode())
        return result

    return run


def test_multi_stage_cache_and_target(docker, tmp_path):
    _write(tmp_path, {"Dockerfile": MULTI_STAGE, "conf/a.conf": "alpha\n", "conf/b.conf": "beta\n",
                      "secret.key": "no\n", ".dockerignore": "*.key\n"})
    first = docker("build", "-t", "pe-ms:1", "--build-arg", "GREETING=hi", str(tmp_path), check=True)
    out = first.stdout.decode()
    assert "Step 1/" in out and "Successfully built" in out and "Successfully tagged pe-ms:1" in out
    assert "exit 7" not in out  # the unused stage is not built
    assert "Using cache" not in out
    run = docker("run", "--rm", "pe-ms:1", check=True).stdout.decode()
    assert run == "hi world\nalpha\nbeta\n"
    listing = docker("run", "--rm", "pe-ms:1", "ls", "/etc/app", check=True).stdout.decode().split()
    assert listing == ["a.conf", "b.conf"]
    # .dockerignore: the key never reached the first stage's COPY
    docker("build", "-t", "pe-ms:build", "--target", "build", "--build-arg", "GREETING=hi", str(tmp_path), check=True)
    assert docker("run", "--rm", "pe-ms:build", "ls", "/src").stdout.decode().split() == ["Dockerfile", "conf", "msg"]

    second = docker("build", "-t", "pe-ms:1", "--build-arg", "GREETING=hi", str(tmp_path), check=True).stdout.decode()
    steps = [line for line in second.splitlines() if line.startswith("Step ")]
    assert steps[0] == f"Step 1/{len(steps)} : ARG BASE=busybox"  # an ARG before FROM is a step, as dockerd shows it
    cached = [s for s in steps[1:] if " : FROM " not in s]
    assert second.count("---> Using cache") == len(cached)
    image_id = docker("inspect", "-f", "{{.Id}}", "pe-ms:1", check=True).stdout.decode().strip()
    assert f"Successfully built {image_id[7:19]}" in second and "Running in" not in second
    # a changed source file misses the cache from its COPY on
    (tmp_path / "conf" / "b.conf").write_text("gamma\n")
    third = docker("build", "-t", "pe-ms:2", "--build-arg", "GREETING=hi", str(tmp_path), check=True).stdout.decode()
    assert third.count("Using cache") == 3  # ARG, ENV, WORKDIR
    assert docker("run", "--rm", "pe-ms:2").stdout.decode().endswith("gamma\n")
    no_cache = docker("build", "--no-cache", "-q", "--build-arg", "GREETING=hi", str(tmp_path), check=True)
    assert no_cache.stdout.decode().strip().startswith("sha256:")
    # intermediate images are hidden from `docker images` but listed with -a
    shown = docker("images", "-q").stdout.decode().split()
    every = docker("images", "-aq").stdout.decode().split()
    assert len(every) > len(shown)
    for tag in ("pe-ms:1", "pe-ms:2", "pe-ms:build"):
        docker("rmi", tag)


def test_instructions_set_the_image_config(docker, tmp_path):
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tf:
        data = b"from the archive\n"
        info = tarfile.TarInfo("pkg/readme.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (tmp_path / "pkg.tar.gz").write_bytes(inner.getvalue())
    os.symlink("/etc/hostname", tmp_path / "leak")
    _write(tmp_path, {"Dockerfile": """\
FROM busybox
MAINTAINER someone@example.com
LABEL org.example.name="my app" version=1
ENV APP_HOME=/opt/app PORT=8080
EXPOSE ${PORT} 53/udp
USER 1000:1000
WORKDIR $APP_HOME
ADD pkg.tar.gz /opt/
COPY --chown=1000:1000 *.txt ./
VOLUME ["/data"]
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD wget -q localhost:${PORT} || exit 1
ONBUILD RUN echo triggered > /tmp/triggered
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo ${UNSET:-dflt}"]
ENV abc=hello
ENV abc=bye def=$abc
""", "a.txt": "a\n", "b.txt": "b\n"})
    docker("build", "-t", "pe-cfg", str(tmp_path), check=True)
    cfg = json.loads(docker("inspect", "pe-cfg", check=True).stdout)[0]
    c = cfg["Config"]
    assert cfg["Author"] == "someone@example.com"
    assert c["Labels"] == {"org.example.name": "my app", "version": "1"}
    assert "APP_HOME=/opt/app" in c["Env"] and "PORT=8080" in c["Env"]
    assert "abc=bye" in c["Env"] and "def=hello" in c["Env"]  # one ENV line sees the values before it
    assert set(c["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert c["User"] == "1000:1000" and c["WorkingDir"] == "/opt/app"
    assert c["Volumes"] == {"/data": {}} and c["StopSignal"] == "SIGINT"
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost:${PORT} || exit 1"],
                                "Interval": 5_000_000_000, "Timeout": 2_000_000_000, "Retries": 4}
    assert c["OnBuild"] == ["RUN echo triggered > /tmp/triggered"]
    assert c["Entrypoint"] == ["/bin/sh", "-c"] and c["Cmd"] == ["echo ${UNSET:-dflt}"]
    # history as dockerd records it: COPY/ADD/WORKDIR "#(nop) X", the other steps "#(nop)  X"
    created_by = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "pe-cfg",
                        check=True).stdout.decode().splitlines()
    assert "/bin/sh -c #(nop) WORKDIR /opt/app" in created_by
    assert any(line.startswith("/bin/sh -c #(nop) ADD file:") and line.endswith(" in /opt/ ") for line in created_by)
    assert any(line.startswith("/bin/sh -c #(nop) COPY --chown=1000:1000 multi:") for line in created_by)
    assert '/bin/sh -ec #(nop)  CMD ["echo ${UNSET:-dflt}"]' in created_by
    out = docker("run", "--rm", "--user", "0", "pe-cfg", "cat /opt/pkg/readme.txt; stat -c '%u %n' a.txt b.txt",
                 check=True).stdout.decode()
    assert out == "from the archive\n1000 a.txt\n1000 b.txt\n"
    # a symlink in the context never leads outside of it
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY leak /leak\n")
    bad = docker("build", str(tmp_path))
    assert bad.returncode != 0 and b"file not found in build context" in bad.stderr + bad.stdout
    # ONBUILD triggers run in a child build
    child = tmp_path / "child"
    _write(child, {"Dockerfile": "FROM pe-cfg\n"})
    built = docker("build", "-t", "pe-child", str(child), check=True).stdout.decode()
    assert "Executing 1 build trigger" in built
    assert docker("run", "--rm", "--entrypoint", "cat", "pe-child", "/tmp/triggered").stdout == b"triggered\n"
    docker("rmi", "pe-child", "pe-cfg")


def test_add_of_a_url_keeps_its_modified_time_and_names_a_missing_one(docker, tmp_path):
    import http.server
    import threading

    www = tmp_path / "www"
    www.mkdir()
    (www / "served.txt").write_text("served\n")
    os.utime(www / "served.txt", (1_000_000_000, 1_000_000_000))  # sent as Last-Modified
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(www))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        ctx = tmp_path / "ctx"
        _write(ctx, {"Dockerfile": f"FROM busybox\nADD {base}/served.txt /srv/\n"})
        docker("build", "-t", "pe-addurl", str(ctx), check=True)
        out = docker("run", "--rm", "pe-addurl", "stat", "-c", "%Y %a %n", "/srv/served.txt", check=True).stdout
        assert out == b"1000000000 600 /srv/served.txt\n"
        (ctx / "Dockerfile").write_text(f"FROM busybox\nADD {base}/missing.txt /srv/\n")
        missing = docker("build", str(ctx))
        assert missing.returncode == 1
        assert f"ADD failed: failed to GET {base}/missing.txt with status 404 File not found: " in missing.stderr.decode()
    finally:
        server.shutdown()
        server.server_close()
        serving.join()
        docker("rmi", "pe-addurl")


def test_failed_build_leaves_nothing(daemon, docker, tmp_path):
    tmp_root = os.path.join(daemon.data_root, "tmp")
    before_images = set(docker("images", "-aq", "--no-trunc").stdout.decode().split())
    _write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY f /f\nRUN echo step-output && exit 3\nRUN true\n", "f": "x"})
    result = docker("build", "--no-cache", "-t", "pe-fail", str(tmp_path))
    assert result.returncode == 3
    assert "step-output" in result.stdout.decode()
    assert "The command '/bin/sh -c echo step-output && exit 3' returned a non-zero code: 3" in result.stderr.decode()
    # dockerd's classic builder leaves the failed step's container (to look into), exited;
    # --force-rm leaves none
    left = docker("ps", "-aq", "--no-trunc").stdout.decode().split()
    assert len(left) == 1
    state = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{json .Config.Cmd}}", left[0]).stdout
    assert state.decode().strip() == 'exited 3 ["/bin/sh","-c","echo step-output \u0026\u0026 exit 3"]'
    assert docker("rm", left[0]).returncode == 0
    result = docker("build", "--force-rm", "-t", "pe-fail", str(tmp_path))  # COPY from the cache
    assert result.returncode == 3
    assert docker("ps", "-aq").stdout.strip() == b""
    assert docker("images", "-q", "pe-fail").stdout.strip() == b""
    assert not _mounts_under(tmp_root + "/")  # no build workspace left mounted
    assert not (os.path.isdir(tmp_root) and [e for e in os.listdir(tmp_root) if e.startswith("build-")])
    # a bad Dockerfile is refused with its line, before anything runs
    bad = docker("build", "-f", "-", str(tmp_path), input=b"FROM busybox\nRUN true\nFROBNICATE now\n")
    assert bad.returncode == 1
    assert "dockerfile parse error line 3: unknown instruction: FROBNICATE" in bad.stderr.decode()
    # ADD of an unreachable URL: a clear error naming it
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file.tar"
    unreachable = docker("build", "-f", "-", str(tmp_path), input=f"FROM busybox\nADD {url} /x\n".encode())
    assert unreachable.returncode == 1
    assert (f'ADD failed: Get "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused'
            in unreachable.stderr.decode())
    assert docker("ps", "-aq").stdout.strip() == b""
    after_images = set(docker("images", "-aq", "--no-trunc").stdout.decode().split())
    # only the cached COPY step remains (as dockerd keeps it), no tagged or half image
    assert len(after_images - before_images) <= 1


def test_docker_py_build_cache_from_df_and_prune(daemon, tmp_path):
    import docker as dockerpy

    client = dockerpy.DockerClient(base_url=daemon.host, version="1.41", timeout=120)
    try:
        _write(tmp_path, {"Dockerfile": "FROM busybox AS base\nARG V\nRUN echo v=$V > /v\nLABEL stage=one\n"
                                        "FROM base AS final\nRUN cat /v > /w\n"})
        image, logs = client.images.build(path=str(tmp_path), tag="pe-py:1", buildargs={"V": "42", "UNUSED": "x"},
                                          labels={"via": "docker-py"}, rm=True)
        text = "".join(chunk.get("stream", "") for chunk in logs)
        assert "[Warning] One or more build-args [UNUSED] were not consumed" in text
        assert image.labels == {"stage": "one", "via": "docker-py"}
        assert client.containers.run("pe-py:1", "cat /w", remove=True) == b"v=42\n"
        target, _ = client.images.build(path=str(tmp_path), target="base", buildargs={"V": "42"}, rm=True,
                                        gzip=True)
        assert "via" not in target.labels
        df = client.df()
        assert df["BuildCache"] and all(entry["Type"] == "regular" for entry in df["BuildCache"])
        # a rebuild that moves a tag leaves the old image to the cache alone (dangling)
        for line in ("RUN echo one > /d", "RUN echo two > /d"):
            _write(tmp_path / "moved", {"Dockerfile": f"FROM busybox\n{line}\n"})
            client.images.build(path=str(tmp_path / "moved"), tag="pe-py:moved", rm=True)
        # /build/prune forgets the cache and frees the layers only it held
        saved = b"".join(client.images.get("pe-py:1").save(named=True))
        client.images.remove("pe-py:1")
        pruned = client.api.prune_builds(all=True)
        assert pruned["CachesDeleted"] and pruned["SpaceReclaimed"] > 0
        assert not client.df()["BuildCache"]
        # --cache-from: the image loaded back (no intermediates, no cache) still gives hits
        loaded = client.images.load(saved)[0]
        again, logs = client.images.build(path=str(tmp_path), tag="pe-py:2", buildargs={"V": "42"},
                                          labels={"via": "docker-py"}, cache_from=["pe-py:1"], rm=True)
        text = "".join(chunk.get("stream", "") for chunk in logs)
        assert text.count("Using cache") == 5, text
        assert again.id == loaded.id
        # remote=: the daemon fetches the context (here a tar served on 127.0.0.1)
        import http.server
        import threading

        served = io.BytesIO()
        with tarfile.open(fileobj=served, mode="w:gz") as tf:
            data = b"FROM busybox\nCOPY hello /hello\n"
            for name, content in (("Dockerfile", data), ("hello", b"remote\n")):
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = served.getvalue()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            remote, _ = client.images.build(path=f"http://127.0.0.1:{server.server_port}/ctx.tar.gz", tag="pe-remote")
            assert client.containers.run("pe-remote", "cat /hello", remove=True) == b"remote\n"
            client.images.remove("pe-remote")
            missing = f"http://127.0.0.1:{server.server_port}/missing.tar"
            Handler.do_GET = lambda self: self.send_error(404)
            with pytest.raises(dockerpy.errors.APIError, match=f"error downloading remote context {missing}: "
                               f"failed to GET {missing} with status 404 Not Found"):
                client.images.build(path=missing)
        finally:
            server.shutdown()
            server.server_close()
        with pytest.raises(dockerpy.errors.BuildError, match="returned a non-zero code: 5"):
            _write(tmp_path, {"Dockerfile": "FROM busybox\nRUN exit 5\n"})
            client.images.build(path=str(tmp_path), rm=True)
        client.images.remove("pe-py:1")
        client.images.remove("pe-py:2")
        client.images.remove("pe-py:moved")
        client.api.prune_builds(all=True)
    finally:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        client.close()


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose not installed")
def test_compose_build(daemon, tmp_path):
    _write(tmp_path, {
        "docker-compose.yml": 'version: "3.8"\nservices:\n  app:\n    build:\n      context: ./app\n'
                              "      args:\n        MSG: from-compose\n    image: pe-compose-app\n",
        "app/Dockerfile": "FROM busybox\nARG MSG\nRUN echo $MSG > /msg\nCMD [\"cat\", \"/msg\"]\n",
    })
    env = daemon.env()
    result = subprocess.run([COMPOSE, "-p", "pebuild", "build"], cwd=tmp_path, env=env, capture_output=True, timeout=180)
    assert result.returncode == 0, (result.stdout, result.stderr)
    out = subprocess.run([DOCKER, "run", "--rm", "pe-compose-app"], env=env, capture_output=True, timeout=60)
    assert out.stdout == b"from-compose\n"
    subprocess.run([DOCKER, "rmi", "pe-compose-app"], env=env, capture_output=True, timeout=60)


def test_pyengine_build_cli(daemon, tmp_path):
    import sys

    def pe(*args, input=None):
        return subprocess.run([sys.executable, "-m", "engine.cli", "-H", daemon.host, *args], input=input,
                              capture_output=True, timeout=180, env=daemon.env())

    before = set(pe("images", "-aq", "--no-trunc").stdout.decode().split())
    _write(tmp_path, {"Dockerfile": "FROM busybox\nARG A\nRUN echo built-$A > /out\nCMD [\"cat\", \"/out\"]\n",
                      "junk.log": "x", ".dockerignore": "*.log\n"})
    first = pe("build", "-t", "pe-cli:1", "--build-arg", "A=1", str(tmp_path))
    assert first.returncode == 0, first.stderr
    out = first.stdout.decode()
    assert "Step 3/4 : RUN echo built-$A > /out" in out and "Successfully tagged pe-cli:1" in out
    quiet = pe("build", "-q", "-t", "pe-cli:1", "--build-arg", "A=1", str(tmp_path))
    assert quiet.stdout.decode().strip().startswith("sha256:")
    assert pe("run", "--rm", "pe-cli:1").stdout == b"built-1\n"
    failing = pe("build", "-q", "-f", "-", str(tmp_path), input=b"FROM busybox\nRUN echo why-it-failed; exit 9\n")
    assert failing.returncode == 9
    assert "why-it-failed" in failing.stdout.decode()  # -q still shows a failed build's output
    assert "returned a non-zero code: 9" in failing.stderr.decode()
    _write(tmp_path, {"alt/Dockerfile.alt": "FROM busybox\nCMD [\"echo\", \"alt\"]\n"})
    alt = pe("build", "-q", "-t", "pe-cli:alt", "-f", str(tmp_path / "alt" / "Dockerfile.alt"), str(tmp_path))
    assert alt.returncode == 0, alt.stderr
    assert pe("run", "--rm", "pe-cli:alt").stdout == b"alt\n"
    assert pe("rmi", "pe-cli:alt").returncode == 0
    removed = pe("rmi", "pe-cli:1").stdout.decode()
    assert removed.count("Deleted: sha256:") >= 3  # the image and its intermediates
    assert set(pe("images", "-aq", "--no-trunc").stdout.decode().split()) == before


LIMITS_PROBE = """\
FROM busybox
RUN for f in memory/memory.limit_in_bytes memory.max cpu/cpu.shares cpu/cpu.cfs_quota_us cpu.max; do \\
      [ -r /sys/fs/cgroup/$f ] && echo "$f=$(cat /sys/fs/cgroup/$f)"; done; echo "nofile=$(ulimit -n)"
"""


def _limits_seen(out: str) -> None:
    assert "memory/memory.limit_in_bytes=67108864" in out or "memory.max=67108864" in out, out
    assert "cpu/cpu.cfs_quota_us=50000" in out or "cpu.max=50000 100000" in out, out
    assert "nofile=1024" in out, out


def test_run_steps_get_the_resource_limits_asked_for(daemon, docker, tmp_path):
    """`docker build -m/--cpu-period/--cpu-quota/--ulimit` (the classic builder's query) and
    `pyengine build` with the same flags limit the RUN containers as `docker run` would; a
    limit a container create refuses fails the build with its message."""
    import sys

    _write(tmp_path, {"Dockerfile": LIMITS_PROBE})
    flags = ["-m", "64m", "--cpu-period", "100000", "--cpu-quota", "50000", "--ulimit", "nofile=1024:2048"]
    built = docker("build", "--no-cache", *flags, str(tmp_path))
    assert built.returncode == 0, built.stderr.decode()
    _limits_seen(built.stdout.decode())
    pe = subprocess.run([sys.executable, "-m", "engine.cli", "-H", daemon.host, "build", "--no-cache", *flags,
                         str(tmp_path)], capture_output=True, timeout=180, env=daemon.env())
    assert pe.returncode == 0, pe.stderr.decode()
    _limits_seen(pe.stdout.decode())
    refused = docker("build", "--no-cache", "-m", "1m", str(tmp_path))
    assert refused.returncode != 0 and "Minimum memory limit allowed is 6MB" in refused.stderr.decode()


def test_run_layers_carry_whiteouts(docker, tmp_path):
    _write(tmp_path, {"Dockerfile": "FROM busybox\nRUN mkdir -p /d/sub && touch /d/sub/a /d/b\n"
                                    "RUN rm /bin/ls && rm -rf /d && mkdir /d && echo new > /d/only\n"})
    docker("build", "-t", "pe-wh", str(tmp_path), check=True)
    assert docker("run", "--rm", "pe-wh", "sh", "-c", "ls /bin/ls; ls /d").stdout == b"only\n"
    archive = tarfile.open(fileobj=io.BytesIO(docker("save", "pe-wh", check=True).stdout))
    manifest = json.load(archive.extractfile("manifest.json"))[0]
    top = tarfile.open(fileobj=archive.extractfile(manifest["Layers"][-1])).getnames()
    assert "bin/.wh.ls" in top and "d/.wh..wh..opq" in top and "d/only" in top
    assert not [n for n in top if n.startswith("etc")]  # no runtime mount points in a layer
    docker("rmi", "pe-wh")

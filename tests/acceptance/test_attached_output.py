"""Every byte a short-lived attached container writes reaches its client: many runs at once
(the load under which `docker-compose run --rm -T svc sh -c 'cat file'` once printed
nothing), through docker-py (attach before start; containers.run, which follows the logs),
the docker CLI and docker-compose 1.29, with small and large (backpressured) outputs."""

from __future__ import annotations

import concurrent.futures
import shutil
import subprocess

import pytest

from tests.conftest import needs_root

DOCKER = shutil.which("docker")
COMPOSE = shutil.which("docker-compose")
pytestmark = [needs_root, pytest.mark.acceptance]
RUNS = 12  # per client kind; they run concurrently
BIG = 512 * 1024  # more than the pipe (64 KiB) and the attach buffer hold at once


def script(tag: str, big: bool) -> str:
    """stdout: the tag (and, if big, BIG bytes); stderr: err-<tag>."""
    extra = f"; head -c {BIG} /dev/zero | tr '\\0' x" if big else ""
    return f"echo {tag}{extra}; echo err-{tag} >&2"


def expected(tag: str, big: bool) -> bytes:
    return f"{tag}\n".encode() + (b"x" * BIG if big else b"")


def test_short_lived_attached_runs_lose_no_output(daemon, tmp_path):
    import docker

    host = daemon.host
    problems: list[tuple] = []

    def docker_py_attach(i: int) -> None:
        client = docker.APIClient(base_url=host, version="1.41", timeout=120)
        tag, big = f"attach{i}", i % 4 == 0
        container = client.create_container("busybox", ["sh", "-c", script(tag, big)])
        try:
            stream = client.attach(container, stream=True, logs=False, stdout=True, stderr=True, demux=True)
            client.start(container)
            out, err = b"", b""
            for o, e in stream:
                out += o or b""
                err += e or b""
            if (out, err) != (expected(tag, big), f"err-{tag}\n".encode()):
                problems.append(("docker-py attach", tag, len(out), out[:40], err))
        finally:
            client.remove_container(container, force=True)

    def docker_py_run(i: int) -> None:
        client = docker.DockerClient(base_url=host, version="1.41", timeout=120)
        tag, big = f"run{i}", i % 4 == 1
        out = client.containers.run("busybox", ["sh", "-c", script(tag, big)], remove=True)
        if out != expected(tag, big):
            problems.append(("docker-py run", tag, len(out), out[:40]))

    def docker_cli(i: int) -> None:
        tag, big = f"cli{i}", i % 4 == 2
        result = subprocess.run([DOCKER, "run", "--rm", "busybox", "sh", "-c", script(tag, big)],
                                env=daemon.env(), capture_output=True, timeout=120)
        if (result.returncode, result.stdout, result.stderr) != (0, expected(tag, big), f"err-{tag}\n".encode()):
            problems.append(("docker cli", tag, result.returncode, len(result.stdout), result.stderr[-200:]))

    (tmp_path / "docker-compose.yml").write_text('version: "3"\nservices:\n  svc:\n    image: busybox\n')

    def compose_run(i: int) -> None:
        tag = f"compose{i}"
        result = subprocess.run([COMPOSE, "-p", "peattached", "run", "--rm", "-T", "svc", "sh", "-c",
                                 f"echo {tag}; cat /etc/group"], cwd=tmp_path, env=daemon.env(),
                                capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        lines = result.stdout.decode().splitlines()
        if result.returncode != 0 or lines[:2] != [tag, "root:x:0:"]:
            problems.append(("compose run", tag, result.returncode, result.stdout[:80], result.stderr[-300:]))

    jobs = [(docker_py_attach, i) for i in range(RUNS)] + [(docker_py_run, i) for i in range(RUNS)]
    if DOCKER is not None:
        jobs += [(docker_cli, i) for i in range(RUNS)]
    if COMPOSE is not None:
        jobs += [(compose_run, i) for i in range(1, RUNS // 2)]
    try:
        if COMPOSE is not None:
            compose_run(0)  # alone: it creates the project's network (concurrent runs race to)
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            for future in [pool.submit(fn, i) for fn, i in jobs]:
                future.result()
    finally:
        if COMPOSE is not None:
            subprocess.run([COMPOSE, "-p", "peattached", "down"], cwd=tmp_path, env=daemon.env(),
                           capture_output=True, timeout=120)
    assert not problems, problems

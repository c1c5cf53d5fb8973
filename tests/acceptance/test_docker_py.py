"""docker-py 7.x's high-level client against a private pyengined."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.acceptance]


@pytest.fixture
def client(daemon):
    client = docker.DockerClient(base_url=daemon.host, timeout=60)
    yield client
    for container in client.containers.list(all=True):
        container.remove(force=True)
    client.close()


def test_ping_version(client):
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.41"


def test_run_attached_returns_output(client):
    assert client.containers.run("busybox", ["echo", "hi"], remove=True) == b"hi\n"
    with pytest.raises(docker.errors.ContainerError) as info:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 2"])
    assert info.value.exit_status == 2


def test_run_detached_logs_stream_and_exec(client):
    container = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo l$i; sleep 0.1; done; sleep 1000"],
                                      detach=True, name="pe-py-web")
    lines = []
    for chunk in container.logs(stream=True, follow=True):
        lines.append(chunk)
        if b"".join(lines).count(b"\n") >= 3:
            break
    assert b"".join(lines) == b"l1\nl2\nl3\n"
    code, output = container.exec_run(["sh", "-c", "echo $((6*7))"])
    assert (code, output) == (0, b"42\n")
    container.reload()
    assert container.status == "running"
    container.stop(timeout=1)
    container.reload()
    assert container.status == "exited"
    assert container.attrs["State"]["ExitCode"] == 137


def test_wait_for_each_condition_past_the_quick_poll(client):
    """A wait that outlasts the API's first, unwatched QUICK poll (engine.api
    DeferredResponse, which then polls again, watched) answers for each condition."""
    running = client.containers.run("busybox", ["sh", "-c", "sleep 0.5; exit 3"], detach=True)
    assert running.wait() == {"StatusCode": 3, "Error": None}  # not-running
    removed = client.containers.run("busybox", ["sh", "-c", "sleep 0.5; exit 4"], detach=True, auto_remove=True)
    assert removed.wait(condition="removed")["StatusCode"] == 4
    again = client.containers.create("busybox", ["sh", "-c", "sleep 0.5; exit 5"])
    api = client.api
    with ThreadPoolExecutor(1) as pool:
        waited = pool.submit(api.wait, again.id, condition="next-exit")
        again.start()
        assert waited.result(timeout=30)["StatusCode"] == 5


def test_list_filters(client):
    a = client.containers.run("busybox", ["true"], detach=True, labels={"pe": "one"})
    a.wait()
    assert [c.id for c in client.containers.list(all=True, filters={"label": "pe=one"})] == [a.id]
    assert a.id in [c.id for c in client.containers.list(all=True, filters={"status": "exited"})]
    assert a.id not in [c.id for c in client.containers.list()]

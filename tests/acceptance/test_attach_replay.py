"""Attach's replay of a stopped container's logs (docker-py `attach(stream=False, logs=True)`):
docker-py reads the 101 head through a buffered reader and the frames from the raw socket, so
frames sent together with the head were lost to it now and then."""

import pytest

pytestmark = pytest.mark.acceptance


def test_attach_no_stream_replays_every_stopped_containers_output(dclient):
    empty = 0
    for i in range(30):
        container = dclient.create_container("busybox", ["echo", f"hello {i}"])
        try:
            dclient.start(container)
            assert dclient.wait(container, timeout=60)["StatusCode"] == 0
            if dclient.attach(container, stream=False, logs=True) != f"hello {i}\n".encode():
                empty += 1
        finally:
            dclient.remove_container(container, force=True)
    assert empty == 0, f"{empty} of 30 replays lost their output"

"""The API server on a real unix socket: plain requests with keep-alive, hijack path, errors,
streaming, events over HTTP and websocket (hypercorn), and the real clients (docker-py, the
docker CLI)."""

import json
import re
import os
import shutil
import struct
import tempfile
from urllib.parse import quote

import attrs
import httpx
import pytest
import trio
import trio_websocket

from engine.api import (
    MULTIPLEXED,
    STDERR,
    STDOUT,
    HijackedStream,
    Request,
    Router,
    StreamingResponse,
    create_app,
    empty,
    json_deferred,
    json_response,
    serve_api,
)
from engine.containers.manager import ContainerCounts
from engine.errors import Conflict, NotFound, NotModified
from engine.events import EventBus

# ------------------------------------------------------------------ fixtures

test_router = Router()
STREAM_CLOSED = []  # trio.Events set by the streaming generator's finally


@test_router.get("/test/boom")
async def boom(req: Request):
    raise RuntimeError("kaboom")


@test_router.post("/test/conflict")
async def conflict(req: Request):
    raise Conflict("name is taken")


@test_router.post("/test/notmodified")
async def notmodified(req: Request):
    raise NotModified("already started")


@test_router.post("/test/echo")
async def echo(req: Request):
    body = await req.json(default={})
    return json_response(
        {
            "body": body,
            "all": req.query.bool("all", False),
            "limit": req.query.int("limit", -1),
            "filters": req.query.filters({"label": None}),
            "version": req.api_version,
            "ua": req.headers.get("user-agent"),
        },
        201,
    )


@test_router.get("/test/images/{name:path}/json")
async def image_json(req: Request):
    return json_response({"name": req.params["name"]})


@test_router.delete("/test/things/{id}")
async def delete_thing(req: Request):
    return empty()


@test_router.get("/test/stream")
async def forever(req: Request):
    closed = trio.Event()
    STREAM_CLOSED.append(closed)

    async def gen():
        try:
            i = 0
            while True:
                yield f"chunk {i}\n".encode()
                i += 1
                await trio.sleep(0.01)
        finally:
            closed.set()

    return StreamingResponse(gen(), "text/plain")


@test_router.get("/test/count")
async def count(req: Request):
    async def gen():
        for i in range(3):
            yield f"n{i}".encode()

    return StreamingResponse(gen(), "text/plain")


DEFERRED: dict = {}  # the last /test/deferred request's events


@test_router.post("/test/deferred")
async def deferred(req: Request):
    release, cancelled = DEFERRED["release"], DEFERRED["cancelled"] = trio.Event(), trio.Event()
    DEFERRED["calls"] = DEFERRED["running"] = 0

    async def produce():
        DEFERRED["calls"] += 1
        DEFERRED["running"] += 1
        try:
            await release.wait()
        except trio.Cancelled:
            cancelled.set()
            raise
        finally:
            DEFERRED["running"] -= 1
        return {"StatusCode": 7, "Error": None}

    return json_deferred(produce, restartable=req.query.bool("restartable", True))


@test_router.get("/test/slowstart")
async def slowstart(req: Request):
    async def gen():
        await trio.sleep_forever()
        yield b""

    return StreamingResponse(gen(), "application/json")


@test_router.hijack("POST", "/test/{id}/attach")
async def echo_attach(req: Request, stream: HijackedStream):
    if req.params["id"] == "missing":
        raise NotFound("No such container: missing")
    await stream.upgrade(MULTIPLEXED)
    await stream.send_frame(STDERR, b"hello " + req.params["id"].encode())
    while True:
        data = await stream.receive_some()
        if not data:  # half-close: keep going, we still answer
            break
        await stream.send_frame(STDOUT, data)
    await stream.send_frame(STDERR, b"stdin closed")


@attrs.define
class FakeConfig:
    data_root: str = "/var/lib/pyengine-test"
    live_restore: bool = True


@attrs.define
class FakeDaemon:
    config: FakeConfig = attrs.Factory(FakeConfig)
    events: EventBus = attrs.Factory(EventBus)

    def info_counts(self):
        return ContainerCounts(running=1, paused=0, stopped=2), 7


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="pyeapi-", dir="/tmp")  # short: sun_path is 108 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def daemon():
    return FakeDaemon()


@pytest.fixture
async def server(nursery, sockdir, daemon):
    path = os.path.join(sockdir, "run", "api.sock")
    app = create_app(daemon, [test_router])
    addresses = await nursery.start(serve_api, app, [f"unix://{path}"])
    assert addresses == [f"unix://{path}"]
    return path


def client(path):
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=path), base_url="http://docker")


async def raw_request(path, request: bytes) -> bytes:
    stream = await trio.open_unix_socket(path)
    async with stream:
        await stream.send_all(request)
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
    return data


# ------------------------------------------------------------------ basics


async def test_socket_mode_and_unlink_on_shutdown(sockdir, daemon):
    path = os.path.join(sockdir, "x", "api.sock")
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, create_app(daemon), [f"unix://{path}"])
        assert oct(os.stat(path).st_mode & 0o777) == "0o660"
        nursery.cancel_scope.cancel()
    assert not os.path.exists(path)


async def test_stale_socket_is_replaced(sockdir, daemon):
    import socket

    path = os.path.join(sockdir, "api.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # a socket file nobody listens on
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, create_app(daemon), [f"unix://{path}"])
        async with client(path) as c:
            assert (await c.get("/_ping")).text == "OK"
        nursery.cancel_scope.cancel()


async def test_ping_with_and_without_version(server):
    async with client(server) as c:
        for url in ("/_ping", "/v1.41/_ping", "/v1.24/_ping"):
            r = await c.get(url)
            assert r.status_code == 200 and r.text == "OK"
            assert r.headers["api-version"] == "1.41"
            assert r.headers["ostype"] == "linux"
            assert r.headers["docker-experimental"] == "false"
            assert r.headers["server"].startswith("Docker/")
            assert r.headers["cache-control"].startswith("no-cache")
        r = await c.head("/_ping")
        assert r.status_code == 200 and r.headers["api-version"] == "1.41"


async def test_version_and_info(server, daemon):
    async with client(server) as c:
        v = (await c.get("/v1.41/version")).json()
        assert v["ApiVersion"] == "1.41" and v["MinAPIVersion"] == "1.12"
        assert v["Components"][0]["Name"] == "Engine" and v["Os"] == "linux"
        info = (await c.get("/info")).json()
        assert info["Containers"] == 3 and info["Images"] == 7 and info["ContainersStopped"] == 2
        assert info["DockerRootDir"] == "/var/lib/pyengine-test"
        assert info["Driver"] == "overlay2" and info["CgroupVersion"] in ("1", "2")
        assert info["NCPU"] >= 1 and info["MemTotal"] > 0 and info["Warnings"] is None  # dockerd's null
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", info["SystemTime"])  # RFC 3339 nano
        assert info["DriverStatus"][0][0] == "Backing Filesystem" and info["DriverStatus"][0][1] != "unknown"
        assert info["LiveRestoreEnabled"] is True and info["InitBinary"] == "pe-init"
        daemon.config.live_restore = False
        assert (await c.get("/info")).json()["LiveRestoreEnabled"] is False


async def test_error_mapping_and_500_containment(server):
    async with client(server) as c:
        r = await c.get("/nope")
        assert r.status_code == 404 and r.json() == {"message": "page not found"}
        r = await c.get("/v1.99/_ping")
        assert r.status_code == 400
        assert r.json()["message"] == "client version 1.99 is too new. Maximum supported API version is 1.41"
        r = await c.get("/v1.11/_ping")
        assert r.status_code == 400 and "too old" in r.json()["message"]
        r = await c.post("/_ping")  # only another method's route: dockerd's 404, no 405
        assert r.status_code == 404 and r.json() == {"message": "page not found"}
        r = await c.delete("/v1.41/info")
        assert r.status_code == 404 and r.json() == {"message": "page not found"}
        for path in ("/v1.41/info", "/containers/x/json", "/nope", "/"):  # dockerd's CORS preflight route
            r = await c.options(path)
            assert (r.status_code, r.content, r.headers["api-version"]) == (200, b"", "1.41"), path
        r = await c.get("/test/boom")
        assert r.status_code == 500 and r.json() == {"message": "kaboom"}
        assert r.headers["api-version"] == "1.41"
        r = await c.post("/test/conflict")
        assert r.status_code == 409 and r.json() == {"message": "name is taken"}
        r = await c.post("/test/notmodified")
        assert r.status_code == 304 and r.content == b""
        # ...and the server keeps serving
        assert (await c.get("/_ping")).text == "OK"


async def test_request_helpers(server):
    async with client(server) as c:
        r = await c.post(
            "/v1.40/test/echo",
            params={"all": "1", "limit": "5", "filters": json.dumps({"label": {"a=b": True}})},
            json={"Image": "busybox"},
        )
        assert r.status_code == 201
        assert r.json() == {"body": {"Image": "busybox"}, "all": True, "limit": 5,
                            "filters": {"label": ["a=b"]}, "version": "1.40", "ua": r.request.headers["user-agent"]}
        r = await c.post("/test/echo", params={"all": "false"})
        assert r.json()["all"] is False and r.json()["body"] == {}
        r = await c.post("/test/echo", params={"limit": "lots"})
        assert r.status_code == 400 and "limit" in r.json()["message"]
        r = await c.post("/test/echo", content=b"{nope", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["message"].startswith("invalid JSON")
        r = await c.post("/test/echo", params={"filters": "{bad"})
        assert r.status_code == 400
        r = await c.get("/v1.41/test/images/127.0.0.1:5000/team/app:1.0/json")
        assert r.json() == {"name": "127.0.0.1:5000/team/app:1.0"}
        r = await c.delete("/test/things/abc")
        assert r.status_code == 204 and r.content == b""


async def test_keep_alive_serves_many_requests_on_one_connection(server):
    """Requests follow each other (and may be pipelined) on one connection; HEAD gets no
    body; a body the handler ignores is skipped; a hijack may come after plain requests."""
    stream = await trio.open_unix_socket(server)
    async with stream:
        buf = bytearray()

        async def more() -> None:
            chunk = await stream.receive_some(65536)
            assert chunk, "the server closed the connection"
            buf.extend(chunk)

        async def response() -> tuple[bytes, bytes]:
            with trio.fail_after(5):
                while b"\r\n\r\n" not in buf:
                    await more()
                head, _, _ = bytes(buf).partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                end = len(head) + 4 + length
                while len(buf) < end:
                    await more()
                body = bytes(buf[len(head) + 4:end])
                del buf[:end]
                return head, body

        await stream.send_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        head, body = await response()
        assert head.startswith(b"HTTP/1.1 200") and body == b"OK"
        assert b"connection: close" not in head.lower()
        # two pipelined requests in one write, the first with a body nobody reads
        await stream.send_all(b"DELETE /test/things/x HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\n\r\nhello"
                              b"POST /test/echo?limit=3 HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{}")
        head, body = await response()
        assert head.startswith(b"HTTP/1.1 204")
        head, body = await response()
        assert head.startswith(b"HTTP/1.1 201") and json.loads(body)["limit"] == 3
        await stream.send_all(b"HEAD /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        with trio.fail_after(5):
            while b"\r\n\r\n" not in buf:
                await more()
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and rest == b""
        buf.clear()
        await stream.send_all(b"POST /test/k1/attach HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        await stream.send_eof()
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 101")
        frames = parse_frames(data.partition(b"\r\n\r\n")[2])
        assert frames[0] == (STDERR, b"hello k1") and frames[-1] == (STDERR, b"stdin closed")


async def test_connection_close_is_honoured(server):
    data = await raw_request(server, b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"OK")  # and the server closed
    data = await raw_request(server, b"GET /_ping HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"OK")


@pytest.mark.parametrize("transport", ["unix", "tcp"])
async def test_head_time_limit(transport, server, nursery, daemon, autojump_clock):
    """A connection waiting for a head (none begun, or half a head) is closed once
    HEAD_TIMEOUT has passed (the sweep may take a quarter more); a request served for
    longer than that is not cut, and its connection then waits for the next head. (A unix
    connection's wait is ended by closing its socket, a TCP one's by a cancel scope.)"""
    from engine.api._http1 import HEAD_TIMEOUT

    if transport == "unix":
        async def connect():
            return await trio.open_unix_socket(server)
    else:
        [address] = await nursery.start(serve_api, create_app(daemon, [test_router]), ["tcp://127.0.0.1:0"])
        port = int(address.rsplit(":", 1)[1])

        async def connect():
            return await trio.open_tcp_stream("127.0.0.1", port)

    for sent in (b"", b"GET /_ping HTTP/1.1\r\nHost"):
        stream = await connect()
        async with stream:
            await stream.send_all(sent)
            start = trio.current_time()
            with trio.fail_after(HEAD_TIMEOUT * 2):
                assert await stream.receive_some(65536) == b""
            assert HEAD_TIMEOUT <= trio.current_time() - start <= HEAD_TIMEOUT * 1.25 + 1
    stream = await connect()
    async with stream:
        await stream.send_all(b"POST /test/deferred HTTP/1.1\r\nHost: d\r\n\r\n")
        await read_past_head(stream)
        await trio.sleep(HEAD_TIMEOUT * 2)
        DEFERRED["release"].set()
        with trio.fail_after(1):
            data = await stream.receive_some(65536)
        assert b'"StatusCode": 7' in data and DEFERRED["calls"] == 2  # the second under a watch
        await stream.send_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        with trio.fail_after(1):
            assert (await read_past_head(stream)).startswith(b"HTTP/1.1 200")


async def read_until_closed(stream) -> bytes:
    data = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def read_past_head(stream) -> bytes:
    """What the server sent up to at least the end of a response head."""
    data = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
    return data


async def test_chunked_request_body_after_100_continue(server):
    """A chunked body (the docker CLI sends one for `docker cp` and `import -`) is decoded,
    extensions and trailers skipped; a client that waits for `100 Continue` gets it before
    sending the body; the connection carries the next request."""
    stream = await trio.open_unix_socket(server)
    async with stream:
        await stream.send_all(b"POST /test/echo?limit=7 HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n"
                              b"Expect: 100-continue\r\nContent-Type: application/json\r\n\r\n")
        data = await read_past_head(stream)
        assert data.startswith(b"HTTP/1.1 100 ")
        await stream.send_all(b"5;ext=1\r\n{\"a\":\r\n")
        await stream.send_all(b"3\r\n 1}\r\n0\r\nX-Trailer: yes\r\n\r\n"
                              b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        rest = data.partition(b"\r\n\r\n")[2] + await read_until_closed(stream)
    first, _, second = rest.partition(b"HTTP/1.1 200 ")
    assert first.startswith(b"HTTP/1.1 201 ")
    assert json.loads(first.partition(b"\r\n\r\n")[2]) ["body"] == {"a": 1}
    assert second.endswith(b"\r\n\r\nOK")


async def test_streaming_response_framing(server):
    """HTTP/1.1 clients get a chunked body; HTTP/1.0 clients the bare bytes, ended by the
    close; HEAD gets the head only."""
    stream = await trio.open_unix_socket(server)
    async with stream:
        await stream.send_all(b"GET /test/count HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        head, _, body = (await read_until_closed(stream)).partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"2\r\nn0\r\n2\r\nn1\r\n2\r\nn2\r\n0\r\n\r\n"
    head, _, body = (await raw_request(server, b"GET /test/count HTTP/1.0\r\n\r\n")).partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and body == b"n0n1n2"
    data = await raw_request(server, b"HEAD /test/count HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("request_bytes", ids=[
    "no-version", "http2", "no-host", "bad-name", "folding", "negative-length", "two-lengths", "gzip", "huge-head",
], argvalues=[
    b"GET /_ping\r\n\r\n",                                                   # no version
    b"GET /_ping HTTP/2.0\r\nHost: d\r\n\r\n",                               # not HTTP/1.x
    b"GET /_ping HTTP/1.1\r\n\r\n",                                          # no Host
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nBad Header: x\r\n\r\n",             # not a token
    b"GET /_ping HTTP/1.1\r\n folded\r\nHost: d\r\n\r\n",                   # folding with nothing to fold
    b"POST /test/echo HTTP/1.1\r\nHost: d\r\nContent-Length: -1\r\n\r\n",
    b"POST /test/echo HTTP/1.1\r\nHost: d\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST /test/echo HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nX: " + b"a" * 70000,              # head too large (and unended)
])
async def test_malformed_requests_are_refused(server, request_bytes):
    """Refused with h11's status hint (as Go's net/http, dockerd's server: 501 for a transfer
    coding other than chunked, 431 for a head over the limit, else 400). h11 unfolds an
    obsolete folded header line after the first one, as RFC 9112 5.2 allows, and limits a head
    not yet complete (64 KiB): a complete head is at most that and one read."""
    data = await raw_request(server, request_bytes)
    status = b"431" if len(request_bytes) > 65536 else b"501" if b"gzip" in request_bytes else b"400"
    assert data.startswith(b"HTTP/1.1 " + status + b" ") and b"bad request" in data  # and the server closed


async def test_bad_chunked_body_ends_the_connection(server):
    data = await raw_request(server, b"POST /test/echo HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     b"zz\r\n{}\r\n0\r\n\r\nGET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    assert b"OK" not in data.partition(b"\r\n\r\n")[2]  # no second request served


# ------------------------------------------------------------------ real clients


def _docker_py(path):
    import docker

    c = docker.APIClient(base_url=f"unix://{path}", version="auto")
    try:
        out = {"version": c.version(), "api": c.api_version}
        # several requests through one pooled client (keep-alive)
        out["pings"] = [c.ping() for _ in range(5)]
        out["info"] = c.info()
        out["v2"] = c.version()
        return out
    finally:
        c.close()


async def test_docker_py(server):
    out = await trio.to_thread.run_sync(_docker_py, server)
    assert out["api"] == "1.41"
    assert out["version"]["ApiVersion"] == "1.41"
    assert out["pings"] == [True] * 5
    assert out["info"]["Images"] == 7 and out["v2"] == out["version"]


@pytest.mark.skipif(not shutil.which("docker"), reason="docker CLI not installed")
async def test_docker_cli_version(server):
    env = {**os.environ, "DOCKER_HOST": f"unix://{server}", "DOCKER_CONFIG": os.path.dirname(server)}
    env.pop("DOCKER_CONTEXT", None)
    result = await trio.run_process(["docker", "version"], env=env, capture_stdout=True,
                                    capture_stderr=True, check=False)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    server_part = out.split("Server:", 1)[1]
    assert "API version:" in server_part and "1.41" in server_part
    fmt = await trio.run_process(["docker", "version", "--format", "{{.Server.APIVersion}}"], env=env,
                                 capture_stdout=True, check=False)
    assert fmt.stdout.decode().strip() == "1.41"


# ------------------------------------------------------------------ hijack


def parse_frames(data: bytes, whole_only: bool = False):
    """Multiplexed-stream frames; `whole_only`: stop at a frame not wholly received yet."""
    frames = []
    while data:
        if whole_only and (len(data) < 8 or len(data) < 8 + struct.unpack(">BxxxL", data[:8])[1]):
            break
        stream_id, size = struct.unpack(">BxxxL", data[:8])
        frames.append((stream_id, data[8 : 8 + size]))
        data = data[8 + size :]
    return frames


async def test_hijack_echo_with_half_close(server):
    stream = await trio.open_unix_socket(server)
    async with stream:
        # the first stdin bytes travel in the same packet as the head: they must not be lost
        await stream.send_all(
            b"POST /v1.41/test/c1/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
            b"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\n\r\n"
            b"early "
        )
        buf = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in buf:
                buf += await stream.receive_some(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 101 UPGRADED"
        assert b"Content-Type: application/vnd.docker.multiplexed-stream" in lines
        assert b"Upgrade: tcp" in lines and b"Connection: Upgrade" in lines
        await stream.send_all(b"late")
        with trio.fail_after(5):  # the EOF must come after "late" was read and echoed
            while b"".join(d for s, d in parse_frames(rest, whole_only=True) if s == STDOUT) != b"early late":
                rest += await stream.receive_some(65536)
        await stream.send_eof()  # half-close: EOF is not a disconnect
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                rest += chunk
    frames = parse_frames(rest)
    assert frames[0] == (STDERR, b"hello c1")
    assert b"".join(d for s, d in frames if s == STDOUT) == b"early late"
    assert frames[-1] == (STDERR, b"stdin closed")


async def test_hijack_error_before_upgrade_is_json(server):
    data = await raw_request(
        server,
        b"POST /test/missing/attach HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404")
    assert json.loads(body) == {"message": "No such container: missing"}
    data = await raw_request(
        server,
        b"POST /v1.41/nothing/here HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404") and json.loads(body) == {"message": "page not found"}


async def test_hijack_body_is_read(server, daemon):
    # exec start style: a JSON body with Content-Length, then the stream
    body = b'{"Detach": false, "Tty": false}'
    stream = await trio.open_unix_socket(server)
    async with stream:
        await stream.send_all(
            b"POST /test/c2/attach HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
            + body + b"stdin!"
        )
        await stream.send_eof()
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
    _, _, rest = data.partition(b"\r\n\r\n")
    frames = parse_frames(rest)
    assert (STDOUT, b"stdin!") in frames and frames[-1] == (STDERR, b"stdin closed")


# ------------------------------------------------------------------ streaming


async def test_streaming_stops_when_client_disconnects(server):
    STREAM_CLOSED.clear()
    async with client(server) as c:
        async with c.stream("GET", "/test/stream") as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line == "chunk 2":
                    break
    with trio.fail_after(5):
        await STREAM_CLOSED[0].wait()  # the generator's finally ran


async def test_streaming_headers_are_sent_at_once(server):
    async with client(server) as c:
        with trio.fail_after(5):
            async with c.stream("GET", "/test/slowstart") as r:
                assert r.status_code == 200
                assert r.headers["content-type"] == "application/json"


async def test_deferred_response_head_at_once_then_one_body(server):
    """docker wait's shape: the head before the result exists, then the JSON line and the end
    of the chunked body."""
    stream = await trio.open_unix_socket(server)
    async with stream:
        await stream.send_all(b"POST /test/deferred HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
        data = await read_past_head(stream)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"transfer-encoding: chunked" in head.lower()
        assert body == b"" and not DEFERRED["release"].is_set()
        DEFERRED["release"].set()
        body += await read_until_closed(stream)
    size, _, rest = body.partition(b"\r\n")
    assert rest == body[len(size) + 2:] and rest.endswith(b"\r\n0\r\n\r\n")
    line = rest[:int(size, 16)]
    assert line.endswith(b"\n") and json.loads(line) == {"StatusCode": 7, "Error": None}


@pytest.mark.parametrize("restartable", [True, False])
async def test_deferred_response_stops_when_client_disconnects(server, autojump_clock, restartable):
    """A restartable long poll runs alone for QUICK seconds, then again with a watch on the
    client; another one is watched from the start. Its client gone, it is cancelled (a
    poll that ends sooner has its body sent at once: the test above)."""
    from engine.api import DeferredResponse

    stream = await trio.open_unix_socket(server)
    async with stream:
        await stream.send_all(b"POST /test/deferred?restartable=%d HTTP/1.1\r\nHost: d\r\n"
                              b"Content-Length: 0\r\n\r\n" % restartable)
        with trio.fail_after(5):
            await stream.receive_some(65536)  # the head
        await trio.sleep(DeferredResponse.QUICK * 2)
        assert DEFERRED["calls"] == (2 if restartable else 1) and DEFERRED["running"] == 1
    await trio.sleep(DeferredResponse.QUICK)
    assert DEFERRED["cancelled"].is_set() and DEFERRED["running"] == 0


# ------------------------------------------------------------------ events


async def test_events_stream(server, daemon):
    bus = daemon.events
    bus.publish("container", "create", "old1", {"name": "old"})
    async with client(server) as c:
        params = {"since": "0", "filters": json.dumps({"event": ["create", "start"]})}
        async with c.stream("GET", "/v1.41/events", params=params) as r:
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            # subscribed before the headers were sent: publishing now cannot be missed
            bus.publish("container", "die", "c1", {"name": "x"})
            bus.publish("container", "start", "c1", {"name": "x", "image": "busybox"})
            lines = r.aiter_lines()
            with trio.fail_after(5):
                first = json.loads(await lines.__anext__())
                second = json.loads(await lines.__anext__())
    assert (first["Action"], first["id"]) == ("create", "old1")
    assert (second["Action"], second["from"]) == ("start", "busybox")
    with trio.fail_after(5):
        while bus.statistics().subscribers:
            await trio.sleep(0.01)


async def test_events_until_in_the_past_ends(server, daemon):
    daemon.events.publish("network", "create", "n1", {"name": "front"})
    async with client(server) as c:
        with trio.fail_after(5):
            r = await c.get("/events", params={"since": "0", "until": "1s"})
    # until=1s means one second ago: our event is newer, so nothing; the stream ended
    assert r.status_code == 200 and r.text == ""
    async with client(server) as c:
        with trio.fail_after(5):
            r = await c.get("/events", params={"since": "0", "until": "-0s"})
    assert [json.loads(l)["Actor"]["ID"] for l in r.text.splitlines()] == ["n1"]


async def test_events_bad_since_is_400(server):
    async with client(server) as c:
        r = await c.get("/events", params={"since": "yesterday"})
    assert r.status_code == 400 and "invalid timestamp" in r.json()["message"]
    async with client(server) as c:  # dockerd's check, with the values as given
        r = await c.get("/events", params={"since": "1s", "until": "2s"})
    assert r.status_code == 400 and r.json()["message"] == "`since` time (1s) cannot be after `until` time (2s)"


async def test_events_websocket(server, daemon, nursery):
    bus = daemon.events
    bus.publish("container", "create", "ws-old")
    stream = await trio.open_unix_socket(server)
    ws = await trio_websocket.wrap_client_stream(
        nursery, stream, "docker", "/v1.41/events/ws?since=0&filters=" + quote(json.dumps({"type": ["container"]}))
    )
    async with ws:
        with trio.fail_after(5):
            first = json.loads(await ws.get_message())
            bus.publish("image", "pull", "busybox")
            bus.publish("container", "start", "ws-new")
            second = json.loads(await ws.get_message())
    assert first["Actor"]["ID"] == "ws-old" and second["Actor"]["ID"] == "ws-new"
    with trio.fail_after(5):
        while bus.statistics().subscribers:
            await trio.sleep(0.01)


async def test_events_websocket_unknown_route_is_refused(server):
    stream = await trio.open_unix_socket(server)
    rejected = []
    try:
        async with trio.open_nursery() as nursery:
            await trio_websocket.wrap_client_stream(nursery, stream, "docker", "/nope/ws")
    except* trio_websocket.ConnectionRejected as group:
        rejected = list(group.exceptions)
    assert rejected and rejected[0].status_code == 404
    assert json.loads(rejected[0].body) == {"message": "page not found"}


@pytest.mark.skipif(not shutil.which("docker"), reason="docker CLI not installed")
async def test_docker_cli_events(server, daemon):
    bus = daemon.events
    bus.publish("container", "start", "a" * 64, {"name": "before", "image": "busybox"})
    bus.publish("container", "create", "b" * 64, {"name": "skipped", "image": "busybox"})
    env = {**os.environ, "DOCKER_HOST": f"unix://{server}", "DOCKER_CONFIG": os.path.dirname(server)}
    env.pop("DOCKER_CONTEXT", None)
    proc = await trio.lowlevel.open_process(
        ["docker", "events", "--since", "1h", "--filter", "event=start", "--format", "{{json .}}"],
        env=env, stdout=__import__("subprocess").PIPE,
    )
    try:
        lines = []
        buf = b""
        published = False
        with trio.fail_after(10):
            # the CLI replays history since 1h, then follows
            while len(lines) < 2:
                chunk = await proc.stdout.receive_some(65536)
                assert chunk, "docker events ended early"
                buf += chunk
                *done, buf = buf.split(b"\n")
                lines += [json.loads(l) for l in done if l.strip()]
                if lines and not published:
                    published = True
                    bus.publish("container", "start", "c" * 64, {"name": "after", "image": "busybox"})
    finally:
        proc.kill()
        await proc.wait()
    assert [l["Actor"]["Attributes"]["name"] for l in lines] == ["before", "after"]
    assert all(l["Action"] == "start" for l in lines)


def _make_certs(d):
    import subprocess

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
async def test_tcp_tlsverify_requires_client_cert(sockdir, daemon):
    import ssl

    from engine.api import server_tls_context

    await trio.to_thread.run_sync(_make_certs, sockdir)
    p = lambda n: os.path.join(sockdir, n)  # noqa: E731
    tls = server_tls_context(p("server.pem"), p("server.key"), p("ca.pem"), verify=True)
    async with trio.open_nursery() as nursery:
        (address,) = await nursery.start(serve_api, create_app(daemon), ["tcp://127.0.0.1:0"], tls)
        port = int(address.rsplit(":", 1)[1])
        good = ssl.create_default_context(cafile=p("ca.pem"))
        good.load_cert_chain(p("client.pem"), p("client.key"))
        async with httpx.AsyncClient(verify=good) as c:
            r = await c.get(f"https://127.0.0.1:{port}/v1.41/_ping")
            assert r.status_code == 200 and r.text == "OK"
        anonymous = ssl.create_default_context(cafile=p("ca.pem"))
        async with httpx.AsyncClient(verify=anonymous) as c:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await c.get(f"https://127.0.0.1:{port}/_ping")
        nursery.cancel_scope.cancel()

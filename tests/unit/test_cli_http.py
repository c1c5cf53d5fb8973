"""The CLI's HTTP/1.1 client (engine/cli/_http.py) against a raw unix-socket server: keep-alive
reuse, a reused connection the server closed meanwhile, chunked bodies both ways, a body
delimited by the connection's end, a stream abandoned before its end, and the attach/exec
upgrade (101, an older path's 200, an error answer)."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from engine.cli import Client, ConnectError


class Server:
    """Answers each request with `reply(method, target, body)` -> raw response bytes; closes a
    connection after `per_connection` requests."""

    def __init__(self, path: str, reply, per_connection: int = 100):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen()
        self.reply = reply
        self.per_connection = per_connection
        self.connections = 0
        self.requests: list[tuple[str, str, bytes]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        with conn, f:
            for _ in range(self.per_connection):
                line = f.readline()
                if not line:
                    return
                method, target, _ = line.decode().split(" ", 2)
                headers = {}
                while (h := f.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if headers.get("transfer-encoding") == "chunked":
                    while (size := int(f.readline().split(b";")[0], 16)):
                        body += f.read(size)
                        f.readline()
                    f.readline()
                elif "content-length" in headers:
                    body = f.read(int(headers["content-length"]))
                self.requests.append((method, target, body))
                conn.sendall(self.reply(method, target, body))

    def close(self) -> None:
        self.sock.close()


def json_reply(method, target, body):
    data = b'{"ok": true}'
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(data), data)


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "api.sock")


def test_keep_alive_and_a_connection_closed_by_the_server_meanwhile(sock_path):
    server = Server(sock_path, json_reply, per_connection=1)  # closes after each answer
    client = Client(f"unix://{sock_path}")
    try:
        for _ in range(3):  # each reuse finds its connection closed: retried on a new one
            assert client.get("/a b", params={"x": "1 2", "f": ["a", "b"], "n": None}) == {"ok": True}
        assert server.connections == 3
        assert server.requests[0][1] == "/v1.41/a%20b?x=1%202&f=a&f=b"
    finally:
        client.close()
        server.close()
    server = Server(sock_path + "2", json_reply)
    client = Client(f"unix://{sock_path}2")
    try:
        for _ in range(3):
            client.post("/p", {"k": "v"})
        assert server.connections == 1 and server.requests[0][2] == b'{"k": "v"}'
    finally:
        client.close()
        server.close()


def test_chunked_both_ways_and_bodies_ended_by_close(sock_path):
    def reply(method, target, body):
        if target.endswith("/echo"):
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:3], body[3:])) +
                    b"0\r\n\r\n")
        if target.endswith("/close"):
            return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 22\r\n\r\n{\"message\": \"no such\"}"

    server = Server(sock_path, reply, per_connection=2)
    client = Client(f"unix://{sock_path}")
    try:
        with client.stream("POST", "/echo", content=iter([b"hello", b" ", b"world"])) as resp:
            assert b"".join(resp.iter_raw()) == b"hello world"
        assert server.requests[-1][2] == b"hello world"
        assert client.request("GET", "/close").content == b"until the end"
        with pytest.raises(Exception) as info:
            client.get("/missing")
        assert info.value.status == 404 and info.value.message == "no such"
        with client.stream("POST", "/echo", content=b"abcdef") as resp:
            next(resp.iter_raw())  # abandoned mid-body: that connection is not reused
        assert client.request("POST", "/echo", content=b"xyzw").content == b"xyzw"
    finally:
        client.close()
        server.close()


def test_no_daemon_is_a_connect_error(sock_path):
    client = Client(f"unix://{sock_path}")
    with pytest.raises(ConnectError):
        client.get("/_ping")
    open(sock_path, "w").close()
    os.chmod(sock_path, 0o600)
    with pytest.raises(ConnectError):
        client.get("/_ping")


def test_hijack_101_200_and_an_error(sock_path):
    def reply(method, target, body):
        if "/up" in target:  # the stream's first bytes arrive with the head
            return (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                    b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nfirst bytes")
        if "/old" in target:  # older paths answer the stream as a close-delimited body
            return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstream"
        return (b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"9\r\n{\"message\r\n8\r\n\": \"no\"}\r\n0\r\n\r\n")

    server = Server(sock_path, reply, per_connection=1)
    client = Client(f"unix://{sock_path}")
    try:
        with client.hijack("/up", {"stream": True}, body={"Detach": False}) as conn:
            assert conn.recv() == b"first bytes" and conn.content_type.endswith("raw-stream")
        assert server.requests[0][1] == "/v1.41/up?stream=1"
        assert server.requests[0][2] == b'{"Detach": false}'
        with client.hijack("/old") as conn:
            assert conn.content_type == "text/plain"
            assert b"".join(iter(conn.recv, b"")) == b"stream"  # until the server closes
        with pytest.raises(Exception) as info:
            client.hijack("/err")
        assert info.value.status == 409 and info.value.message == "no"
    finally:
        client.close()
        server.close()

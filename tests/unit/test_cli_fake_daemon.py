"""The CLI end to end against a tiny fake Docker API server on a temporary unix socket.

The fake is a threaded http.server (the CLI is synchronous and runs in-process through
`engine.cli.main([...])`); it answers canned JSON, records requests, and implements the
hijacked attach / exec-start upgrade with multiplexed frames.
"""

from __future__ import annotations

import re
import base64
import io
import json
import os
import socketserver
import struct
import tarfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

import pytest

from engine.cli import main

NOW = int(time.time())
CID = "3f4e5d6c7b8a" + "0" * 52

CONTAINERS = [
    {
        "Id": CID, "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:" + "a" * 64,
        "Command": "httpd -f -p 80 -h /www", "Created": NOW - 150, "State": "running",
        "Status": "Up 2 minutes",
        "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
        "Labels": {}, "Mounts": [],
    },
    {
        "Id": "b" * 64, "Names": ["/old"], "Image": "sha256:" + "c" * 64,
        "ImageID": "sha256:" + "c" * 64, "Command": "true", "Created": NOW - 7200,
        "State": "exited", "Status": "Exited (0) 2 hours ago", "Ports": [], "Labels": {},
        "Mounts": [],
    },
]


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "FakeDaemon"

    def log_message(self, *args):  # quiet
        pass

    def address_string(self) -> str:
        return "unix"

    # -- helpers --------------------------------------------------------------------------

    def _send_json(self, status: int, obj, headers: dict | None = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Api-Version", "1.41")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"message": message})

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        body = self._body()
        self.server.requests.append((method, path, query, body))
        if path.startswith("/v1.41"):
            path = path[len("/v1.41"):]
        fake = self.server
        if path == "/_ping":
            self.send_response(200)
            self.send_header("Api-Version", "1.41")
            self.send_header("Content-Length", "2")
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(b"OK")
        elif method == "GET" and path == "/containers/json":
            items = CONTAINERS if query.get("all") == "1" else CONTAINERS[:1]
            self._send_json(200, items)
        elif path.startswith("/containers/nosuch"):
            self._error(404, "No such container: nosuch")
        elif method == "POST" and path == "/containers/create":
            doc = json.loads(body)
            if doc["Image"] == "missing":
                return self._error(404, "No such image: missing:latest")
            fake.created = doc
            self._send_json(201, {"Id": CID, "Warnings": []})
        elif method == "POST" and path == f"/containers/{CID}/attach":
            self._hijack(fake.output_frames, echo=query.get("stdin") == "1")
        elif method == "POST" and path in (f"/containers/{CID}/exec", "/containers/web/exec"):
            fake.exec_body = json.loads(body)
            self._send_json(201, {"Id": "e1"})
        elif method == "POST" and path == "/exec/e1/start":
            fake.started.set()
            self._hijack([frame(1, b"from exec\n")], echo=fake.exec_body["AttachStdin"])
        elif method == "GET" and path == "/exec/e1/json":
            self._send_json(200, {"ID": "e1", "Running": False, "ExitCode": 7})
        elif method == "POST" and path == f"/containers/{CID}/wait":
            # headers at once, body when the "container" exits
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            fake.started.wait(5)
            time.sleep(0.05)
            data = json.dumps({"StatusCode": fake.exit_code, "Error": None}).encode()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        elif method == "POST" and path == f"/containers/{CID}/start":
            fake.started.set()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif method == "GET" and path in (f"/containers/{CID}/json", "/containers/web/json"):
            self._send_json(200, {"Id": CID, "Name": "/web", "Config": {"Tty": False,
                                                                        "Image": "busybox"},
                                  "State": {"Status": "running", "Running": True},
                                  "NetworkSettings": {"IPAddress": "172.17.0.2", "Ports": {
                                      "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}})
        elif method == "GET" and path in (f"/containers/{CID}/logs", "/containers/web/logs"):
            payload = frame(1, b"out line\n") + frame(2, b"err line\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif method == "GET" and path == "/containers/web/archive":
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                data = b"hello from the container\n"
                ti = tarfile.TarInfo("hostname")
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            stat = base64.b64encode(json.dumps({"name": "hostname", "size": 25, "mode": 0o644,
                                                "mtime": "2024-01-01T00:00:00Z",
                                                "linkTarget": ""}).encode()).decode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("X-Docker-Container-Path-Stat", stat)
            self.send_header("Content-Length", str(len(buf.getvalue())))
            self.end_headers()
            self.wfile.write(buf.getvalue())
        elif method == "POST" and path == f"/containers/{CID}/resize":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif method == "GET" and path == "/version":
            self._send_json(200, {"Version": "0.1.0", "ApiVersion": "1.41",
                                  "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64"})
        elif method == "GET" and path == "/events/ws":
            self._error(404, "page not found")
        elif method == "GET" and path == "/events":
            ev = {"Type": "container", "Action": "start", "Actor": {
                "ID": CID, "Attributes": {"name": "web", "image": "busybox"}},
                "time": 1704067200, "timeNano": 1704067200000000000}
            data = json.dumps(ev).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._error(404, f"page not found: {method} {path}")

    def _hijack(self, frames: list[bytes], echo: bool = False) -> None:
        self.wfile.write(b"HTTP/1.1 101 UPGRADED\r\n"
                         b"Content-Type: application/vnd.docker.multiplexed-stream\r\n"
                         b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        self.wfile.flush()
        self.server.started.wait(5)
        for f in frames:
            self.wfile.write(f)
        self.wfile.flush()
        if echo:  # like `cat`: copy stdin back until the client half-closes
            while True:
                data = self.rfile.read1(65536)
                if not data:
                    break
                self.wfile.write(frame(1, data))
                self.wfile.flush()
        self.close_connection = True

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")

    def do_HEAD(self):
        self._route("HEAD")

    def do_PUT(self):
        self._route("PUT")


class FakeDaemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str):
        super().__init__(path, Handler)
        self.requests: list = []
        self.created: dict | None = None
        self.started = threading.Event()
        self.exit_code = 0
        self.output_frames: list[bytes] = []


@pytest.fixture
def daemon(tmp_path, monkeypatch):
    sock = str(tmp_path / "d.sock")
    srv = FakeDaemon(sock)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    monkeypatch.setenv("PYENGINE_HOST", f"unix://{sock}")
    yield srv
    srv.shutdown()
    srv.server_close()


def test_ps_table(daemon, capsys):
    assert main(["ps"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                              "PORTS", "NAMES"]
    # tabwriter: every column padded to its widest cell + 3
    assert out[0].index("IMAGE") == 15
    assert out[1].startswith("3f4e5d6c7b8a   busybox   \"httpd -f -p 80 -h /…\"   ")
    assert re.search(r"\d+ minutes ago", out[1])  # Created is fixed at import time
    assert "Up 2 minutes   0.0.0.0:8080->80/tcp   web" in out[1]
    assert len(out) == 2


def test_ps_all_quiet_and_format(daemon, capsys):
    assert main(["ps", "-aq"]) == 0
    assert capsys.readouterr().out == "3f4e5d6c7b8a\nbbbbbbbbbbbb\n"
    assert main(["ps", "-a", "--format", "{{.Names}}: {{.Status}}"]) == 0
    assert capsys.readouterr().out == "web: Up 2 minutes\nold: Exited (0) 2 hours ago\n"
    assert main(["ps", "-a", "--filter", "status=exited", "--filter", "name=old"]) == 0
    capsys.readouterr()
    method, path, query, _ = daemon.requests[-1]
    assert json.loads(query["filters"]) == {"status": ["exited"], "name": ["old"]}


def test_no_such_container(daemon, capsys):
    assert main(["stop", "nosuch"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "Error response from daemon: No such container: nosuch\n"
    assert captured.out == ""
    assert main(["logs", "nosuch"]) == 1
    assert capsys.readouterr().err == "Error response from daemon: No such container: nosuch\n"


def test_inspect_missing_and_format(daemon, capsys):
    assert main(["inspect", "-f", "{{.State.Status}} {{.NetworkSettings.IPAddress}}",
                 "web"]) == 0
    assert capsys.readouterr().out == "running 172.17.0.2\n"
    assert main(["inspect", "--type", "container", "nosuch"]) == 1
    assert capsys.readouterr().err == "Error: No such container: nosuch\n"


def test_cannot_connect(tmp_path, capsys):
    host = f"unix://{tmp_path}/none.sock"
    assert main(["-H", host, "ps"]) == 1
    assert capsys.readouterr().err == (
        f"Cannot connect to the pyengine daemon at {host}. Is the daemon running?\n")


def test_run_attached_exit_code(daemon, capfd):
    daemon.exit_code = 3
    daemon.output_frames = [frame(1, b"hello\n"), frame(2, b"oops\n")]
    assert main(["run", "--rm", "busybox", "sh", "-c", "echo hello; exit 3"]) == 3
    captured = capfd.readouterr()
    assert captured.out == "hello\n"
    assert captured.err == "oops\n"
    assert daemon.created["Cmd"] == ["sh", "-c", "echo hello; exit 3"]
    assert daemon.created["HostConfig"]["AutoRemove"] is True
    paths = [(m, p.removeprefix("/v1.41"), q) for m, p, q, _ in daemon.requests]
    order = [p for _, p, _ in paths]
    assert order.index(f"/containers/{CID}/attach") < order.index(f"/containers/{CID}/start")
    assert order.index(f"/containers/{CID}/wait") < order.index(f"/containers/{CID}/start")
    wait_q = next(q for _, p, q in paths if p.endswith("/wait"))
    assert wait_q == {"condition": "removed"}
    attach_q = next(q for _, p, q in paths if p.endswith("/attach"))
    assert attach_q == {"stream": "1", "stdin": "0", "stdout": "1", "stderr": "1"}


def test_run_detached_prints_id(daemon, capsys):
    assert main(["run", "-d", "--name", "web", "busybox"]) == 0
    assert capsys.readouterr().out == CID + "\n"
    assert daemon.requests[0][2] == {"name": "web"}


def test_run_missing_image(daemon, capsys):
    assert main(["run", "--pull", "never", "missing"]) == 125  # (the pull of a missing image: acceptance)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "Unable to find image 'missing:latest' locally",
        "pyengine: Error response from daemon: No such image: missing:latest.",
        "See 'pyengine run --help'.",
    ]


def test_logs_demultiplexed(daemon, capfd):
    assert main(["logs", "web"]) == 0
    captured = capfd.readouterr()
    assert captured.out == "out line\n"
    assert captured.err == "err line\n"


def test_cp_from_container_renames(daemon, tmp_path, capsys):
    dest = tmp_path / "copied.txt"
    assert main(["cp", "web:/etc/hostname", str(dest)]) == 0
    assert dest.read_bytes() == b"hello from the container\n"
    os.mkdir(tmp_path / "dir")
    assert main(["cp", "web:/etc/hostname", str(tmp_path / "dir")]) == 0
    assert (tmp_path / "dir" / "hostname").read_bytes() == b"hello from the container\n"


@pytest.fixture
def utc():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_version_and_events(daemon, capsys, utc):
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert "Client:" in out and "Server:" in out and "1.41 (minimum version 1.12)" in out
    assert main(["events"]) == 0  # no websocket on the fake: falls back to GET /events
    assert capsys.readouterr().out == (
        "2024-01-01T00:00:00.000000000Z container start " + CID +
        " (image=busybox, name=web)\n")


@pytest.fixture
def stdin_pipe(monkeypatch):
    r, w = os.pipe()
    monkeypatch.setattr("engine.cli._app.Cli.stdin_fd", r)
    yield w
    os.close(r)


def test_run_interactive_forwards_stdin_and_half_closes(daemon, capfd, stdin_pipe):
    os.write(stdin_pipe, b"line one\nline two\n")
    os.close(stdin_pipe)  # EOF: the CLI must half-close so the "container" finishes
    assert main(["run", "-i", "busybox", "cat"]) == 0
    assert capfd.readouterr().out == "line one\nline two\n"
    body = daemon.created
    assert body["OpenStdin"] and body["AttachStdin"] and body["StdinOnce"]


def test_exec_exit_code(daemon, capfd):
    assert main(["exec", "-e", "X=1", "-w", "/tmp", "web", "sh", "-c", "exit 7"]) == 7
    assert capfd.readouterr().out == "from exec\n"
    assert daemon.exec_body == {
        "User": "", "Privileged": False, "Tty": False, "AttachStdin": False,
        "AttachStdout": True, "AttachStderr": True, "Detach": False, "DetachKeys": "",
        "Env": ["X=1"], "WorkingDir": "/tmp", "Cmd": ["sh", "-c", "exit 7"]}
    start = next(b for m, p, q, b in daemon.requests if p.endswith("/exec/e1/start"))
    assert json.loads(start) == {"Detach": False, "Tty": False}


def test_run_tty_raw_output_and_resize(daemon, capfd, monkeypatch):
    monkeypatch.setattr("engine.cli._stream.terminal_size", lambda: (24, 80))
    # with a TTY the stream is raw: bytes that look like a frame header pass through
    daemon.output_frames = [b"\x01\x00\x00\x00\x00\x00\x00\x02hi\r\n"]
    assert main(["run", "-t", "busybox", "sh"]) == 0
    assert capfd.readouterr().out == "\x01\x00\x00\x00\x00\x00\x00\x02hi\r\n"
    assert daemon.created["Tty"] is True
    order = [(p.removeprefix("/v1.41"), q) for m, p, q, _ in daemon.requests]
    paths = [p for p, _ in order]
    assert paths.index(f"/containers/{CID}/start") < paths.index(f"/containers/{CID}/resize")
    assert dict(order)[f"/containers/{CID}/resize"] == {"h": "24", "w": "80"}


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["ps", "--help"]])
def test_output_into_a_closed_pipe_ends_quietly(argv):
    """`pyengine --help | head -1`: a reader that has gone away is no error (no traceback,
    status 0), as with docker. The read end is closed before the CLI writes, so every run
    meets the closed pipe."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-c", "import sys; from engine.cli import main; "
                               "sys.exit(main(sys.argv[1:]))", *argv],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert proc.stderr.decode() == ""
    assert proc.returncode == 0

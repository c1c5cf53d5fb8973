"""Docker volume plugin over a unix socket (stdlib only): volumes are directories under a root."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class Store:
    def __init__(self, root: str) -> None:
        self.root = root
        self.mounts: dict[str, set[str]] = {}
        self.calls: list[str] = []  # methods seen, for tests
        self.lock = threading.Lock()
        os.makedirs(root, exist_ok=True)

    def path(self, name: str) -> str:
        if not _NAME.match(name or ""):
            raise ValueError(f"invalid volume name {name!r}")
        return os.path.join(self.root, name)

    def handle(self, method: str, body: dict) -> dict:
        self.calls.append(method)
        if method == "Plugin.Activate":
            return {"Implements": ["VolumeDriver"]}
        if method == "VolumeDriver.Capabilities":
            return {"Capabilities": {"Scope": "local"}}
        if method == "VolumeDriver.List":
            return {"Volumes": [{"Name": n, "Mountpoint": self.path(n)} for n in sorted(os.listdir(self.root))]}
        name = body.get("Name", "")
        path = self.path(name)
        if method == "VolumeDriver.Create":
            os.makedirs(path, exist_ok=True)
            if (body.get("Opts") or {}).get("seed"):
                with open(os.path.join(path, "seed"), "w") as f:
                    f.write(body["Opts"]["seed"])
            return {}
        if not os.path.isdir(path):
            return {"Err": f"no such volume: {name}"}
        if method == "VolumeDriver.Remove":
            if self.mounts.get(name):
                return {"Err": f"volume {name} is mounted"}
            shutil.rmtree(path)
            return {}
        if method == "VolumeDriver.Mount":
            self.mounts.setdefault(name, set()).add(body.get("ID", ""))
            return {"Mountpoint": path}
        if method == "VolumeDriver.Unmount":
            self.mounts.get(name, set()).discard(body.get("ID", ""))
            return {}
        if method == "VolumeDriver.Path":
            return {"Mountpoint": path}
        if method == "VolumeDriver.Get":
            return {"Volume": {"Name": name, "Mountpoint": path,
                               "Status": {"mounts": len(self.mounts.get(name, ()))}}}
        return {"Err": f"unsupported method {method}"}


def _handler(store: Store):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
                with store.lock:
                    reply = store.handle(self.path.lstrip("/"), body)
                status = 200
            except Exception as exc:  # report, never crash the server
                reply, status = {"Err": str(exc)}, 500
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.docker.plugins.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def address_string(self) -> str:
            return "unix"

        def log_message(self, *args) -> None:
            pass

    return Handler


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    store: Store


def serve(socket_path: str, root: str) -> Server:
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    store = Store(root)
    server = Server(socket_path, _handler(store))
    server.store = store
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sample-volume-driver")
    parser.add_argument("--socket", default="/run/docker/plugins/samplevol.sock")
    parser.add_argument("--root", default="/var/lib/sample-volume-driver")
    args = parser.parse_args(argv)
    os.makedirs(os.path.dirname(args.socket), exist_ok=True)
    server = serve(args.socket, args.root)
    try:
        server.serve_forever()
    finally:
        os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

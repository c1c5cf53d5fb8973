"""Docker remote network driver over a unix socket (stdlib only; `ip` for the plumbing)."""

from __future__ import annotations

import argparse
import json
import os
import socketserver
import subprocess
import threading
from http.server import BaseHTTPRequestHandler

NETWORKS: dict[str, dict] = {}
ENDPOINTS: dict[str, dict] = {}
LOCK = threading.Lock()


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


def bridge_of(network_id: str) -> str:
    return "sn" + network_id[:8]


def handle(method: str, body: dict) -> dict:
    if method == "Plugin.Activate":
        return {"Implements": ["NetworkDriver"]}
    if method == "NetworkDriver.GetCapabilities":
        return {"Scope": "local", "ConnectivityScope": "local"}
    nid = body.get("NetworkID", "")
    if method == "NetworkDriver.CreateNetwork":
        data = (body.get("IPv4Data") or [{}])[0]
        bridge = bridge_of(nid)
        ip("link", "add", bridge, "type", "bridge")
        if data.get("Gateway"):
            ip("addr", "add", data["Gateway"], "dev", bridge)
        ip("link", "set", bridge, "up")
        NETWORKS[nid] = {"gateway": (data.get("Gateway") or "").split("/")[0]}
        return {}
    if method == "NetworkDriver.DeleteNetwork":
        ip("link", "del", bridge_of(nid), check=False)
        NETWORKS.pop(nid, None)
        return {}
    eid = body.get("EndpointID", "")
    if method == "NetworkDriver.CreateEndpoint":
        ENDPOINTS[eid] = {"network": nid, "address": (body.get("Interface") or {}).get("Address")}
        return {"Interface": {}}
    if method == "NetworkDriver.Join":
        host, peer = "sv" + eid[:8], "sc" + eid[:8]
        ip("link", "add", host, "type", "veth", "peer", "name", peer)
        ip("link", "set", host, "master", bridge_of(nid))
        ip("link", "set", host, "up")
        return {"InterfaceName": {"SrcName": peer, "DstPrefix": "eth"},
                "Gateway": NETWORKS.get(nid, {}).get("gateway", "")}
    if method == "NetworkDriver.Leave":
        ip("link", "del", "sv" + eid[:8], check=False)
        return {}
    if method == "NetworkDriver.DeleteEndpoint":
        ENDPOINTS.pop(eid, None)
        return {}
    return {"Err": f"unsupported method {method}"}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
            with LOCK:
                reply = handle(self.path.lstrip("/"), body)
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


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(socket_path: str) -> Server:
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    return Server(socket_path, Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sample-network-driver")
    parser.add_argument("--socket", default="/run/docker/plugins/sample.sock")
    args = parser.parse_args(argv)
    os.makedirs(os.path.dirname(args.socket), exist_ok=True)
    server = serve(args.socket)
    try:
        server.serve_forever()
    finally:
        os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

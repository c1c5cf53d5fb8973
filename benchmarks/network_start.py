#!/usr/bin/env python3
"""Container start latency by network mode on a private pyengined: none, default bridge,
user-defined bridge (+ embedded DNS), bridge with one published port; then checks that no
veth of the daemon is left (they vanish with their container's netns, asynchronously).

One timed run = create -> start -> wait -> remove of busybox `true` through docker-py's
APIClient. The private daemon, its containers, networks, bridges and nft table are removed on
exit. A measurement script: prints p50/p90 per mode, never asserts.

Run as root:   python3 benchmarks/network_start.py [--runs 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import docker

    from tests.conftest import DaemonHandle, _mounts_under

    root = tempfile.mkdtemp(prefix="pe-netbench-")
    handle = DaemonHandle(root)
    handle.start()
    results = {}
    try:
        handle.api("POST", "/images/bootstrap", params={"name": "busybox", "tag": "latest"})
        client = docker.APIClient(base_url=handle.host, version="1.41", timeout=60)
        client.create_network("benchnet")
        modes = {
            "none": {"network_mode": "none"},
            "bridge": {"network_mode": "bridge"},
            "user+dns": {"network_mode": "benchnet"},
            "bridge+publish": {"network_mode": "bridge", "port_bindings": "publish"},
        }
        for mode, opts in modes.items():
            times = []
            for _ in range(args.runs):
                host_opts = dict(opts)
                ports = None
                if host_opts.pop("port_bindings", None):
                    host_opts["port_bindings"] = {80: ("127.0.0.1", _free_port())}
                    ports = [80]
                t0 = time.perf_counter()
                c = client.create_container("busybox", ["true"], ports=ports,
                                            host_config=client.create_host_config(**host_opts))
                client.start(c)
                client.wait(c)
                client.remove_container(c)
                times.append(time.perf_counter() - t0)
            times.sort()
            results[mode] = {"p50_ms": statistics.median(times) * 1000,
                             "p90_ms": times[int(len(times) * 0.9) - 1] * 1000, "runs": len(times)}
            print(f"{mode:16} p50 {results[mode]['p50_ms']:7.1f} ms   p90 {results[mode]['p90_ms']:7.1f} ms")
        client.remove_network("benchnet")
        client.close()
        # veths go with their container's netns (asynchronously, in the kernel): none may stay
        from engine.networks import daemon_tag

        tag = daemon_tag(handle.data_root)
        deadline = time.monotonic() + 3
        while True:
            out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
            left = [l.split(":")[1].strip() for l in out.splitlines() if f": pv{tag}" in l or f": pc{tag}" in l]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        results["leftover_veths"] = len(left)
        print(f"leftover veths  {len(left)}")
    finally:
        handle.stop()
        for m in reversed(_mounts_under(root)):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        sys.exit(1)
    sys.exit(main())

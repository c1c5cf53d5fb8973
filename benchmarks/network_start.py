#!/usr/bin/env python3
"""Networking benchmarks: container start latency per network mode (pyengined, and the default
bridge against dockerd as a ratio), and HTTP throughput through a published port.

1. Start latency. One timed run = create -> start -> wait -> remove of busybox `true` through
   the same docker-py ``APIClient`` code (common.py's ``ApiRunner``) for both engines;
   p50/p95 over ``--runs`` runs after ``--warmup`` untimed ones.
     pyengine: none, default bridge, user-defined bridge (+ embedded DNS), bridge + one port
               published on 127.0.0.1; afterwards checks that no veth of the daemon is left.
     dockerd:  none and default bridge. dockerd's default bridge is a private bridge this script
               creates (``pebd<pid>``, a /24 the host does not route) and passes as ``--bridge``,
               with ``--iptables=false --ip6tables=false --ip-forward=false``: the host firewall
               and sysctls are never touched, so dockerd's bridge has no NAT (a bridge-attached
               `true` needs none; pyengine's default bridge does install its nft rules).
   Printed: dockerd p50 / pyengine p50 for the default bridge (and for none).

2. HTTP throughput (pyengine). busybox ``httpd`` serves a ``--size``-byte file from a container
   on the default bridge with port 80 published on 127.0.0.1. ``--requests`` sequential GETs
   (one connection each, http.client, full body read and length-checked) go to
     proxy:  127.0.0.1:<published port>   -- pyengine's userland proxy
     direct: <container bridge IP>:80      -- the kernel path. pyengine's DNAT rules only apply
             to traffic from outside the host, so from the host the container's own address is
             the fair non-proxy comparison.
   in ``--rounds`` interleaved rounds; requests/s and MB/s (10^6 bytes) of the median round and
   the ratio proxy / direct are printed.

Everything the script creates -- daemons and their children, containers, networks, bridges,
veths, nft tables, mounts, cgroups, temp dirs -- is removed on exit, also on Ctrl-C / SIGTERM /
failure (daemon, cleanup and image helpers come from common.py). Network traffic goes
only to 127.0.0.1 and to the script's own containers. A measurement script: never asserts on
numbers (exit 1 only if an engine errored).

Run as root:   python3 benchmarks/network_start.py [--runs 30] [--requests 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as cm  # noqa: E402  (daemons, cleanup, the timed loop, statistics, the report loop)

from engine.networks.manager import daemon_tag  # noqa: E402

ENGINES = ("pyengine", "dockerd")
PYENGINE_MODES = ("none", "bridge", "user+dns", "bridge+publish")
DOCKERD_MODES = ("none", "bridge")
log = cm.log


# --------------------------------------------------------------------------- small helpers

def run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def link_names() -> list[str]:
    out = run(["ip", "-o", "link"]).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def routed_v4() -> list[ipaddress.IPv4Network]:
    nets = []
    for r in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]"):
        dst = r.get("dst")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False))
    return nets


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.240.0.0/12 that overlaps nothing the host routes (incl. other daemons' bridges)."""
    taken = routed_v4()
    start = os.getpid() % 4096
    for i in range(4096):
        n = (start + i) % 4096
        cand = ipaddress.ip_network(f"10.{240 + n // 256}.{n % 256}.0/24")
        if not any(cand.overlaps(t) for t in taken):
            return cand
    raise RuntimeError("no unrouted /24 left in 10.240.0.0/12")


def latency(args, runner: cm.ApiRunner, name: str, mode: str, host_config: dict) -> dict:
    runner.host_config = host_config
    samples = cm.measure(f"{name} {mode}", runner.one, args.runs, args.warmup)
    s = cm.summarize(samples)
    log(f"{name} {mode}: p50 {s['p50_ms']:.2f} ms, p95 {s['p95_ms']:.2f} ms")
    return s


# --------------------------------------------------------------------------- HTTP throughput

def get_blob(host: str, port: int, size: int) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", "/blob")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200 or len(body) != size:
            raise RuntimeError(f"GET http://{host}:{port}/blob: {resp.status}, {len(body)} of {size} bytes")
    finally:
        conn.close()


def wait_http(host: str, port: int, size: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            get_blob(host, port, size)
            return
        except (OSError, RuntimeError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def http_bench(args, stack: contextlib.ExitStack, runner: cm.ApiRunner) -> dict:
    c = runner.client
    size = args.size
    script = (f"mkdir -p /www && head -c {size} /dev/urandom > /www/blob && "
              "exec httpd -f -p 80 -h /www")
    hc = c.create_host_config(network_mode="bridge", port_bindings={80: ("127.0.0.1",)})
    cid = c.create_container(cm.IMAGE, command=["sh", "-c", script], ports=[80], host_config=hc)["Id"]
    runner.live.add(cid)  # removed (force) by runner.cleanup on any exit
    c.start(cid)
    info = c.inspect_container(cid)
    ip = info["NetworkSettings"]["IPAddress"]
    port = int(info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    paths = {"proxy": ("127.0.0.1", port), "direct": (ip, 80)}
    log(f"http: httpd in {cid[:12]}: direct {ip}:80, published 127.0.0.1:{port}; {size} bytes/GET")
    for h, p in paths.values():
        wait_http(h, p, size)
    for _ in range(min(10, args.requests)):  # warm-up
        for h, p in paths.values():
            get_blob(h, p, size)
    rounds: dict[str, list[float]] = {k: [] for k in paths}
    for r in range(args.rounds):
        for name, (h, p) in paths.items():
            t0 = time.perf_counter()
            for _ in range(args.requests):
                get_blob(h, p, size)
            rounds[name].append(time.perf_counter() - t0)
            log(f"http {name} round {r + 1}/{args.rounds}: {args.requests / rounds[name][-1]:.1f} req/s")
    out = {}
    for name, secs in rounds.items():
        med = statistics.median(secs)
        out[name] = {"target": "%s:%d" % paths[name], "requests_per_round": args.requests,
                     "rounds": len(secs), "round_s": [round(s, 4) for s in secs],
                     "req_per_s": round(args.requests / med, 1),
                     "mb_per_s": round(args.requests * size / med / 1e6, 1)}
    out["ratio_proxy_direct"] = round(out["proxy"]["req_per_s"] / out["direct"]["req_per_s"], 3)
    out["size_bytes"] = size
    c.remove_container(cid, force=True)
    runner.live.discard(cid)
    return out


# --------------------------------------------------------------------------- engines

def leftover_links(prefixes: tuple[str, ...], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = [n for n in link_names() if n.startswith(prefixes)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def bench_pyengine(args, stack: contextlib.ExitStack, tmp: Path) -> dict:
    tag = daemon_tag(str(tmp / "data"))  # the data root start_pyengined gives it
    cgparent = f"pyengine-bench-net-{os.getpid()}"

    def host_state_cleanup():
        # pyengined's shutdown removes its bridges, veths and nft table; if it did not (crash,
        # SIGKILL), remove whatever carries this daemon's tag -- the tag is a hash of our temp path
        left = [n for n in link_names() if n.startswith((f"pe{tag}", f"pb{tag}", f"pv{tag}", f"pc{tag}"))]
        for n in left:
            run(["ip", "link", "del", n], check=False)
        table = f"pyengine_{tag}"
        if table in run(["nft", "list", "tables"], check=False).stdout.split():
            left.append(f"nft table {table}")
            run(["nft", "delete", "table", "inet", table], check=False)
        if left:
            log(f"WARNING: pyengined left host state behind (removed now): {left}")

    stack.callback(host_state_cleanup)
    host, _ = cm.start_pyengined(args, stack, tmp, cgparent)
    runner = cm.ApiRunner(host, cm.IMAGE)
    c = runner.client
    stack.callback(runner.cleanup)
    cm.bootstrap_image(c)
    net = c.create_network("peb-netbench")["Id"]
    stack.callback(cm.quiet, c.remove_network, net)  # runs after runner.cleanup (LIFO)
    modes = {
        "none": c.create_host_config(network_mode="none"),
        "bridge": c.create_host_config(network_mode="bridge"),
        "user+dns": c.create_host_config(network_mode="peb-netbench"),
        "bridge+publish": c.create_host_config(network_mode="bridge",
                                               port_bindings={80: ("127.0.0.1",)}),
    }
    out = {"version": cm.server_version(c), "modes": {}}
    for mode in PYENGINE_MODES:
        out["modes"][mode] = latency(args, runner, "pyengine", mode, modes[mode])
    # veths go with their container's netns (asynchronously, in the kernel): none may stay
    left = leftover_links((f"pv{tag}", f"pc{tag}"), 3.0)
    out["leftover_veths"] = len(left)
    log(f"pyengine: leftover veths after the latency runs: {len(left)}")
    if not args.no_http:
        out["http"] = http_bench(args, stack, runner)
    return out


def bench_dockerd(args, stack: contextlib.ExitStack, tmp: Path, rootfs: bytes) -> dict:
    cgparent = f"pyengine-bench-dockerd-{os.getpid()}"
    # dockerd's default bridge: a private one of ours (dockerd neither creates nor deletes a
    # bridge given with --bridge; it takes the bridge's address as the network's gateway)
    bridge = f"pebd{os.getpid()}"[:15]
    subnet = free_subnet()
    gateway = f"{next(subnet.hosts())}/{subnet.prefixlen}"
    if bridge in link_names():
        raise RuntimeError(f"link {bridge} already exists")
    run(["ip", "link", "add", bridge, "type", "bridge"])
    stack.callback(run, ["ip", "link", "del", bridge], False)  # after dockerd has stopped (LIFO)
    run(["ip", "addr", "add", gateway, "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])
    log(f"dockerd: private bridge {bridge} {gateway}")
    host = cm.start_private_dockerd(args, stack, tmp, cgparent,
                                    network_flags=(f"--bridge={bridge}", "--ip-forward=false"))
    runner = cm.ApiRunner(host, cm.IMAGE)
    stack.callback(runner.cleanup)
    cm.import_image(runner, rootfs, "dockerd")
    c = runner.client
    out = {"version": cm.server_version(c), "bridge": f"{bridge} {gateway}", "modes": {}}
    for mode in DOCKERD_MODES:
        out["modes"][mode] = latency(args, runner, "dockerd", mode, c.create_host_config(network_mode=mode))
    return out


# --------------------------------------------------------------------------- report

def ratios(results: dict) -> dict:
    out = {}
    pe, dk = results.get("pyengine"), results.get("dockerd")
    if pe and dk:
        for mode in DOCKERD_MODES:
            a, b = dk["modes"].get(mode), pe["modes"].get(mode)
            if a and b and b["p50_ms"] > 0:
                out[f"dockerd/pyengine {mode}"] = round(a["p50_ms"] / b["p50_ms"], 3)
    return out


def print_report(outcome: cm.Outcome, rat: dict) -> None:
    results = outcome.results
    print()
    print(f"{'engine':<10} {'network':<15} {'runs':>5} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}")
    print("-" * 62)
    outcome.print_rows(ENGINES, lambda name, res: "\n".join(
        f"{name:<10} {mode:<15} {r['runs']:>5} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} {r['mean_ms']:>9.2f}"
        for mode, r in res["modes"].items()), lambda name, why: f"{name:<10} {why}")
    for name in ENGINES:
        if name in results:
            print(f"{name}: {results[name]['version']}")
    if "pyengine" in results:
        print(f"pyengine leftover veths: {results['pyengine']['leftover_veths']}")
    print()
    for mode in DOCKERD_MODES:
        key = f"dockerd/pyengine {mode}"
        value = f"{rat[key]:.2f}x" if key in rat else "n/a"
        print(f"dockerd p50 / pyengine p50, {mode + ' network:':<16} {value}")
    h = results.get("pyengine", {}).get("http")
    if h:
        print()
        print(f"HTTP GET of {h['size_bytes']} bytes, {h['direct']['requests_per_round']} sequential "
              f"requests x {h['direct']['rounds']} rounds (median round), one connection per request:")
        for name in ("direct", "proxy"):
            r = h[name]
            print(f"  {name:<7} {r['target']:<22} {r['req_per_s']:>8.1f} req/s {r['mb_per_s']:>9.1f} MB/s")
        print(f"  proxy / direct throughput = {h['ratio_proxy_direct']:.2f}x")
    print()


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="timed runs per engine and network mode (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs per mode (default 3)")
    ap.add_argument("--requests", type=int, default=200, help="HTTP GETs per path and round (default 200)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved HTTP rounds per path (default 3)")
    ap.add_argument("--size", type=int, default=1 << 20, help="bytes of the served file (default 1 MiB)")
    ap.add_argument("--no-http", action="store_true", help="skip the HTTP throughput part")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of pyengine,dockerd")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON here")
    ap.add_argument("--busybox", default="/bin/busybox", help="static busybox for dockerd's image")
    ap.add_argument("--tmp-dir", default=None, help="parent of the temp dirs (default: $TMPDIR or /tmp)")
    ap.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for a daemon")
    ap.add_argument("--docker-storage-driver", default="overlay2")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.requests < 1 or args.rounds < 1 or args.size < 1:
        ap.error("--runs, --requests, --rounds, --size must be >= 1 and --warmup >= 0")
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    if any(e not in ENGINES for e in wanted):
        ap.error(f"--engines: choose from {','.join(ENGINES)}")
    if (status := cm.preflight()) is not None:
        return status
    with cm.temp_root("pebn-", args.tmp_dir) as top:
        outcome = cm.run_engines(wanted, lambda name, stack, tmp: (
            bench_pyengine(args, stack, tmp) if name == "pyengine"
            else bench_dockerd(args, stack, tmp, cm.busybox_rootfs_tar(args.busybox))), top)
    rat = ratios(outcome.results)
    print_report(outcome, rat)
    if args.json:
        cm.write_json(args.json, {
            "benchmark": "create+start+wait+remove busybox `true` per network mode; HTTP via published port",
            "runs": args.runs, "warmup": args.warmup, "ratios": rat}, outcome)
    return outcome.exit_status


if __name__ == "__main__":
    sys.exit(main())

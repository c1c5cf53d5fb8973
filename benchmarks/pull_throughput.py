#!/usr/bin/env python3
"""Cold-pull throughput from a loopback registry: pyengined vs dockerd vs podman (Docker API).

Builds an image of --layers random (incompressible) layers of --size MiB each (default 4 x 50 MiB
= 200 MiB) with pyengine's image store, pushes it once to a private Debian ``docker-registry``
(distribution 2.8) on a free 127.0.0.1 port with temp storage, then times cold pulls of it through
the very same docker-py ``APIClient.pull`` against each engine: a private pyengined, dockerd and
podman's API service (``podman system service``) when installed, each on its own fresh temp data
root. Every engine pulls --runs times (default 3); between runs the image is removed (rmi), and
each run checks from the registry's side (bytes the registry process wrote, /proc/PID/io) that
every layer really was downloaded again. An engine that answers a pull after rmi from a local
cache is restarted on a fresh data root for every run instead (also forced with --fresh-root).

Prints per engine p50 seconds and MiB/s (of compressed layer bytes) and the throughput ratios
pyengine/dockerd and pyengine/podman (> 1: pyengine is faster). With --concurrent K it also
times K concurrent in-process pulls with pyengine's distribution code into one store (each blob
is downloaded once). A measurement script: it never asserts on timings. Everything it creates --
registry, daemons and their children, mounts, cgroups, temp dirs -- is removed on exit, also on
Ctrl-C / SIGTERM / failure. The daemon helpers come from common.py.

Run as root:   python3 benchmarks/pull_throughput.py [--runs 3] [--layers 4] [--size 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import common as cm  # noqa: E402  (daemons, cleanup, statistics, the report loop)

ENGINES = ("pyengine", "dockerd", "podman")
REPO, TAG = "bench/pull", "1"
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json,"
                  "application/vnd.oci.image.manifest.v1+json")
RATIOS = {"pyengine/dockerd": ("pyengine", "dockerd"), "pyengine/podman": ("pyengine", "podman")}
MIB = 1 << 20
log = cm.log


# --------------------------------------------------------------------------- the image

def layer_tar(size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(f"blob-{os.urandom(4).hex()}.bin")
        ti.size = size
        tf.addfile(ti, io.BytesIO(os.urandom(size)))
    return buf.getvalue()


def build_and_push(args, store_dir: Path, registry: str) -> dict:
    """Build the image in a throw-away pyengine ImageStore and push it. Returns push timing."""
    import trio

    from engine.images import ImageStore

    async def run() -> dict:
        src = ImageStore(str(store_dir))
        parent, diffs = None, []
        for i in range(args.layers):
            diff, parent = src._commit_layer(io.BytesIO(layer_tar(args.size * MIB)), parent, False)
            diffs.append(diff)
            log(f"built layer {i + 1}/{args.layers}")
        src.create_image({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                          "rootfs": {"type": "layers", "diff_ids": diffs}}, f"{registry}/{REPO}:{TAG}")

        async def sink(_msg):
            pass

        plan = src.distribution.resolve_push(f"{registry}/{REPO}", TAG)
        t0 = time.perf_counter()
        await src.distribution.push(plan, None, sink)
        return {"push_s": time.perf_counter() - t0}

    return trio.run(run)


def registry_manifest(registry: str) -> dict:
    req = urllib.request.Request(f"http://{registry}/v2/{REPO}/manifests/{TAG}",
                                 headers={"Accept": MANIFEST_TYPES})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def library_pull(args, store_dir: Path, ref: str) -> dict:
    """K concurrent pulls with pyengine's distribution code, in process, into one store."""
    import trio

    from engine.images import ImageStore

    async def run() -> dict:
        dst = ImageStore(str(store_dir))

        async def sink(_msg):
            pass

        async def pull():
            p = await dst.distribution.resolve_pull(ref, None)
            await dst.distribution.pull(p, sink)

        t0 = time.perf_counter()
        async with trio.open_nursery() as n:
            for _ in range(args.concurrent):
                n.start_soon(pull)
        return {"seconds": time.perf_counter() - t0,
                "blobs_downloaded": dst.distribution.statistics["blobs_downloaded"]}

    return trio.run(run)


# --------------------------------------------------------------------------- registry

def start_registry():
    import registry_util

    if not os.path.exists(registry_util.REGISTRY_BIN):
        raise RuntimeError(f"{registry_util.REGISTRY_BIN} not found: apt-get install docker-registry")
    return registry_util.start_registry()


def registry_wrote(reg) -> int:
    """Bytes the registry process has written so far (sockets included; sendfile counts too)."""
    with open(f"/proc/{reg.process.pid}/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/PID/io")


# --------------------------------------------------------------------------- engines
# Each starter starts a private daemon on fresh directories under tmp, registers its cleanup on
# the stack and returns (host, note).

def _env() -> dict:
    env = dict(os.environ)
    for k in ("DOCKER_HOST", "CONTAINER_HOST", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def start_pyengine(args, stack: contextlib.ExitStack, tmp: Path, registry: str) -> tuple[str, str]:
    host, _ = cm.start_pyengined(args, stack, tmp, f"pyengine-bench-pull-{os.getpid()}", env=_env())
    return host, ""


def start_dockerd(args, stack: contextlib.ExitStack, tmp: Path, registry: str) -> tuple[str, str]:
    # No --insecure-registry: dockerd always counts 127.0.0.0/8 as insecure (plain http).
    host = cm.start_private_dockerd(args, stack, tmp, f"pyengine-bench-pull-dockerd-{os.getpid()}",
                                    env=_env())
    return host, f"storage {args.docker_storage_driver}"


def start_podman(args, stack: contextlib.ExitStack, tmp: Path, registry: str) -> tuple[str, str]:
    # Plain http to the loopback registry: containers/image wants it listed as insecure.
    regconf = tmp / "registries.conf"
    regconf.write_text(f'unqualified-search-registries = []\n\n[[registry]]\nlocation = "{registry}"\n'
                       "insecure = true\n")
    host, _ = cm.start_podman_service(args, stack, tmp, env={**_env(), "CONTAINERS_REGISTRIES_CONF": str(regconf)})
    return host, f"storage {args.podman_storage_driver}"


STARTERS = {"pyengine": start_pyengine, "dockerd": start_dockerd, "podman": start_podman}


# --------------------------------------------------------------------------- the timed pull

class WarmCache(Exception):
    """The engine did not download every layer again after rmi."""


def image_present(client, image: str) -> bool:
    try:
        client.inspect_image(image)
        return True
    except Exception as e:  # noqa: BLE001
        if getattr(getattr(e, "response", None), "status_code", None) == 404:
            return False
        raise


def one_pull(client, reg, registry: str, blob_bytes: int) -> dict:
    """One cold pull (the image must be absent); returns seconds + what the registry sent."""
    image = f"{registry}/{REPO}:{TAG}"
    if image_present(client, image):
        raise RuntimeError(f"{image} present before a cold pull")
    os.sync()  # earlier runs' dirty pages are not flushed on this run's time
    sent0 = registry_wrote(reg)
    statuses: dict[str, int] = {}
    t0 = time.perf_counter()
    for msg in client.pull(f"{registry}/{REPO}", tag=TAG, stream=True, decode=True):
        if msg.get("error") or msg.get("errorDetail"):
            raise RuntimeError(f"pull failed: {msg.get('error') or msg.get('errorDetail')}")
        st = msg.get("status")
        if st in ("Already exists", "Pull complete", "Download complete"):
            statuses[st] = statuses.get(st, 0) + 1
    seconds = time.perf_counter() - t0
    sent = registry_wrote(reg) - sent0
    if not image_present(client, image):
        raise RuntimeError(f"{image} absent after the pull (stream: {statuses})")
    return {"seconds": seconds, "registry_bytes": sent, "statuses": statuses,
            "cold": sent >= blob_bytes and not statuses.get("Already exists")}


def remove_image(client, registry: str) -> None:
    client.remove_image(f"{registry}/{REPO}:{TAG}", force=True)


def bench_engine(name: str, args, tmp: Path, reg, registry: str, blob_bytes: int) -> dict:
    """N cold pulls: one daemon with rmi between pulls, or (--fresh-root, or when rmi leaves a
    cache behind) a new daemon on a new data root for every pull."""
    starter = STARTERS[name]
    fresh = args.fresh_root
    samples: list[dict] = []
    version = note = ""
    with contextlib.ExitStack() as outer:
        client = None
        if not fresh:
            d = tmp / "d"
            d.mkdir()
            outer.callback(cm.rmtree, d)
            host, note = starter(args, outer, d, registry)
            client = cm.api_client(host)
            client.timeout = args.pull_timeout
            outer.callback(client.close)
            version = cm.server_version(client)
            for i in range(args.runs):
                s = one_pull(client, reg, registry, blob_bytes)
                if not s["cold"]:
                    log(f"{name}: run {i + 1} was not cold after rmi (registry sent "
                        f"{s['registry_bytes'] / MIB:.1f} of {blob_bytes / MIB:.1f} MiB, stream "
                        f"{s['statuses']}); switching to a fresh data root per run")
                    fresh = True
                    samples.clear()
                    break
                samples.append(s)
                log(f"{name}: run {i + 1}/{args.runs}: {s['seconds']:.2f}s "
                    f"{blob_bytes / MIB / s['seconds']:.1f} MiB/s (registry sent {s['registry_bytes'] / MIB:.1f} MiB)")
                remove_image(client, registry)
    if fresh:
        for i in range(args.runs):
            d = tmp / f"r{i}"
            d.mkdir()
            with contextlib.ExitStack() as stack:
                stack.callback(cm.rmtree, d)
                host, note = starter(args, stack, d, registry)
                client = cm.api_client(host)
                client.timeout = args.pull_timeout
                stack.callback(client.close)
                version = cm.server_version(client)
                s = one_pull(client, reg, registry, blob_bytes)
                if not s["cold"]:
                    raise WarmCache(f"fresh data root, yet the registry sent only {s['registry_bytes']} "
                                    f"of {blob_bytes} bytes ({s['statuses']})")
                samples.append(s)
                log(f"{name}: run {i + 1}/{args.runs} (fresh root): {s['seconds']:.2f}s "
                    f"{blob_bytes / MIB / s['seconds']:.1f} MiB/s")
    secs = [s["seconds"] for s in samples]
    p50 = cm.percentile(secs, 50)
    return {
        "version": version,
        "note": note,
        "mode": "fresh data root per run" if fresh else "rmi between runs",
        "runs": len(secs),
        "p50_s": round(p50, 3),
        "min_s": round(min(secs), 3),
        "max_s": round(max(secs), 3),
        "mib_per_s_p50": round(blob_bytes / MIB / p50, 1),
        "samples_s": [round(x, 3) for x in secs],
        "registry_mib_per_run": [round(s["registry_bytes"] / MIB, 1) for s in samples],
    }


# --------------------------------------------------------------------------- report

def ratios(results: dict) -> dict:
    out = {}
    for name, (a, b) in RATIOS.items():
        if a in results and b in results:
            out[name] = round(results[a]["mib_per_s_p50"] / results[b]["mib_per_s_p50"], 3)
    return out


def print_report(image: dict, outcome: cm.Outcome, rat: dict, lib: dict | None) -> None:
    print()
    print(f"image: {image['layers']} layers x {image['layer_mib']} MiB random data; "
          f"{image['blob_mib']:.1f} MiB of compressed layers in the registry; "
          f"push (pyengine, incl. gzip) {image['push_s']:.2f}s")
    print()
    print(f"{'engine':<10} {'runs':>4} {'p50 s':>8} {'MiB/s':>8} {'min s':>8} {'max s':>8}  mode; version")
    print("-" * 96)
    outcome.print_rows(
        ENGINES, lambda name, r: f"{name:<10} {r['runs']:>4} {r['p50_s']:>8.2f} {r['mib_per_s_p50']:>8.1f} "
                                 f"{r['min_s']:>8.2f} {r['max_s']:>8.2f}  {r['mode']}; {r['version']}"
                                 f"{', ' + r['note'] if r['note'] else ''}",
        lambda name, why: f"{name:<10} {'-':>4} {'-':>8} {'-':>8} {'-':>8} {'-':>8}  {why}")
    print()
    for name in RATIOS:
        if name in rat:
            print(f"{name} throughput (p50) = {rat[name]:.2f}x   (> 1: pyengine pulls faster)")
        else:
            print(f"{name} throughput (p50) = n/a")
    if lib:
        print()
        print(f"in-process pyengine pull x{lib['concurrent']} into one store: {lib['seconds']:.2f}s "
              f"{image['blob_mib'] / lib['seconds']:.1f} MiB/s, blobs downloaded: {lib['blobs_downloaded']}")
    print()


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="cold pulls per engine (default 3)")
    ap.add_argument("--layers", type=int, default=4, help="layers in the image (default 4)")
    ap.add_argument("--size", type=int, default=50, help="MiB of random data per layer (default 50)")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help=f"comma-separated subset of {','.join(ENGINES)} (default: all installed)")
    ap.add_argument("--fresh-root", action="store_true",
                    help="start each engine on a new data root for every pull instead of rmi between pulls")
    ap.add_argument("--concurrent", type=int, default=0, metavar="K",
                    help="also time K concurrent in-process pulls with pyengine's distribution code (default off)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON here")
    ap.add_argument("--tmp-dir", default=None, help="parent of the temp dirs (default: $TMPDIR or /tmp)")
    ap.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for a daemon")
    ap.add_argument("--pull-timeout", type=float, default=600.0, help="docker-py read timeout for a pull")
    ap.add_argument("--docker-storage-driver", default="overlay2")
    ap.add_argument("--podman-storage-driver", default="overlay")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.layers < 1 or args.size < 1 or args.concurrent < 0:
        ap.error("--runs, --layers and --size must be >= 1, --concurrent >= 0")
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in wanted if e not in ENGINES]
    if bad:
        ap.error(f"unknown engine(s): {', '.join(bad)}")
    if (status := cm.preflight()) is not None:
        return status
    outcome = cm.Outcome()
    image: dict = {}
    lib = None
    try:
        with cm.temp_root("pept-", args.tmp_dir) as top, contextlib.ExitStack() as top_stack:
            reg = start_registry()
            top_stack.callback(reg.stop)
            registry = reg.host
            log(f"registry: docker-registry on {registry} (storage {reg.root})")
            build = top / "build"
            push = build_and_push(args, build, registry)
            cm.rmtree(build)
            manifest = registry_manifest(registry)
            blob_bytes = sum(int(layer["size"]) for layer in manifest["layers"])
            image = {"layers": len(manifest["layers"]), "layer_mib": args.size,
                     "blob_bytes": blob_bytes, "blob_mib": blob_bytes / MIB, "push_s": push["push_s"],
                     "manifest_media_type": manifest.get("mediaType")}
            log(f"pushed {registry}/{REPO}:{TAG}: {image['layers']} layers, {image['blob_mib']:.1f} MiB "
                f"compressed, push {push['push_s']:.2f}s")
            # podman is only compared with: its failure is reported as skipped
            cm.run_engines(wanted, lambda name, stack, tmp: bench_engine(name, args, tmp, reg, registry, blob_bytes),
                           top, outcome, optional=("podman",))
            if args.concurrent and not outcome.interrupted:
                d = top / "lib"
                try:
                    lib = {"concurrent": args.concurrent,
                           **library_pull(args, d, f"{registry}/{REPO}:{TAG}")}
                finally:
                    cm.rmtree(d)
    except KeyboardInterrupt:
        outcome.interrupted = True
        log("interrupted; cleaned up")
    if not image:
        return outcome.exit_status or 1

    rat = ratios(outcome.results)
    print_report(image, outcome, rat, lib)
    if args.json:
        cm.write_json(args.json, {"benchmark": "cold docker-py APIClient.pull from a loopback docker-registry",
                                  "image": image, "runs": args.runs, "ratios_throughput": rat,
                                  "in_process": lib}, outcome)
    return outcome.exit_status


if __name__ == "__main__":
    sys.exit(main())

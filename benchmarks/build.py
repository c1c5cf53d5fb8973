#!/usr/bin/env python3
"""Image build benchmark: a cold and a fully cached build of the same small multi-stage
Dockerfile, pyengine vs dockerd's classic builder, printed as ratios.

Both daemons are private (temp roots and sockets; dockerd with --bridge=none and no host
firewall changes: common.py); the base image is made locally (pyengine:
POST /images/bootstrap; dockerd: `docker import` of a tar of /bin/busybox — no registry).
Every build goes through the same docker-py `APIClient.build` call with the same context;
RUN steps use `--network none` on both engines (dockerd runs without a bridge here).

    cold    build with nocache=1 (every step executed: RUN containers, COPY, commits)
    cached  the same build again (every step a cache hit)

Goals: cold not slower than dockerd (dockerd/pyengine ≥ 1), cached ≥ 5× faster. It is a
measurement: it never fails on timings (exit 1 only if an engine errored)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as cm  # noqa: E402  (daemons, cleanup, the report loop)

DOCKERFILE = """\
FROM busybox AS build
ARG VERSION=1.0
WORKDIR /src
COPY src/ ./
RUN cat *.txt > /bundle && sha256sum /bundle > /bundle.sha
RUN mkdir -p /out && cp /bundle /bundle.sha /out/ && echo $VERSION > /out/version
FROM busybox
ENV APP=/app
LABEL org.example.bench=build
COPY --from=build /out/ /app/
RUN ls -l /app > /app/index
WORKDIR /app
CMD ["cat", "/app/index"]
"""
TAG = "pe-bench-build:latest"


def make_context(root: Path, files: int, size: int) -> None:
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / ".dockerignore").write_text("*.tmp\n")
    for i in range(files):
        (root / "src" / f"part{i:03d}.txt").write_bytes(os.urandom(size // 2).hex().encode())
    (root / "src" / "ignored.tmp").write_text("never sent\n")


def one_build(client, context: Path, nocache: bool) -> float:
    start = time.perf_counter()
    stream = client.build(path=str(context), tag=TAG, nocache=nocache, rm=True, forcerm=True,
                          network_mode="none", decode=True)
    text = []
    for chunk in stream:
        if "error" in chunk or "errorDetail" in chunk:
            raise RuntimeError(f"build failed: {chunk}")
        text.append(chunk.get("stream", ""))
    elapsed = time.perf_counter() - start
    out = "".join(text)
    if "Successfully built" not in out:
        raise RuntimeError(f"build did not finish: {out[-500:]}")
    if not nocache and out.count("Using cache") < 10:
        raise RuntimeError(f"expected a fully cached build:\n{out}")
    return elapsed


def bench(name: str, client, context: Path, runs: int) -> dict:
    one_build(client, context, nocache=True)  # warm-up: base image layers, page cache
    cold = [one_build(client, context, nocache=True) for _ in range(runs)]
    cached = [one_build(client, context, nocache=False) for _ in range(runs)]
    result = {"cold_s": statistics.median(cold), "cached_s": statistics.median(cached),
              "cold_all": cold, "cached_all": cached}
    cm.log(f"{name}: cold median {result['cold_s'] * 1000:.0f} ms, cached median {result['cached_s'] * 1000:.0f} ms")
    return result


def run_engine(name: str, args, stack: contextlib.ExitStack, tmp: Path, context: Path, rootfs: bytes) -> dict:
    import docker

    if name == "pyengine":
        host, _ = cm.start_pyengined(args, stack, tmp, f"pyengine-bench-build-{os.getpid()}")
    else:
        host = cm.start_private_dockerd(args, stack, tmp, f"pyengine-bench-build-dockerd-{os.getpid()}")
    client = docker.APIClient(base_url=host, version=cm.API_VERSION, timeout=600)
    stack.callback(client.close)
    if name == "pyengine":
        cm.bootstrap_image(client)
    else:
        client.import_image_from_data(rootfs, repository="busybox", tag="latest")

    def cleanup():
        for c in client.containers(all=True):
            with contextlib.suppress(Exception):
                client.remove_container(c["Id"], force=True)

    stack.callback(cleanup)
    result = bench(name, client, context, args.runs)
    result["version"] = cm.server_version(client)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed builds of each kind per engine (default 3)")
    ap.add_argument("--files", type=int, default=20, help="source files in the context (default 20)")
    ap.add_argument("--size", type=int, default=16384, help="bytes per source file (default 16384)")
    ap.add_argument("--engines", default="pyengine,dockerd")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON here")
    ap.add_argument("--tmp-dir", default=None)
    ap.add_argument("--start-timeout", type=float, default=60.0)
    ap.add_argument("--docker-storage-driver", default="overlay2")
    args = ap.parse_args(argv)
    if (status := cm.preflight()) is not None:
        return status
    rootfs = cm.busybox_rootfs_tar(shutil.which("busybox") or "/bin/busybox")
    with cm.temp_root("pe-bench-build-", args.tmp_dir) as top:
        context = top / "ctx"
        make_context(context, args.files, args.size)
        outcome = cm.run_engines(args.engines.split(","), lambda name, stack, tmp: run_engine(
            name, args, stack, tmp, context, rootfs), top)
    results, ratios = outcome.results, {}
    print(f"\nbuild of a {DOCKERFILE.count(chr(10))}-line 2-stage Dockerfile, {args.files} files x {args.size} B, "
          f"median of {args.runs}")
    outcome.print_rows(args.engines.split(","),
                       lambda name, r: f"  {name:9s} {r['version']:14s} cold {r['cold_s'] * 1000:8.0f} ms   "
                                       f"cached {r['cached_s'] * 1000:8.0f} ms",
                       lambda name, why: f"  {name:9s} {why}")
    if "pyengine" in results and "dockerd" in results:
        pe, dk = results["pyengine"], results["dockerd"]
        cold, cached = dk["cold_s"] / pe["cold_s"], dk["cached_s"] / pe["cached_s"]
        print(f"  dockerd/pyengine cold   {cold:6.2f}x  (goal >= 1: {'met' if cold >= 1 else 'NOT met'})")
        print(f"  dockerd/pyengine cached {cached:6.2f}x  (goal >= 5: {'met' if cached >= 5 else 'NOT met'})")
        ratios = {"cold": cold, "cached": cached}
    if args.json:
        cm.write_json(args.json, {"benchmark": "cold and cached docker-py build", "runs": args.runs,
                                  "ratios": ratios}, outcome)
    return outcome.exit_status


if __name__ == "__main__":
    sys.exit(main())

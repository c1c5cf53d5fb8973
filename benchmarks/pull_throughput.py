#!/usr/bin/env python3
"""Pull/push throughput of pyengine's distribution code against a private docker-registry.

Builds an image of N random (incompressible) layers of SIZE MiB in a temp image store, pushes
it to a private Debian docker-registry on a free loopback port, then pulls it into a fresh
store (and, with --concurrent K, K pulls at once into one store: each blob is downloaded
once). Prints MiB/s for push and pull. A measurement script, it never asserts on timings.

    python3 benchmarks/pull_throughput.py [--layers 4] [--size 16] [--concurrent 2]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time

import trio

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def layer(size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = os.urandom(size)
        ti = tarfile.TarInfo(f"blob-{os.urandom(4).hex()}.bin")
        ti.size = size
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


async def main(args) -> None:
    from registry_util import start_registry

    from engine.images import ImageStore

    reg = start_registry()
    tmp = tempfile.mkdtemp(prefix="pe-bench-")
    try:
        src = ImageStore(os.path.join(tmp, "src"))
        parent, diffs = None, []
        for _ in range(args.layers):
            diff, parent = src._commit_layer(io.BytesIO(layer(args.size << 20)), parent, False)
            diffs.append(diff)
        ref = f"{reg.host}/bench/img:1"
        src.create_image({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": diffs}}, ref)
        total = args.layers * args.size

        async def sink(_msg):
            pass

        plan = src.distribution.resolve_push(f"{reg.host}/bench/img", "1")
        t0 = time.perf_counter()
        await src.distribution.push(plan, None, sink)
        push_s = time.perf_counter() - t0

        dst = ImageStore(os.path.join(tmp, "dst"))

        async def pull():
            p = await dst.distribution.resolve_pull(ref, None)
            await dst.distribution.pull(p, sink)

        t0 = time.perf_counter()
        async with trio.open_nursery() as n:
            for _ in range(args.concurrent):
                n.start_soon(pull)
        pull_s = time.perf_counter() - t0
        print(f"image: {args.layers} layers x {args.size} MiB = {total} MiB")
        print(f"push (incl. gzip): {push_s:6.2f}s  {total / push_s:7.1f} MiB/s")
        print(f"pull x{args.concurrent} (incl. unpack): {pull_s:6.2f}s  {total / pull_s:7.1f} MiB/s"
              f"  blobs downloaded: {dst.distribution.statistics['blobs_downloaded']}")
    finally:
        reg.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--size", type=int, default=16, help="MiB per layer")
    ap.add_argument("--concurrent", type=int, default=2)
    trio.run(main, ap.parse_args())

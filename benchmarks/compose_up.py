#!/usr/bin/env python3
"""Compose project start/stop: `pyengine compose` on pyengined vs docker-compose 1.29 on dockerd.

One round = `up -d` then `down` of a 10-service project whose dependencies form a chain of 3
levels (3 base services ← 4 middle ones ← 3 front ones), on one project network, each service
a busybox idling in a shell that exits at once on SIGTERM (so `down` measures the tools, not
a stop timeout). Both tools run as the user would run them (a fresh CLI process each time),
timed with wall clock; the image is the same static busybox rootfs imported into each daemon
(no registry). Each daemon is private (temp data root and socket; dockerd never touches the
host firewall: common.py's start_private_dockerd); everything is removed on exit.

This is a measurement, not a test: it prints the medians and the ratio docker-compose /
pyengine compose (goal ≥ 10×) and never fails on timings. Next to the wall clock it prints
each tool's own CPU time per command (user+sys of the CLI process), which a loaded shared
machine inflates far less than wall clock.

Run as root:   python3 benchmarks/compose_up.py [--rounds 5] [--engines pyengine,dockerd]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as cm  # noqa: E402  (daemons, cleanup, image import, the report loop)

log = cm.log
PROJECT = "pebench"
IDLE = "trap 'exit 0' TERM; sleep 1000 & wait"
LEVELS = [["db", "cache", "queue"], ["api", "auth", "worker", "search"],
          ["web", "admin", "cron"]]


def compose_file() -> str:
    lines = ["services:"]
    for depth, level in enumerate(LEVELS):
        for name in level:
            lines += [f"  {name}:", f"    image: {cm.IMAGE}",
                      f"    command: [\"sh\", \"-c\", \"{IDLE}\"]"]
            if depth:
                lines.append(f"    depends_on: [{', '.join(LEVELS[depth - 1])}]")
    return "\n".join(lines) + "\n"


def rounds(name: str, cmd: list[str], env: dict, workdir: Path, n: int) -> dict:
    # Installed Python packages have bytecode (Debian compiles docker-compose's at install);
    # let ours be cached too instead of recompiling every module on every command.
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}

    cpu: dict[str, list[float]] = {"up": [], "down": []}

    def run(*extra: str) -> float:
        """Wall seconds of one command; its CPU seconds (user+sys of the tool's process, what
        a loaded machine does not inflate much) go to cpu[extra[0]]."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run(cmd + list(extra), cwd=workdir, env=env, capture_output=True,
                             timeout=600)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(extra)} failed:\n{res.stderr.decode()[-2000:]}")
        cpu.setdefault(extra[0], []).append(after.ru_utime - before.ru_utime +
                                            after.ru_stime - before.ru_stime)
        return wall

    ups, downs = [], []
    run("down", "-t", "10")  # nothing left from a previous attempt
    for i in range(n):
        ups.append(run("up", "-d"))
        downs.append(run("down"))
        log(f"{name}: round {i + 1}/{n}: up {ups[-1]:.2f} s, down {downs[-1]:.2f} s")
    totals = [u + d for u, d in zip(ups, downs)]
    return {"up": statistics.median(ups), "down": statistics.median(downs),
            "total": statistics.median(totals),
            "cpu_up": statistics.median(cpu["up"]), "cpu_down": statistics.median(cpu["down"])}


def bench_pyengine(args, stack, tmp: Path, rootfs: bytes, workdir: Path) -> dict:
    host, _ = cm.start_pyengined(args, stack, tmp)
    runner = cm.ApiRunner(host, cm.IMAGE)
    stack.callback(runner.cleanup)
    cm.import_image(runner, rootfs, "pyengine")
    env = {**os.environ, "PYTHONPATH": str(cm.REPO_ROOT), "PYENGINE_HOST": host,
           "COMPOSE_PROJECT_NAME": PROJECT}
    env.pop("DOCKER_HOST", None)
    cmd = [sys.executable, "-m", "engine.cli", "compose", "--progress", "plain"]
    stack.callback(lambda: subprocess.run(cmd + ["down", "-t", "1"], cwd=workdir, env=env,
                                          capture_output=True))
    return rounds("pyengine compose", cmd, env, workdir, args.rounds)


def bench_dockerd(args, stack, tmp: Path, rootfs: bytes, workdir: Path) -> dict:
    compose = shutil.which("docker-compose")
    if not compose:
        raise cm.Skip("docker-compose not installed")
    host = cm.start_private_dockerd(args, stack, tmp, f"pyengine-bench-compose-{os.getpid()}")
    runner = cm.ApiRunner(host, cm.IMAGE)
    stack.callback(runner.cleanup)
    cm.import_image(runner, rootfs, "dockerd")
    env = {**os.environ, "DOCKER_HOST": host, "COMPOSE_PROJECT_NAME": PROJECT}
    cmd = [compose]
    stack.callback(lambda: subprocess.run(cmd + ["down", "-t", "1"], cwd=workdir, env=env,
                                          capture_output=True))
    return rounds("docker-compose 1.29", cmd, env, workdir, args.rounds)


BENCHES = {"pyengine": bench_pyengine, "dockerd": bench_dockerd}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="up+down rounds per tool (default 5)")
    ap.add_argument("--engines", default="pyengine,dockerd")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--start-timeout", type=float, default=60.0)
    ap.add_argument("--docker-storage-driver", default="overlay2")
    args = ap.parse_args()
    if (status := cm.preflight()) is not None:
        return status
    rootfs = cm.busybox_rootfs_tar(args.busybox)

    def bench(name: str, stack: contextlib.ExitStack, tmp: Path) -> dict:
        workdir = tmp / "project"
        workdir.mkdir()
        (workdir / "compose.yaml").write_text(compose_file())
        return BENCHES[name](args, stack, tmp, rootfs, workdir)

    with cm.temp_root("pe-compose-bench-") as top:
        outcome = cm.run_engines(args.engines.split(","), bench, top)
    results = outcome.results
    print(f"\n10 services, 3 dependency levels; median of {args.rounds} rounds (wall clock, "
          "fresh CLI process per command)")
    print(f"{'tool':<34}{'up -d':>10}{'down':>10}{'total':>10}   CLI CPU up/down")
    labels = {"pyengine": "pyengine compose / pyengined", "dockerd": "docker-compose 1.29 / dockerd"}
    outcome.print_rows(args.engines.split(","),
                       lambda name, r: f"{labels[name]:<34}{r['up']:>9.2f}s{r['down']:>9.2f}s"
                                       f"{r['total']:>9.2f}s   {r['cpu_up'] * 1000:.0f}/"
                                       f"{r['cpu_down'] * 1000:.0f} ms",
                       lambda name, why: f"{labels[name]:<34}{why}")
    if "pyengine" in results and "dockerd" in results:
        p, d = results["pyengine"], results["dockerd"]
        ratio = d["total"] / p["total"]
        print(f"\nratio docker-compose / pyengine compose: up {d['up'] / p['up']:.1f}×, "
              f"down {d['down'] / p['down']:.1f}×, total {ratio:.1f}× "
              f"(goal ≥ 10×: {'met' if ratio >= 10 else 'NOT met'})")
    return outcome.exit_status


if __name__ == "__main__":
    sys.exit(main())

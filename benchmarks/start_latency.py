#!/usr/bin/env python3
"""Container start latency: pyengined vs dockerd vs podman (Docker-compatible API) vs bare runc.

Also, for the API engines: a burst (``--burst`` containers, each create->start->wait->remove,
from ``--burst-threads`` client threads: containers/s) and memory: the PSS of the engine's own
processes (pyengined + pe-spawner; dockerd + containerd + shims; podman service + conmons) idle
and with ``--sleepers`` running ``sleep`` containers, and the system memory (MemTotal -
MemAvailable) each extra running container costs. Printed with ratios against the goals
(burst >= 20x dockerd's containers/s; <= 0.3 MiB system memory per extra running container).

One timed run = create -> start -> wait -> remove of busybox `true` with `--network none`, done
through the very same docker-py ``docker.APIClient`` code path for every API engine. For bare runc
one run is ``runc run -b BUNDLE ID`` (create + start + wait + delete in one command).

Each engine gets a private instance on temporary directories (pyengined may instead be a running
one, ``--pyengine-host unix:///...``); engines that are not installed are skipped. Everything the
script creates -- containers, daemons and their child processes, mounts, cgroups, temp dirs -- is
removed on exit, also on Ctrl-C / SIGTERM / failure (the daemons and their cleanup: common.py).

This is a measurement script, not a test: it never asserts on timings. It prints a table and the
ratios against the targets (pyengine p50 / runc p50 <= 1.5x, dockerd p50 / pyengine p50 >= 10x,
podman p50 / pyengine p50 >= 10x) and, with ``--json FILE``, writes the numbers.

Run as root:   python3 benchmarks/start_latency.py [--runs 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    IMAGE, PODMAN_CGROUPS, REPO_ROOT, ApiRunner, Outcome, Skip, bootstrap_image, busybox_rootfs_tar,
    cgroup_dirs, import_image, kill_pids_referencing, log, measure, pids_referencing, preflight, quiet,
    rmdir_cgroup_tree, run_engines, server_version, start_podman_service, start_private_dockerd,
    start_pyengined, summarize, temp_root, unmount_all_under, write_json,
)

ENGINES = ("pyengine", "dockerd", "podman", "runc")
TARGETS = {
    # ratio name: (numerator engine, denominator engine, comparison, target)
    "pyengine/runc": ("pyengine", "runc", "<=", 1.5),
    "dockerd/pyengine": ("dockerd", "pyengine", ">=", 10.0),
    "podman/pyengine": ("podman", "pyengine", ">=", 10.0),
}
BURST_TARGET = 20.0  # pyengine containers/s / dockerd containers/s
MIB_PER_CONTAINER_TARGET = 0.3


# --------------------------------------------------------------------------- burst and memory

def burst(host: str, image: str, count: int, threads: int) -> dict:
    """`count` create->start->wait->remove from `threads` clients at once: containers/s."""
    import concurrent.futures

    runners = [ApiRunner(host, image) for _ in range(threads)]
    todo = iter(range(count))
    lock = __import__("threading").Lock()

    def worker(runner: ApiRunner) -> int:
        done = 0
        while True:
            with lock:
                if next(todo, None) is None:
                    return done
            runner.one()
            done += 1

    try:
        t0, cpu0 = time.perf_counter(), time.process_time()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(worker, runners))
        elapsed, client_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        for r in runners:
            r.cleanup()
    # The clients' own CPU (this process: docker-py) shares the machine with the engine: the
    # same per container for every engine, a larger part of a fast engine's burst.
    return {"containers": total, "threads": threads, "seconds": round(elapsed, 3),
            "per_second": round(total / elapsed, 2),
            "client_cpu_ms_per_container": round(client_cpu * 1000 / max(total, 1), 2)}


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each live process (its exited children not included)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def pss_mib(pids: list[int]) -> float:
    """Proportional set size of these processes (shared pages split between users)."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024.0


def system_used_mib() -> float:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        info[key] = int(value.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) / 1024.0


def cgroup_memory_mib(parents: list[str]) -> float:
    """Memory charged to the containers' cgroups (their processes, page cache, kernel memory)
    under these cgroup parents: a view of what a container costs that other activity on a
    shared machine does not disturb, unlike MemAvailable."""
    total = 0
    for name in parents:
        for d in cgroup_dirs(name):
            for f in ("memory.usage_in_bytes", "memory.current"):
                with contextlib.suppress(OSError, ValueError):
                    total += int((d / f).read_text())
    return total / (1 << 20)


def memory(host: str, image: str, engine_pids, sleepers: int, cgroup_parents: list[str]) -> dict:
    """Engine PSS idle and with `sleepers` running `sleep` containers, and the memory per
    extra running container: engine PSS + the containers' cgroups, and the system's
    (MemTotal - MemAvailable). `engine_pids()` lists the engine's own processes."""
    runner = ApiRunner(host, image)
    c = runner.client
    try:
        idle = pss_mib(engine_pids())
        charged_before = cgroup_memory_mib(cgroup_parents)
        used_before = system_used_mib()
        for _ in range(sleepers):
            cid = c.create_container(image, command=["sleep", "3600"], host_config=runner.host_config)["Id"]
            runner.live.add(cid)
            c.start(cid)
        time.sleep(2)  # let lazily allocated state settle before reading
        busy = pss_mib(engine_pids())
        used_after = system_used_mib()
        charged_after = cgroup_memory_mib(cgroup_parents)
    finally:
        for cid in list(runner.live):
            with contextlib.suppress(Exception):
                c.remove_container(cid, force=True)
                runner.live.discard(cid)
        runner.cleanup()
    return {"engine_idle_mib": round(idle, 1), "engine_busy_mib": round(busy, 1), "sleepers": sleepers,
            "engine_mib_per_container": round((busy - idle) / sleepers, 3),
            "mib_per_container": round((busy - idle + charged_after - charged_before) / sleepers, 3),
            "system_mib_per_container": round((used_after - used_before) / sleepers, 3)}


def extras(args, name: str, host: str, tmp: Path, extra_pids=lambda: [], cgroup_parents=()) -> dict:
    """Burst and memory numbers for an API engine (skipped with --burst 0 / --sleepers 0)."""
    out = {}
    if args.burst > 0:
        engine_pids = sorted(set(pids_referencing(tmp)) | set(extra_pids()))
        before = cpu_seconds(engine_pids)
        # A burst of 50 lasts a fraction of a second on a fast engine: the median of a few
        # rounds, not one draw, is what the ratio compares.
        rounds = [burst(host, IMAGE, args.burst, args.burst_threads) for _ in range(args.burst_rounds)]
        after = cpu_seconds(engine_pids)
        out["burst"] = dict(sorted(rounds, key=lambda r: r["per_second"])[len(rounds) // 2])
        out["burst"]["rounds_per_second"] = [r["per_second"] for r in rounds]
        # CPU of the engine's long-lived processes per container: robust on a loaded machine,
        # unlike containers/s (short-lived helpers such as dockerd's shims are not counted).
        used = sum(after[pid] - before[pid] for pid in after if pid in before)
        out["burst"]["engine_cpu_ms_per_container"] = round(used * 1000 / max(sum(r["containers"] for r in rounds), 1), 2)
        log(f"{name}: burst {out['burst']['per_second']} containers/s (median of {out['burst']['rounds_per_second']})")
    if args.sleepers > 0:
        out["memory"] = memory(host, IMAGE, lambda: sorted(set(pids_referencing(tmp)) | set(extra_pids())),
                               args.sleepers, list(cgroup_parents))
        log(f"{name}: memory {out['memory']}")
    return out




# --------------------------------------------------------------------------- engines

def bench_pyengine(args, stack: contextlib.ExitStack, tmp: Path, rootfs: bytes) -> dict:
    if args.pyengine_host:
        host, proc = args.pyengine_host, None
    else:
        host, proc = start_pyengined(args, stack, tmp)
    runner = ApiRunner(host, IMAGE)
    c = runner.client
    if args.pyengine_host:
        try:
            c.inspect_image(IMAGE)
        except Exception:  # noqa: BLE001 - not there: a daemon we do not own keeps no image of ours
            # registered before runner.cleanup, so it runs after our containers are gone
            stack.callback(quiet, c.remove_image, IMAGE)
    stack.callback(runner.cleanup)
    bootstrap_image(c)
    version = server_version(c)
    samples = measure("pyengine", runner.one, args.runs, args.warmup)
    if args.pyengine_host:
        return {"version": version, "host": host, **summarize(samples)}
    sys.path.insert(0, str(REPO_ROOT))
    from engine.daemon import parse_args as pyengined_args

    parent = pyengined_args(["--data-root", str(tmp / "data")]).cgroup_parent
    more = extras(args, "pyengine", host, tmp, lambda: [proc.pid], [parent])
    return {"version": version, "host": host, **summarize(samples), **more}


def bench_dockerd(args, stack: contextlib.ExitStack, tmp: Path, rootfs: bytes) -> dict:
    parent = f"pyengine-bench-dockerd-{os.getpid()}"
    host = start_private_dockerd(args, stack, tmp, parent)
    runner = ApiRunner(host, IMAGE)
    stack.callback(runner.cleanup)
    import_image(runner, rootfs, "dockerd")
    version = server_version(runner.client)
    samples = measure("dockerd", runner.one, args.runs, args.warmup)
    return {"version": version, **summarize(samples), **extras(args, "dockerd", host, tmp, cgroup_parents=[parent])}


def bench_podman(args, stack: contextlib.ExitStack, tmp: Path, rootfs: bytes) -> dict:
    # Rootful podman raises RLIMIT_NOFILE (to 1048576) and RLIMIT_NPROC in containers, which fails
    # with EPERM where we lack CAP_SYS_RESOURCE and the hard limits are lower (sandboxes, CI). So
    # keep our own limits, as dockerd and pyengined do. The service itself ends up with NPROC
    # capped at kernel.pid_max (seen on podman 4.3), so cap nproc there too.
    def lim(name: str, which: int, cap: int | None = None) -> str:
        soft, hard = resource.getrlimit(which)
        if cap is not None:
            soft = cap if soft == resource.RLIM_INFINITY else min(soft, cap)
            hard = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        fmt = lambda v: "-1" if v == resource.RLIM_INFINITY else str(v)  # noqa: E731
        return f'"{name}={fmt(soft)}:{fmt(hard)}"'
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        pid_max = None
    conf = tmp / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = [%s, %s]\n" % (
        lim("nofile", resource.RLIMIT_NOFILE), lim("nproc", resource.RLIMIT_NPROC, pid_max)))
    host, runtime = start_podman_service(args, stack, tmp, env={**os.environ, "CONTAINERS_CONF": str(conf)},
                                         runtime=args.podman_runtime)
    runner = ApiRunner(host, IMAGE)
    stack.callback(runner.cleanup)
    import_image(runner, rootfs, "podman")
    version = server_version(runner.client)
    samples = measure("podman", runner.one, args.runs, args.warmup)
    return {"version": f"{version}, runtime {runtime or 'default'}", **summarize(samples),
            **extras(args, "podman", host, tmp, cgroup_parents=PODMAN_CGROUPS)}



def bench_runc(args, stack: contextlib.ExitStack, tmp: Path, rootfs: bytes) -> dict:
    runc = shutil.which("runc")
    if not runc:
        raise Skip("runc not installed")
    bundle, state = tmp / "bundle", tmp / "state"
    (bundle / "rootfs").mkdir(parents=True)
    state.mkdir()
    with tarfile.open(fileobj=io.BytesIO(rootfs)) as tf:
        kw = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
        tf.extractall(bundle / "rootfs", numeric_owner=True, **kw)
    subprocess.run([runc, "spec", "--bundle", str(bundle)], check=True, capture_output=True)
    cfg_path = bundle / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["process"]["args"] = ["true"]
    cfg["process"]["terminal"] = False
    cfg_path.write_text(json.dumps(cfg, indent=2))
    prefix = f"peb-{os.getpid()}-"
    live: set[str] = set()

    def cleanup():
        for cid in list(live):
            subprocess.run([runc, "--root", str(state), "delete", "--force", cid],
                           capture_output=True, timeout=30)
        kill_pids_referencing(tmp)
        unmount_all_under(tmp)
        for cid in live:  # cgroupsPath unset: runc uses a cgroup named after the container id
            for p in cgroup_dirs(cid):
                rmdir_cgroup_tree(p)

    stack.callback(cleanup)
    counter = iter(range(10**9))

    def one() -> float:
        cid = f"{prefix}{next(counter)}"
        live.add(cid)
        t0 = time.perf_counter()
        r = subprocess.run([runc, "--root", str(state), "run", "-b", str(bundle), cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t1 = time.perf_counter()
        if r.returncode != 0:
            raise RuntimeError(f"runc run exited {r.returncode}: {r.stderr.decode(errors='replace')[-500:]}")
        live.discard(cid)
        return t1 - t0

    ver = subprocess.run([runc, "--version"], capture_output=True, text=True).stdout.splitlines()
    samples = measure("runc", one, args.runs, args.warmup)
    return {"version": ver[0] if ver else "?", **summarize(samples)}


BENCHES = {"pyengine": bench_pyengine, "dockerd": bench_dockerd, "podman": bench_podman, "runc": bench_runc}


# --------------------------------------------------------------------------- report

def ratios(results: dict) -> dict:
    out = {}
    for name, (num, den, cmp, target) in TARGETS.items():
        a, b = results.get(num), results.get(den)
        if not (a and b and "p50_ms" in a and "p50_ms" in b and b["p50_ms"] > 0):
            continue
        value = a["p50_ms"] / b["p50_ms"]
        met = value <= target if cmp == "<=" else value >= target
        out[name] = {"value": round(value, 3), "target": f"{cmp} {target:g}x", "met": met}
    py, dk = results.get("pyengine", {}), results.get("dockerd", {})
    if "burst" in py and "burst" in dk and dk["burst"]["per_second"] > 0:
        value = py["burst"]["per_second"] / dk["burst"]["per_second"]
        out["burst pyengine/dockerd"] = {"value": round(value, 3), "target": f">= {BURST_TARGET:g}x",
                                         "met": value >= BURST_TARGET}
    if "memory" in py:
        value = py["memory"]["mib_per_container"]
        out["pyengine MiB/container"] = {"value": value, "target": f"<= {MIB_PER_CONTAINER_TARGET:g}",
                                         "met": value <= MIB_PER_CONTAINER_TARGET}
    if "memory" in py and "memory" in dk and py["memory"]["engine_idle_mib"] > 0:
        out["dockerd/pyengine engine PSS idle"] = {
            "value": round(dk["memory"]["engine_idle_mib"] / py["memory"]["engine_idle_mib"], 3), "target": "-", "met": True}
    if "memory" in py and "memory" in dk and py["memory"]["engine_busy_mib"] > 0:
        out["dockerd/pyengine engine PSS with sleepers"] = {
            "value": round(dk["memory"]["engine_busy_mib"] / py["memory"]["engine_busy_mib"], 3), "target": "-", "met": True}
    return out


def print_report(outcome: Outcome, rat: dict) -> None:
    results = outcome.results
    print()
    print(f"{'engine':<10} {'runs':>5} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}  version")
    print("-" * 72)
    outcome.print_rows(
        ENGINES, lambda name, r: f"{name:<10} {r['runs']:>5} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} "
                                 f"{r['mean_ms']:>9.2f}  {r['version']}",
        lambda name, why: f"{name:<10} {'-':>5} {'-':>9} {'-':>9} {'-':>9}  {why}")
    print()
    for name, (num, den, cmp, target) in TARGETS.items():
        if name in rat:
            r = rat[name]
            print(f"{num} p50 / {den} p50 = {r['value']:.2f}x   (target {r['target']}: {'met' if r['met'] else 'NOT met'})")
        else:
            print(f"{num} p50 / {den} p50 = n/a   (target {cmp} {target:g}x)")
    print()
    for name in ENGINES:
        r = results.get(name, {})
        if "burst" in r:
            b = r["burst"]
            spread = ", ".join(f"{v:.1f}" for v in b.get("rounds_per_second", ()))
            print(f"{name:<10} burst: {b['containers']} containers, {b['threads']} threads, "
                  f"{b['seconds']:.2f} s = {b['per_second']:.1f} containers/s"
                  + (f" (median of {len(b['rounds_per_second'])} rounds: {spread})" if len(b.get("rounds_per_second", ())) > 1 else "")
                  + (f"; engine CPU {b['engine_cpu_ms_per_container']:.1f} ms/container"
                     if "engine_cpu_ms_per_container" in b else "")
                  + (f", client CPU {b['client_cpu_ms_per_container']:.1f}" if "client_cpu_ms_per_container" in b else ""))
        if "memory" in r:
            m = r["memory"]
            print(f"{name:<10} memory: engine PSS {m['engine_idle_mib']:.1f} MiB idle, {m['engine_busy_mib']:.1f} MiB "
                  f"with {m['sleepers']} sleepers ({m['engine_mib_per_container']:.3f} MiB each); per running "
                  f"container: {m['mib_per_container']:.3f} MiB engine + cgroup, "
                  f"{m['system_mib_per_container']:.3f} MiB system (MemAvailable, noisy)")
    for name in [n for n in rat if n not in TARGETS]:
        r = rat[name]
        verdict = "" if r["target"] == "-" else f"   (target {r['target']}: {'met' if r['met'] else 'NOT met'})"
        print(f"{name} = {r['value']:.2f}{'x' if 'MiB/' not in name else ' MiB'}{verdict}")
    print()


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50, help="timed runs per engine (default 50)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs per engine (default 3)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON here")
    ap.add_argument("--pyengine-host", metavar="unix:///PATH",
                    help="use this running pyengined instead of starting a private one")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help=f"comma-separated subset of {','.join(ENGINES)} (default: all)")
    ap.add_argument("--busybox", default="/bin/busybox", help="static busybox for the rootfs")
    ap.add_argument("--tmp-dir", default=None, help="parent of the temp dirs (default: $TMPDIR or /tmp)")
    ap.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for a daemon")
    ap.add_argument("--burst", type=int, default=50, help="containers in the burst (0: no burst)")
    ap.add_argument("--burst-threads", type=int, default=8, help="client threads in the burst")
    ap.add_argument("--burst-rounds", type=int, default=3, help="bursts per engine; the median counts (default 3)")
    ap.add_argument("--sleepers", type=int, default=50, help="running containers for the memory numbers (0: none)")
    ap.add_argument("--docker-storage-driver", default="overlay2")
    ap.add_argument("--podman-storage-driver", default="overlay")
    ap.add_argument("--podman-runtime", default=None,
                    help="OCI runtime for podman (default: runc when installed, else podman's default)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.burst_rounds < 1:
        ap.error("--runs and --burst-rounds must be >= 1 and --warmup >= 0")
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in wanted if e not in ENGINES]
    if bad:
        ap.error(f"unknown engine(s): {', '.join(bad)}")
    if (status := preflight()) is not None:
        return status
    rootfs = busybox_rootfs_tar(args.busybox)
    with temp_root("peb-", args.tmp_dir) as top:
        outcome = run_engines(wanted, lambda name, stack, tmp: BENCHES[name](args, stack, tmp, rootfs), top)
    rat = ratios(outcome.results)
    print_report(outcome, rat)
    if args.json:
        write_json(args.json, {"benchmark": "create+start+wait+remove busybox `true`, --network none",
                               "runs": args.runs, "warmup": args.warmup, "ratios": rat}, outcome)
    return outcome.exit_status


if __name__ == "__main__":
    sys.exit(main())

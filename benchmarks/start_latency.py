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
removed on exit, also on Ctrl-C / SIGTERM / failure.

This is a measurement script, not a test: it never asserts on timings. It prints a table and the
ratios against the targets (pyengine p50 / runc p50 <= 1.5x, dockerd p50 / pyengine p50 >= 10x,
podman p50 / pyengine p50 >= 10x) and, with ``--json FILE``, writes the numbers.

Run as root:   python3 benchmarks/start_latency.py [--runs 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_REPO, IMAGE_TAG = "busybox", "latest"
IMAGE = f"{IMAGE_REPO}:{IMAGE_TAG}"
API_VERSION = "1.41"
ENGINES = ("pyengine", "dockerd", "podman", "runc")
TARGETS = {
    # ratio name: (numerator engine, denominator engine, comparison, target)
    "pyengine/runc": ("pyengine", "runc", "<=", 1.5),
    "dockerd/pyengine": ("dockerd", "pyengine", ">=", 10.0),
    "podman/pyengine": ("podman", "pyengine", ">=", 10.0),
}
CGROUP_ROOT = Path("/sys/fs/cgroup")
BURST_TARGET = 20.0  # pyengine containers/s / dockerd containers/s
MIB_PER_CONTAINER_TARGET = 0.3


class Skip(Exception):
    """The engine is not installed / not usable here: reported as skipped, not as a failure."""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- statistics

def percentile(samples: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default 'linear' method)."""
    xs = sorted(samples)
    if not xs:
        raise ValueError("no samples")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(samples_s: list[float]) -> dict:
    ms = [s * 1000.0 for s in samples_s]
    return {
        "runs": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "samples_ms": [round(x, 3) for x in ms],
    }


# --------------------------------------------------------------------------- rootfs tar

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/home:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nwheel:x:10:root\nusers:x:100:\nnogroup:x:65534:\n"
DIRS = [("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755), ("proc", 0o755),
        ("root", 0o700), ("sys", 0o755), ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755),
        ("usr/sbin", 0o755), ("var", 0o755)]


def busybox_rootfs_tar(busybox: str) -> bytes:
    """busybox + one symlink per applet (``busybox --list``) in /bin, /etc/passwd, /etc/group."""
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout
    applets = sorted({a for a in out.split() if a and "/" not in a and a not in ("busybox", ".", "..")})
    binary = Path(busybox).read_bytes()

    def info(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, linkname
        ti.mtime = 1704067200
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, mode in DIRS:
            tf.addfile(info(name + "/", tarfile.DIRTYPE, mode))
        tf.addfile(info("bin/busybox", tarfile.REGTYPE, 0o755, len(binary)), io.BytesIO(binary))
        for a in applets:
            tf.addfile(info(f"bin/{a}", tarfile.SYMTYPE, 0o777, linkname="busybox"))
        for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
            data = text.encode()
            tf.addfile(info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return buf.getvalue()


# --------------------------------------------------------------------------- cleanup helpers

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def _unescape_mountinfo(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/")
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = _unescape_mountinfo(line.split()[4])
                if mp == prefix or mp.startswith(prefix + "/"):
                    found.append(mp)
    except OSError:
        pass
    return found


def unmount_all_under(root: Path) -> None:
    """Lazily unmount every mount at or below root, deepest first (stacked mounts: several passes)."""
    for _ in range(10):
        mps = mounts_under(root)
        if not mps:
            return
        for mp in sorted(set(mps), key=lambda p: p.count("/"), reverse=True):
            if _libc.umount2(mp.encode(), MNT_DETACH) != 0:
                err = ctypes.get_errno()
                if err not in (22, 2):  # EINVAL (not a mount any more), ENOENT
                    log(f"umount {mp}: {os.strerror(err)}")
    left = mounts_under(root)
    if left:
        log(f"WARNING: mounts left under {root}: {left}")


def pids_referencing(root: Path) -> list[int]:
    """Processes whose command line names a path under root (our daemons' children: containerd,
    shims, conmon...). root is a fresh mkdtemp() directory, so only our own processes match."""
    needle = str(root).encode()
    me = os.getpid()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def kill_pids_referencing(root: Path, grace: float = 5.0) -> None:
    pids = pids_referencing(root)
    if not pids:
        return
    log(f"terminating leftover processes under {root}: {pids}")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pids_referencing(root):
        time.sleep(0.1)
    for pid in pids_referencing(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)


def stop_process(proc: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{name} did not exit within {timeout:.0f}s of SIGTERM; SIGKILL")
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def cgroup_dirs(name: str) -> list[Path]:
    """Where a top-level cgroup called `name` lives: cgroup v2 root, or each v1 hierarchy."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT / name]
    # A relative cgroup parent lands under our own cgroup in a hierarchy (on this kind of host
    # the memory hierarchy puts us in a sub-cgroup), so look there as well as at the root.
    own: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                own[controller.removeprefix("name=")] = path
    out = []
    with contextlib.suppress(OSError):
        for h in CGROUP_ROOT.iterdir():
            if h.is_dir() and not h.is_symlink():
                out.append(h / name)
                nested = own.get(h.name, "/").strip("/")
                if nested:
                    out.append(h / nested / name)
    return out


def rmdir_cgroup_tree(path: Path) -> None:
    """rmdir a cgroup and its (empty) children bottom-up; rmdir refuses populated cgroups."""
    if not path.is_dir():
        return
    for dirpath, _dirnames, _files in sorted(os.walk(path), key=lambda t: t[0].count("/"), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)


class CgroupGuard:
    """Remember which top-level cgroups named `names` exist now; remove the new ones later."""

    def __init__(self, names: list[str]):
        self.new_candidates = [p for n in names for p in cgroup_dirs(n) if not p.exists()]

    def cleanup(self) -> None:
        for p in self.new_candidates:
            rmdir_cgroup_tree(p)
            if p.exists():
                log(f"WARNING: cgroup left behind: {p}")


def rmtree(path: Path) -> None:
    unmount_all_under(path)
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log(f"WARNING: could not fully remove {path}")


def tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------- the timed loop

def api_client(host: str):
    import docker  # docker-py
    return docker.APIClient(base_url=host, version=API_VERSION, timeout=120)


def wait_for_daemon(host: str, proc: subprocess.Popen | None, logfile: Path, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = None
    sock = host[len("unix://"):] if host.startswith("unix://") else None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} during startup:\n{tail(logfile)}")
        if sock is None or os.path.exists(sock):
            try:
                c = api_client(host)
                try:
                    if c.ping():
                        return
                finally:
                    c.close()
            except Exception as e:  # noqa: BLE001 - anything means "not ready yet"
                last = e
        time.sleep(0.1)
    raise RuntimeError(f"{name} not answering on {host} after {timeout:.0f}s ({last!r}):\n{tail(logfile)}")


class ApiRunner:
    """create -> start -> wait -> remove through docker.APIClient; tracks containers for cleanup."""

    def __init__(self, host: str, image: str):
        self.client = api_client(host)
        self.image = image
        self.host_config = self.client.create_host_config(network_mode="none")
        self.live: set[str] = set()

    def one(self) -> float:
        c = self.client
        t0 = time.perf_counter()
        cid = c.create_container(self.image, command=["true"], host_config=self.host_config)["Id"]
        self.live.add(cid)
        c.start(cid)
        status = c.wait(cid)
        c.remove_container(cid)
        t1 = time.perf_counter()
        self.live.discard(cid)
        code = status.get("StatusCode") if isinstance(status, dict) else status
        if code != 0:
            raise RuntimeError(f"container exited with {status!r}")
        return t1 - t0

    def cleanup(self) -> None:
        for cid in list(self.live):
            try:
                self.client.remove_container(cid, force=True)
                self.live.discard(cid)
            except Exception as e:  # noqa: BLE001
                if getattr(getattr(e, "response", None), "status_code", None) == 404:
                    self.live.discard(cid)
                else:
                    log(f"could not remove container {cid[:12]}: {e}")


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
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(worker, runners))
        elapsed = time.perf_counter() - t0
    finally:
        for r in runners:
            r.cleanup()
    return {"containers": total, "threads": threads, "seconds": round(elapsed, 3),
            "per_second": round(total / elapsed, 2)}


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
        out["burst"] = burst(host, IMAGE, args.burst, args.burst_threads)
        log(f"{name}: burst {out['burst']['per_second']} containers/s")
    if args.sleepers > 0:
        out["memory"] = memory(host, IMAGE, lambda: sorted(set(pids_referencing(tmp)) | set(extra_pids())),
                               args.sleepers, list(cgroup_parents))
        log(f"{name}: memory {out['memory']}")
    return out


def measure(name: str, one, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        one()
    samples = []
    for i in range(runs):
        samples.append(one())
        if (i + 1) % 10 == 0 or i + 1 == runs:
            log(f"{name}: {i + 1}/{runs} (last {samples[-1] * 1000:.1f} ms)")
    return samples


def server_version(client) -> str:
    try:
        v = client.version()
        return f"{v.get('Version', '?')} (API {v.get('ApiVersion', '?')})"
    except Exception:  # noqa: BLE001
        return "?"


# --------------------------------------------------------------------------- engines

def bench_pyengine(args, stack: contextlib.ExitStack, tmp: Path, rootfs: bytes) -> dict:
    proc = None
    logfile = tmp / "pyengined.log"
    if args.pyengine_host:
        host = args.pyengine_host
    else:
        data = tmp / "data"
        data.mkdir()
        host = f"unix://{tmp / 'pyengine.sock'}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "engine.daemon", "--data-root", str(data), "-H", host, "--no-live-restore"]
        log(f"pyengine: starting {' '.join(cmd)}")
        lf = stack.enter_context(open(logfile, "wb"))
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=lf,
                                stderr=subprocess.STDOUT, start_new_session=True)
        stack.callback(kill_pids_referencing, tmp)
        stack.callback(stop_process, proc, "pyengined")
    wait_for_daemon(host, proc, logfile, "pyengined", args.start_timeout)

    runner = ApiRunner(host, IMAGE)
    c = runner.client
    if args.pyengine_host:
        try:
            c.inspect_image(IMAGE)
        except Exception:  # noqa: BLE001 - not there: a daemon we do not own keeps no image of ours
            # registered before runner.cleanup, so it runs after our containers are gone
            stack.callback(_quiet, c.remove_image, IMAGE)
    stack.callback(runner.cleanup)
    r = c.post(c._url("/images/bootstrap"), params={"name": IMAGE_REPO, "tag": IMAGE_TAG})
    c._raise_for_status(r)
    log(f"pyengine: bootstrapped {IMAGE}: {r.text.strip()[:120]}")
    version = server_version(c)
    samples = measure("pyengine", runner.one, args.runs, args.warmup)
    daemon_pid = [proc.pid] if proc is not None else []
    sys.path.insert(0, str(REPO_ROOT))
    from engine.daemon import parse_args as pyengined_args

    parent = pyengined_args(["--data-root", str(tmp / "data")]).cgroup_parent
    more = extras(args, "pyengine", host, tmp, lambda: daemon_pid, [parent]) if not args.pyengine_host else {}
    return {"version": version, "host": host, **summarize(samples), **more}


def _quiet(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except Exception as e:  # noqa: BLE001
        log(f"cleanup: {fn.__name__}: {e}")


def import_image(runner: ApiRunner, rootfs: bytes, name: str) -> None:
    out = runner.client.import_image_from_data(rootfs, repository=IMAGE_REPO, tag=IMAGE_TAG)
    text = out if isinstance(out, str) else json.dumps(out)
    if "error" in text.lower():
        raise RuntimeError(f"{name}: import failed: {text[:500]}")
    log(f"{name}: imported {IMAGE}: {text.strip()[:120]}")


def start_private_dockerd(args, stack: contextlib.ExitStack, tmp: Path, cgroup_parent: str,
                          network_flags=("--bridge=none",), env: dict | None = None) -> str:
    """A dockerd whose every path is under tmp and which never touches the host's firewall;
    its stop and cleanup (leftover children, mounts, cgroups, /etc/docker/key.json) go on the
    stack. `network_flags` picks its default bridge. Returns its host address."""
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise Skip("dockerd not installed")
    if not (shutil.which("containerd") or shutil.which("docker-containerd")):
        raise Skip("containerd (needed by dockerd) not installed")
    data, execroot = tmp / "data", tmp / "exec"
    data.mkdir()
    execroot.mkdir()
    conf = tmp / "daemon.json"
    conf.write_text("{}\n")
    sock = tmp / "docker.sock"
    host = f"unix://{sock}"
    guard = CgroupGuard([cgroup_parent])
    # /etc/docker/key.json (libtrust identity) is written by dockerd 20.10 if missing: take it
    # away again if we caused it.
    keyjson = Path("/etc/docker/key.json")
    had_key, had_etc_docker = keyjson.exists(), keyjson.parent.exists()
    cmd = [
        dockerd, "--data-root", str(data), "--exec-root", str(execroot),
        "--pidfile", str(tmp / "docker.pid"), "--config-file", str(conf), "-H", host,
        *network_flags, "--iptables=false", "--ip6tables=false", "--ip-masq=false",
        "--userland-proxy=false", "--storage-driver", args.docker_storage_driver,
        "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", cgroup_parent,
    ]
    log(f"dockerd: starting {' '.join(cmd)}")
    logfile = tmp / "dockerd.log"
    lf = stack.enter_context(open(logfile, "wb"))
    env = dict(env or os.environ)
    env.pop("DOCKER_HOST", None)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)

    def after_stop():
        kill_pids_referencing(tmp)
        unmount_all_under(tmp)
        guard.cleanup()
        if not had_key:
            with contextlib.suppress(OSError):
                keyjson.unlink()
        if not had_etc_docker:
            with contextlib.suppress(OSError):
                keyjson.parent.rmdir()

    stack.callback(after_stop)
    stack.callback(stop_process, proc, "dockerd")
    wait_for_daemon(host, proc, logfile, "dockerd", args.start_timeout)
    return host


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
    podman = shutil.which("podman")
    if not podman:
        raise Skip("podman not installed")
    dirs = {k: tmp / k for k in ("root", "runroot", "tmpdir", "volumes", "netconf")}
    for d in dirs.values():
        d.mkdir()
    sock = tmp / "podman.sock"
    host = f"unix://{sock}"
    guard = CgroupGuard(["libpod_parent", "machine.slice"])
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
    # crun (Debian's default for podman) refuses hybrid cgroup v1/v2 hosts; runc is also what
    # dockerd uses and what the bare baseline measures, so prefer it unless told otherwise.
    runtime = args.podman_runtime or ("runc" if shutil.which("runc") else None)
    base = [
        podman, "--root", str(dirs["root"]), "--runroot", str(dirs["runroot"]),
        "--tmpdir", str(dirs["tmpdir"]), "--volumepath", str(dirs["volumes"]),
        "--network-config-dir", str(dirs["netconf"]), "--cgroup-manager", "cgroupfs",
        "--events-backend", "file", "--storage-driver", args.podman_storage_driver,
    ]
    if runtime:
        base += ["--runtime", runtime]
    cmd = base + ["system", "service", "--time=0", host]
    log(f"podman: starting {' '.join(cmd)}")
    logfile = tmp / "podman.log"
    lf = stack.enter_context(open(logfile, "wb"))
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    env.pop("CONTAINER_HOST", None)
    env["CONTAINERS_CONF"] = str(conf)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)

    def after_stop():
        kill_pids_referencing(tmp)
        unmount_all_under(tmp)
        guard.cleanup()

    stack.callback(after_stop)
    stack.callback(stop_process, proc, "podman system service")
    wait_for_daemon(host, proc, logfile, "podman", args.start_timeout)
    runner = ApiRunner(host, IMAGE)
    stack.callback(runner.cleanup)
    import_image(runner, rootfs, "podman")
    version = server_version(runner.client)
    samples = measure("podman", runner.one, args.runs, args.warmup)
    return {"version": f"{version}, runtime {runtime or 'default'}", **summarize(samples),
            **extras(args, "podman", host, tmp, cgroup_parents=["libpod_parent", "machine.slice"])}


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


def print_report(results: dict, skipped: dict, failed: dict, rat: dict) -> None:
    print()
    print(f"{'engine':<10} {'runs':>5} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}  version")
    print("-" * 72)
    for name in ENGINES:
        if name in results:
            r = results[name]
            print(f"{name:<10} {r['runs']:>5} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} {r['mean_ms']:>9.2f}  {r['version']}")
        elif name in skipped:
            print(f"{name:<10} {'-':>5} {'-':>9} {'-':>9} {'-':>9}  skipped: {skipped[name]}")
        elif name in failed:
            print(f"{name:<10} {'-':>5} {'-':>9} {'-':>9} {'-':>9}  FAILED: {failed[name].splitlines()[0][:100]}")
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
            print(f"{name:<10} burst: {b['containers']} containers, {b['threads']} threads, "
                  f"{b['seconds']:.2f} s = {b['per_second']:.1f} containers/s")
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

def _raise_interrupt(signum, frame):
    # first signal only: a second Ctrl-C must not cut the cleanup short
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    log("interrupted: cleaning up (further signals are ignored)")
    raise KeyboardInterrupt(f"signal {signum}")


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
    ap.add_argument("--sleepers", type=int, default=50, help="running containers for the memory numbers (0: none)")
    ap.add_argument("--docker-storage-driver", default="overlay2")
    ap.add_argument("--podman-storage-driver", default="overlay")
    ap.add_argument("--podman-runtime", default=None,
                    help="OCI runtime for podman (default: runc when installed, else podman's default)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1 and --warmup >= 0")
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in wanted if e not in ENGINES]
    if bad:
        ap.error(f"unknown engine(s): {', '.join(bad)}")
    if os.geteuid() != 0:
        log("WARNING: not root; the engines will most likely fail")
    try:
        import docker  # noqa: F401
    except ImportError:
        log("docker-py is required: pip install docker")
        return 2

    # also installed when started with SIGINT ignored (`cmd &` in a script)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)

    rootfs = busybox_rootfs_tar(args.busybox)
    results: dict = {}
    skipped: dict = {}
    failed: dict = {}
    interrupted = False
    top = Path(tempfile.mkdtemp(prefix="peb-", dir=args.tmp_dir))
    try:
        for name in wanted:
            tmp = top / name[:2]  # short paths: unix socket paths are limited to 108 bytes
            tmp.mkdir()
            log(f"=== {name} ===")
            try:
                with contextlib.ExitStack() as stack:
                    stack.callback(rmtree, tmp)
                    results[name] = BENCHES[name](args, stack, tmp, rootfs)
                    log(f"{name}: p50 {results[name]['p50_ms']:.2f} ms, p95 {results[name]['p95_ms']:.2f} ms; cleaning up")
            except Skip as e:
                skipped[name] = str(e)
                log(f"{name}: skipped ({e})")
            except KeyboardInterrupt:
                interrupted = True
                log("interrupted; cleaned up")  # the ExitStack has run by now
                break
            except Exception as e:  # noqa: BLE001 - one engine failing must not stop the others
                failed[name] = f"{type(e).__name__}: {getattr(e, 'explanation', None) or e}"
                log(f"{name}: FAILED\n{traceback.format_exc()}")
    finally:
        rmtree(top)

    rat = ratios(results)
    print_report(results, skipped, failed, rat)
    if args.json:
        doc = {
            "benchmark": "create+start+wait+remove busybox `true`, --network none",
            "runs": args.runs,
            "warmup": args.warmup,
            "host": {"kernel": platform.release(), "machine": platform.machine(), "cpus": os.cpu_count(),
                     "python": platform.python_version()},
            "engines": results,
            "ratios": rat,
            "skipped": skipped,
            "failed": failed,
            "interrupted": interrupted,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        log(f"wrote {args.json}")
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

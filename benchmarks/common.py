"""What the benchmarks share: private daemons (pyengined, dockerd, podman's API service) on
temp directories with their cleanup, the busybox image made locally, docker-py's timed
create -> start -> wait -> remove, statistics, and the per-engine loop with its report and
JSON. Whatever a daemon leaves (children, mounts, cgroups, temp dirs) is removed on exit,
also on Ctrl-C / SIGTERM / failure."""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from engine.runtime import mountinfo  # noqa: E402  (the engine's one mountinfo reader)

IMAGE_REPO, IMAGE_TAG = "busybox", "latest"
IMAGE = f"{IMAGE_REPO}:{IMAGE_TAG}"
API_VERSION = "1.41"
CGROUP_ROOT = Path("/sys/fs/cgroup")



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


def mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/")
    try:
        return [p for p in mountinfo.mount_points() if p == prefix or p.startswith(prefix + "/")]
    except OSError:
        return []


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

    client = docker.APIClient(base_url=host, version=API_VERSION, timeout=120)
    # requests otherwise reads the proxy variables from os.environ at every request (twice):
    # ~15% of the client's CPU, which shares the machine with the engine under test, and a
    # cost that grows with the size of the caller's environment. A unix socket has no proxy;
    # the requests sent are the same bytes.
    client.trust_env = False
    return client


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


def quiet(fn, *a, **kw):
    """Call fn; an error is logged (cleanup steps must not hide what failed before them)."""
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


def bootstrap_image(client) -> None:
    """busybox:latest in a pyengined from the host's static busybox (POST /images/bootstrap)."""
    r = client.post(client._url("/images/bootstrap"), params={"name": IMAGE_REPO, "tag": IMAGE_TAG})
    client._raise_for_status(r)
    log(f"pyengine: bootstrapped {IMAGE}: {r.text.strip()[:120]}")


# --------------------------------------------------------------------------- private daemons
# Each starter puts every path of its daemon under tmp, registers the daemon's stop and the
# cleanup after it on the stack (LIFO: the stop runs first) and returns once the API answers.

def _start_daemon(args, stack: contextlib.ExitStack, tmp: Path, name: str, cmd: list[str], host: str,
                  env: dict | None, cgroup_parents: list[str]) -> subprocess.Popen:
    guard = CgroupGuard(cgroup_parents)
    logfile = tmp / f"{name}.log"
    lf = stack.enter_context(open(logfile, "wb"))
    env = dict(env or os.environ)
    env.pop("DOCKER_HOST", None)
    env.pop("CONTAINER_HOST", None)
    log(f"{name}: starting {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=lf,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def after_stop():
        kill_pids_referencing(tmp)  # children naming tmp: containerd, shims, conmon, spawner
        unmount_all_under(tmp)
        guard.cleanup()

    stack.callback(after_stop)
    stack.callback(stop_process, proc, name)
    wait_for_daemon(host, proc, logfile, name, args.start_timeout)
    return proc


def start_pyengined(args, stack: contextlib.ExitStack, tmp: Path, cgroup_parent: str | None = None,
                    env: dict | None = None) -> tuple[str, subprocess.Popen]:
    """pyengined of this checkout with --no-live-restore (its stop stops its containers).
    Returns (host, process)."""
    data = tmp / "data"
    data.mkdir()
    host = f"unix://{tmp / 'pyengine.sock'}"
    env = dict(env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    config_file = tmp / "daemon.json"  # not the host's /etc/pyengine/daemon.json
    config_file.write_text("{}\n")
    cmd = [sys.executable, "-m", "engine.daemon", "--data-root", str(data), "--exec-root", str(tmp / "exec"),
           "-H", host, "--config-file", str(config_file), "--no-live-restore"]
    if cgroup_parent:
        cmd += ["--cgroup-parent", cgroup_parent]
    proc = _start_daemon(args, stack, tmp, "pyengined", cmd, host, env, [cgroup_parent] if cgroup_parent else [])
    return host, proc


def start_private_dockerd(args, stack: contextlib.ExitStack, tmp: Path, cgroup_parent: str,
                          network_flags=("--bridge=none",), env: dict | None = None) -> str:
    """A dockerd that never touches the host's firewall (`network_flags` picks its default
    bridge); /etc/docker/key.json, which dockerd 20.10 writes when missing, is taken away
    again if we caused it. Returns its host address."""
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
    host = f"unix://{tmp / 'docker.sock'}"
    keyjson = Path("/etc/docker/key.json")
    had_key, had_etc_docker = keyjson.exists(), keyjson.parent.exists()

    def forget_key():
        if not had_key:
            with contextlib.suppress(OSError):
                keyjson.unlink()
        if not had_etc_docker:
            with contextlib.suppress(OSError):
                keyjson.parent.rmdir()

    stack.callback(forget_key)  # after dockerd has stopped
    cmd = [
        dockerd, "--data-root", str(data), "--exec-root", str(execroot),
        "--pidfile", str(tmp / "docker.pid"), "--config-file", str(conf), "-H", host,
        *network_flags, "--iptables=false", "--ip6tables=false", "--ip-masq=false",
        "--userland-proxy=false", "--storage-driver", args.docker_storage_driver,
        "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", cgroup_parent,
    ]
    _start_daemon(args, stack, tmp, "dockerd", cmd, host, env, [cgroup_parent])
    return host


PODMAN_CGROUPS = ["libpod_parent", "machine.slice"]


def start_podman_service(args, stack: contextlib.ExitStack, tmp: Path, env: dict | None = None,
                         runtime: str | None = None) -> tuple[str, str | None]:
    """`podman system service` (its Docker-compatible API) on private storage, cgroupfs and file
    events. The runtime is runc when installed: crun (Debian's default for podman) refuses
    hybrid cgroup v1/v2 hosts, and runc is what dockerd uses. Returns (host, runtime)."""
    podman = shutil.which("podman")
    if not podman:
        raise Skip("podman not installed")
    dirs = {k: tmp / k for k in ("root", "runroot", "tmpdir", "volumes", "netconf")}
    for d in dirs.values():
        d.mkdir()
    host = f"unix://{tmp / 'podman.sock'}"
    runtime = runtime or ("runc" if shutil.which("runc") else None)
    cmd = [
        podman, "--root", str(dirs["root"]), "--runroot", str(dirs["runroot"]),
        "--tmpdir", str(dirs["tmpdir"]), "--volumepath", str(dirs["volumes"]),
        "--network-config-dir", str(dirs["netconf"]), "--cgroup-manager", "cgroupfs",
        "--events-backend", "file", "--storage-driver", args.podman_storage_driver,
    ] + (["--runtime", runtime] if runtime else []) + ["system", "service", "--time=0", host]
    _start_daemon(args, stack, tmp, "podman", cmd, host, env, PODMAN_CGROUPS)
    return host, runtime


# --------------------------------------------------------------------------- the run and its report

def _raise_interrupt(signum, frame):
    # first signal only: a second Ctrl-C must not cut the cleanup short
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    log("interrupted: cleaning up (further signals are ignored)")
    raise KeyboardInterrupt(f"signal {signum}")


def preflight() -> int | None:
    """None when the run can go on (root, docker-py there); Ctrl-C, SIGTERM and SIGHUP then
    raise KeyboardInterrupt, so every ExitStack cleans up (also when started with SIGINT
    ignored, `cmd &` in a script). Otherwise the exit status."""
    if os.geteuid() != 0:
        log("run as root")
        return 2
    try:
        import docker  # noqa: F401
    except ImportError:
        log("docker-py is required: pip install docker")
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    return None


class Outcome:
    """Per engine: its numbers, or why it was skipped or failed; whether the run was cut short."""

    def __init__(self) -> None:
        self.results: dict[str, dict] = {}
        self.skipped: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.interrupted = False

    def missing(self, name: str) -> str | None:
        """For a report row of an engine without results."""
        if name in self.skipped:
            return f"skipped: {self.skipped[name]}"
        if name in self.failed:
            return f"FAILED: {self.failed[name].splitlines()[0][:100]}"
        return None

    def print_rows(self, names, row: Callable[[str, dict], str], missing: Callable[[str, str], str]) -> None:
        """One report line per engine: row(name, results) or missing(name, why it has none)."""
        for name in names:
            if name in self.results:
                print(row(name, self.results[name]))
            elif self.missing(name):
                print(missing(name, self.missing(name)))

    @property
    def exit_status(self) -> int:
        return 130 if self.interrupted else 1 if self.failed else 0


@contextlib.contextmanager
def temp_root(prefix: str, parent: str | None = None):
    """A fresh temp dir (short: unix socket paths are limited to 108 bytes), removed with
    whatever is mounted below it."""
    top = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield top
    finally:
        rmtree(top)


def run_engines(names, bench: Callable[[str, contextlib.ExitStack, Path], dict], top: Path,
                outcome: Outcome | None = None, optional=()) -> Outcome:
    """bench(name, stack, tmp) for each engine in turn, each on its own dir below top with its
    cleanup on `stack`: Skip → skipped; an error → failed (skipped for `optional` engines, the
    ones only compared with); Ctrl-C → interrupted and the rest not run. One engine failing
    never stops the others."""
    out = outcome or Outcome()
    for name in names:
        tmp = top / name[:2]
        tmp.mkdir()
        log(f"=== {name} ===")
        try:
            with contextlib.ExitStack() as stack:
                stack.callback(rmtree, tmp)
                out.results[name] = bench(name, stack, tmp)
                log(f"{name}: done; cleaning up")
        except Skip as e:
            out.skipped[name] = str(e)
            log(f"{name}: skipped ({e})")
        except KeyboardInterrupt:
            out.interrupted = True
            log("interrupted; cleaned up")  # the ExitStack has run by now
            break
        except Exception as e:  # noqa: BLE001 - reported; the other engines still run
            msg = f"{type(e).__name__}: {getattr(e, 'explanation', None) or e}"
            if name in optional:
                out.skipped[name] = f"failed ({msg.splitlines()[0][:200]})"
            else:
                out.failed[name] = msg
            log(f"{name}: FAILED\n{traceback.format_exc()}")
    return out


def write_json(path: str, doc: dict, outcome: Outcome) -> None:
    """The numbers, what was skipped or failed, and the host they were taken on."""
    doc = {**doc, "host": {"kernel": platform.release(), "machine": platform.machine(),
                           "cpus": os.cpu_count(), "python": platform.python_version(),
                           "load": os.getloadavg()},
           "engines": outcome.results, "skipped": outcome.skipped, "failed": outcome.failed,
           "interrupted": outcome.interrupted}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")
    log(f"wrote {path}")

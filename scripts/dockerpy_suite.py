#!/usr/bin/env python3
"""Run docker-py 7.0.0's own integration suite (tests/integration of its sdist) against a
private pyengined, and print which tests pass, fail, and which need Docker Hub or a swarm.

    python3 scripts/dockerpy_suite.py                    # the whole suite, summary + lists
    python3 scripts/dockerpy_suite.py -k "update or diff"  # a pytest -k selection
    python3 scripts/dockerpy_suite.py --select scripts/dockerpy_passing.txt   # CI's required list
    python3 scripts/dockerpy_suite.py --host unix:///tmp/d/docker.sock  # any daemon (dockerd)

The daemon gets stand-in images: busybox bootstrapped locally, tagged as the names the
suite uses (alpine:3.10, alpine:latest, busybox:latest, hello-world:latest), since Docker
Hub is not reachable. Tests listed in scripts/dockerpy_racy.txt (racy in docker-py itself)
are reported as "racy" when they fail. Exit status: 0 when every selected test that needs
neither Hub nor a swarm and is not racy passed."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

VERSION = "7.0.0"
CACHE = Path(os.environ.get("PYENGINE_CACHE", Path.home() / ".cache" / "pyengine"))
REPO = Path(__file__).resolve().parent.parent
STAND_INS = ("alpine:3.10", "alpine:latest", "hello-world:latest")
ALPINE_EXTRAS = ("mkdir -p /var/opt /var/lib/postgresql && echo postgres:x:70:70::/var/lib/postgresql:/bin/sh "
                 ">> /etc/passwd && echo postgres:x:70: >> /etc/group")

# Tests that need what this machine cannot give: Docker Hub (pull/push/search/login,
# images only Hub has), a swarm, or managed plugins (installed from Hub); and the few that
# fail against dockerd here as well.
NEEDS_ELSEWHERE = {
    "swarm": ("api_swarm_test", "api_service_test", "api_secret_test", "api_config_test",
              "models_nodes_test", "models_services_test", "models_swarm_test",
              "test_create_network_attachable", "test_create_inspect_network_with_scope",
              "test_create_network_with_scope", "ingress", "test_prune_networks"),
    "hub": ("api_plugin_test", "test_pull", "test_login", "test_search", "test_push",
            "hello-world", "test_get_image_load_image", "test_get_load_image",
            "test_image_pull", "test_load_tags", "test_tag_and_remove", "test_list_images",
            "test_images_quiet", "test_get_registry_data", "test_reload",
            "test_save_and_remove_image", "test_pull_with_tag", "test_pull_with_sha",
            "test_pull_multiple", "test_pull_streaming", "test_pull_invalid_platform",
            "test_create_with_image_id", "test_inspect_distribution", "test_prune_images",
            "test_run_with_image_that_does_not_exist", "ImageCollectionTest::test_list"),
    # fail against dockerd on this machine too: docker-py's own context store and websocket
    # over a unix socket; rshared binds need / to be a shared mount
    "client or host": ("context_api_test", "test_run_container_reading_socket_ws",
                       "test_create_with_binds_rw_rshared"),
}


def read_ids(path: str | Path) -> list[str]:
    """Test node ids of a list file: one a line, `#` starts a comment."""
    return [i for i in (line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines()) if i]


RACY = set(read_ids(REPO / "scripts" / "dockerpy_racy.txt"))


def log(msg: str) -> None:
    print(f"[dockerpy-suite] {msg}", file=sys.stderr, flush=True)


def suite() -> Path:
    """tests/ and pytest.ini of docker-py's sdist, kept once in the cache (pip download: PyPI
    only). Its own docker package is left out: 7.0.0 breaks with requests ≥ 2.32 (fixed in
    7.1), so the suite runs with the installed docker-py."""
    target = CACHE / f"docker-py-{VERSION}-suite"
    if (target / "tests" / "integration").is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", f"docker=={VERSION}",
                        "--no-binary", ":all:", "--no-deps", "-d", tmp], check=True)
        shutil.unpack_archive(os.path.join(tmp, f"docker-{VERSION}.tar.gz"), tmp)
        unpacked = Path(tmp, f"docker-{VERSION}")
        staging = Path(tmp, "suite")
        staging.mkdir()
        shutil.copytree(unpacked / "tests", staging / "tests")
        shutil.copy(unpacked / "pytest.ini", staging / "pytest.ini")
        shutil.move(staging, target)
    return target


@contextlib.contextmanager
def private_pyengined():
    """A pyengined on a temp root and socket; stopped and removed afterwards."""
    root = tempfile.mkdtemp(prefix="pe-dockerpy-")
    sock = os.path.join(root, "pyengine.sock")
    host = f"unix://{sock}"
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}".rstrip(":")}
    logf = open(os.path.join(root, "daemon.log"), "ab")
    config_file = os.path.join(root, "daemon.json")  # not the host's /etc/pyengine/daemon.json
    with open(config_file, "w") as f:
        f.write("{}\n")
    proc = subprocess.Popen([sys.executable, "-m", "engine.daemon", "--data-root",
                             os.path.join(root, "data"), "--exec-root", os.path.join(root, "exec"), "-H", host,
                             "--config-file", config_file,
                             "--no-live-restore"],  # a throwaway daemon: its stop stops everything
                            stdout=logf, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not api_ok(host):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pyengined did not come up; see {root}/daemon.log")
            time.sleep(0.1)
        yield host, root
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()
        with open("/proc/self/mountinfo") as f:
            leftovers = [line.split()[4] for line in f if line.split()[4].startswith(root)]
        for mount in reversed(leftovers):
            subprocess.run(["umount", "-l", mount], check=False)
        if os.environ.get("KEEP_DAEMON_LOG"):
            shutil.copy(os.path.join(root, "daemon.log"), os.environ["KEEP_DAEMON_LOG"])
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def private_dockerd():
    """For comparison: Debian's dockerd on a temp root, with its own bridge and no firewall
    changes (--iptables=false), so nothing of the host or other daemons is touched."""
    dockerd = shutil.which("dockerd") or next((p for p in ("/usr/sbin/dockerd", "/usr/bin/dockerd")
                                               if os.path.exists(p)), None)
    if dockerd is None:
        raise SystemExit("dockerd is not installed (Debian: apt-get install docker.io)")
    root = tempfile.mkdtemp(prefix="pe-dockerpy-dockerd-")
    bridge = f"pe-dpy{os.getpid() % 100000}"
    host = f"unix://{root}/docker.sock"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    logf = open(os.path.join(root, "dockerd.log"), "ab")
    proc = None
    try:
        subprocess.run(["ip", "addr", "add", "10.213.213.1/24", "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        (Path(root) / "daemon.json").write_text("{}\n")
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
        proc = subprocess.Popen(
            [dockerd, "--data-root", f"{root}/data", "--exec-root", f"{root}/exec", "--pidfile",
             f"{root}/docker.pid", "--config-file", f"{root}/daemon.json", "-H", host, "--bridge", bridge,
             "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--userland-proxy=false",
             "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", "pe-dockerpy-dockerd"],
            stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while not api_ok(host):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not come up; see {root}/dockerd.log")
            time.sleep(0.2)
        yield host, root
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        logf.close()
        with open("/proc/self/mountinfo") as f:
            leftovers = [line.split()[4] for line in f if line.split()[4].startswith(root)]
        for mount in reversed(leftovers):
            subprocess.run(["umount", "-l", mount], check=False)
        subprocess.run(["ip", "link", "del", bridge], check=False)
        cgroup_fs = Path("/sys/fs/cgroup")
        for parent in [*cgroup_fs.glob("*/pe-dockerpy-dockerd"), *cgroup_fs.glob("pe-dockerpy-dockerd")]:  # v1, v2
            for d in sorted((p for p in parent.glob("**/") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    d.rmdir()
        shutil.rmtree(root, ignore_errors=True)


def api_ok(host: str) -> bool:
    import docker

    try:
        with contextlib.closing(docker.APIClient(base_url=host, timeout=5)) as c:
            return c.ping()
    except Exception:
        return False


def stand_in_images(host: str) -> None:
    """busybox made locally (pyengine's bootstrap API, or imported from the host's
    busybox-static for another daemon), tagged as the images the suite names."""
    import docker

    client = docker.APIClient(base_url=host, version="1.41", timeout=300)
    try:
        client.inspect_image("busybox:latest")
    except docker.errors.NotFound:
        r = client._post(client._url("/images/bootstrap"), params={"name": "busybox", "tag": "latest"})
        if r.status_code != 201:
            import_busybox(client)
    # alpine's stand-in also has what the suite counts on in alpine: a postgres user, /var/opt
    made = client.create_container("busybox:latest", ["sh", "-c", ALPINE_EXTRAS], network_disabled=True)
    try:
        client.start(made)
        if client.wait(made, timeout=120)["StatusCode"] != 0:
            raise RuntimeError("making the alpine stand-in failed")
        alpine = client.commit(made, conf={"Cmd": ["/bin/sh"]})["Id"]
    finally:
        client.remove_container(made, force=True)
    for ref in STAND_INS:
        repo, tag = ref.split(":")
        client.tag(alpine if repo == "alpine" else "busybox:latest", repo, tag)
    client.close()


def import_busybox(client) -> None:
    """A busybox image from /bin/busybox (busybox-static) through the import API."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(shutil.which("busybox") or "/bin/busybox", arcname="bin/busybox")
        info = tarfile.TarInfo("etc/passwd")
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
        for d in ("tmp", "etc", "root", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        busybox = shutil.which("busybox") or "/bin/busybox"
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for name in (a for a in applets if a != "busybox"):
            info = tarfile.TarInfo(f"bin/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    client.import_image_from_data(buf.getvalue(), repository="busybox", tag="latest",
                                  changes=['CMD ["sh"]', "ENV PATH=/bin"])


def needs_elsewhere(nodeid: str) -> str | None:
    for why, marks in NEEDS_ELSEWHERE.items():
        if any(m in nodeid for m in marks):
            return why
    return None


def run_suite(src: Path, host: str, args, junit: Path) -> int:
    # A config dir of its own: context tests create contexts there, detach tests a config.json.
    config = tempfile.mkdtemp(prefix="pe-dockerpy-config-")
    # docker-py's tests leave their temp files and dirs behind (archives, build contexts, bind
    # sources): they go to a directory of their own, removed after the run.
    scratch = tempfile.mkdtemp(prefix="pe-dockerpy-tmp-")
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_TEST_API_VERSION": "1.41", "DOCKER_CONFIG": config,
           "TMPDIR": scratch}
    env.pop("PYTHONPATH", None)
    env.pop("DOCKER_TLS_VERIFY", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
           "--rootdir", str(src), "-c", str(src / "pytest.ini"), f"--timeout={args.timeout}",
           f"--junitxml={junit}", "-o", "junit_family=xunit2",
           # credential-helper tests need docker-credential-* binaries, and one of them rebinds
           # os.environ for good (DOCKER_HOST lost for every later test)
           "--ignore=tests/integration/credentials"]
    if args.k:
        cmd += ["-k", args.k]
    if args.select:
        cmd += read_ids(args.select)
    else:
        cmd.append("tests/integration")
    cmd += args.pytest_args
    log(f"running {' '.join(cmd[:3])} … against {host}")
    try:
        return subprocess.run(cmd, cwd=src, env=env, stdout=None if args.verbose else subprocess.DEVNULL).returncode
    finally:
        shutil.rmtree(config, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def results(junit: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        cls = parts.pop() if parts and parts[-1][:1].isupper() else None
        nodeid = "/".join(parts) + ".py" + (f"::{cls}" if cls else "") + f"::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        out[nodeid] = outcome
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="run against this daemon instead of a private pyengined")
    parser.add_argument("--dockerd", action="store_true", help="run against a private dockerd (comparison)")
    parser.add_argument("-k", help="pytest -k expression")
    parser.add_argument("--select", help="file of test node ids, one a line")
    parser.add_argument("--timeout", type=int, default=120, help="per-test timeout (s)")
    parser.add_argument("--junit", help="keep the junit xml here")
    parser.add_argument("--lists", help="write passed/failed/elsewhere lists to this directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    parser.add_argument("--fetch-only", action="store_true", help="only fetch the suite into the cache")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    src = suite()
    if args.fetch_only:
        return 0
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pe-dockerpy-out-")))
        junit = Path(args.junit) if args.junit else tmp / "junit.xml"
        host = args.host
        if host is None:
            host, _ = stack.enter_context(private_dockerd() if args.dockerd else private_pyengined())
        stand_in_images(host)
        run_suite(src, host, args, junit)
        outcome = results(junit)
    groups: dict[str, list[str]] = {"passed": [], "failed": [], "elsewhere": [], "racy": [], "skipped": []}
    for nodeid, result in sorted(outcome.items()):
        why = needs_elsewhere(nodeid)
        if result == "failed" and why:
            groups["elsewhere"].append(f"{nodeid}  ({why})")
        elif result == "failed" and nodeid in RACY:
            groups["racy"].append(nodeid)
        else:
            groups[result].append(nodeid)
    if args.lists:
        os.makedirs(args.lists, exist_ok=True)
        for name, items in groups.items():
            Path(args.lists, f"{name}.txt").write_text("".join(f"{i}\n" for i in items))
    for nodeid in groups["failed"]:
        print(f"FAILED {nodeid}")
    print(" · ".join(f"{len(v)} {k}" for k, v in groups.items()))
    return 1 if groups["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

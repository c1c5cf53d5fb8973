"""engine.runtime against real namespaces (root only): a busybox rootfs under an overlay."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest
import trio

from engine.runtime import (
    MountSpec,
    ProcessSpec,
    RuntimeSpec,
    SpawnError,
    Stdio,
    mount_overlay,
    spawn_container,
    spawn_exec,
    unmount,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("busybox"), reason="needs root and busybox")

ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root")


@pytest.fixture(scope="module")
def busybox_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("busybox")
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin", "sbin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox"), root / "bin" / "busybox")
    applets = subprocess.run([str(root / "bin" / "busybox"), "--list"], capture_output=True, text=True, check=True)
    for name in applets.stdout.split():
        if name != "busybox":
            os.symlink("busybox", root / "bin" / name)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    (root / "tmp").chmod(0o1777)
    return str(root)


@pytest.fixture
def rootfs(busybox_root, tmp_path):
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    mount_overlay([busybox_root], str(upper), str(work), str(merged))
    try:
        yield str(merged)
    finally:
        unmount(str(merged))


def make_spec(rootfs: str, args, **kw) -> RuntimeSpec:
    process_kw = {k: kw.pop(k) for k in list(kw) if k in ("uid", "gid", "cwd", "capabilities", "env", "terminal_size",
                                                          "exec_signals_blocked")}
    process_kw.setdefault("env", ENV)
    return RuntimeSpec(rootfs=rootfs, hostname=kw.pop("hostname", "testbox"),
                       process=ProcessSpec(args=args, **process_kw), **kw)


async def read_all(fd: int) -> bytes:
    chunks = []
    async with trio.lowlevel.FdStream(fd) as stream:
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:  # EIO from a pty master once the slave is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


async def run(rootfs: str, args, prepare=None, **kw) -> tuple[int, str]:
    return await run_spec(make_spec(rootfs, args, **kw), prepare)


async def run_spec(spec, prepare=None) -> tuple[int, str]:
    """Spawn `spec` with stdout+stderr on one pipe; (exit code, output)."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = await spawn_container(spec, Stdio(stdout=out_w, stderr=out_w), prepare=prepare)
    except BaseException:
        os.close(out_r)
        raise
    finally:
        os.close(out_w)
    try:
        out = await read_all(out_r)
        code = await proc.wait()
    finally:
        proc.close()
    return code, out.decode()


async def test_echo(rootfs):
    assert await run(rootfs, ["echo", "hello", "world"]) == (0, "hello world\n")


async def test_exit_code(rootfs):
    code, _ = await run(rootfs, ["sh", "-c", "exit 42"])
    assert code == 42


async def test_pid_one_and_hostname(rootfs):
    code, out = await run(rootfs, ["sh", "-c", "echo $$; hostname"], hostname="box1")
    assert (code, out.split()) == (0, ["1", "box1"])


async def test_host_pids_invisible(rootfs):
    code, out = await run(rootfs, ["sh", "-c", "ls /proc | grep '^[0-9]'"])
    pids = out.split()
    assert code == 0 and 1 <= len(pids) <= 3, pids


async def test_default_capabilities(rootfs):
    code, out = await run(rootfs, ["grep", "-E", "^Cap(Eff|Bnd|Inh|Amb)", "/proc/self/status"])
    caps = dict(line.split(":\t") for line in out.strip().splitlines())
    assert caps == {"CapInh": "0000000000000000", "CapEff": "00000000a80425fb",
                    "CapBnd": "00000000a80425fb", "CapAmb": "0000000000000000"}


async def test_masked_and_readonly_paths(rootfs):
    # /proc/kcore does not exist on every kernel (this VM's has none): check a masked file
    # that does, /proc/keys (non-empty on the host), plus kcore when present.
    masked_file = "/proc/kcore" if os.path.exists("/proc/kcore") else "/proc/keys"
    code, out = await run(rootfs, ["sh", "-c", f"wc -c < {masked_file}; ls /sys/firmware | wc -l; "
                                               "grep -E ' /(sys|proc/sys) ' /proc/mounts"])
    lines = out.strip().splitlines()
    assert lines[0].strip() == "0" and lines[1].strip() == "0", out
    mounts = {line.split()[1]: line.split()[3].split(",") for line in lines[2:]}
    assert "ro" in mounts["/sys"] and "ro" in mounts["/proc/sys"], mounts
    code, out = await run(rootfs, ["sh", "-c", "echo 1 > /proc/sys/vm/drop_caches"])
    assert code != 0 and "Read-only" in out


async def test_dev_and_default_mounts(rootfs):
    code, out = await run(rootfs, ["sh", "-c", "ls -l /dev/null /dev/ptmx /dev/fd; grep -E ' /dev(/shm|/pts|/mqueue)? ' /proc/mounts"])
    assert code == 0, out
    assert "crw-rw-rw-" in out and "/dev/ptmx -> pts/ptmx" in out and "/dev/fd -> /proc/self/fd" in out
    assert "devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666" in out
    assert "shm /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k" in out
    # /dev/core only where the kernel has the /proc/kcore it points to
    code, out = await run(rootfs, ["sh", "-c", "test -L /dev/core && echo link || echo none"])
    assert out.strip() == ("link" if os.path.exists("/proc/kcore") else "none")


async def test_missing_executable(rootfs):
    with pytest.raises(SpawnError) as info:
        await run(rootfs, ["nosuchcmd"])
    assert info.value.exit_code == 127
    assert info.value.message == 'exec: "nosuchcmd": executable file not found in $PATH'
    with pytest.raises(SpawnError) as info:
        await run(rootfs, ["/x"])
    assert info.value.exit_code == 127
    assert info.value.message == 'exec: "/x": stat /x: no such file or directory'


async def test_not_executable(rootfs):
    with pytest.raises(SpawnError) as info:
        await run(rootfs, ["/etc/passwd"])
    assert info.value.exit_code == 126
    assert info.value.message == 'exec: "/etc/passwd": permission denied'


async def test_user_switch(rootfs):
    code, out = await run(rootfs, ["sh", "-c", "id -u; id -g; grep CapEff /proc/self/status"], uid=65534, gid=65534)
    assert code == 0
    assert out.split() == ["65534", "65534", "CapEff:", "0000000000000000"]


async def test_cwd_created(rootfs):
    assert await run(rootfs, ["pwd"], cwd="/work/dir") == (0, "/work/dir\n")


async def test_readonly_rootfs(rootfs):
    code, out = await run(rootfs, ["touch", "/newfile"], readonly_rootfs=True)
    assert code != 0 and "Read-only file system" in out
    # /dev/shm and /tmp-like mounts stay writable
    code, out = await run(rootfs, ["touch", "/dev/shm/ok"], readonly_rootfs=True)
    assert code == 0, out


async def test_bind_mount_file_and_symlink_escape(rootfs, tmp_path):
    host_file = tmp_path / "hostfile"
    host_file.write_text("from host\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    # A symlink that points out of the rootfs must resolve inside it.
    os.symlink(str(outside), os.path.join(rootfs, "escape"))
    mounts = (MountSpec("/proc", "proc", "proc"), MountSpec("/etc/injected", "bind", str(host_file), ("rbind", "ro")),
              MountSpec("/escape/tmpfs", "tmpfs", "tmpfs"))
    code, out = await run(rootfs, ["sh", "-c", "cat /etc/injected; echo x > /etc/injected"], mounts=mounts)
    assert "from host" in out and "Read-only" in out
    assert not (outside / "tmpfs").exists()


async def test_mount_points_made_in_the_root_only(rootfs, tmp_path):
    """A missing mount point is made inside the rootfs whatever symlinks are on its way: its
    last component only (the usual case), under a link to a host directory (made inside the
    root, not on the host), and at a dangling link (its target is made, inside the root)."""
    host_dir = tmp_path / "hostdir"
    host_dir.mkdir()
    os.symlink(str(host_dir), os.path.join(rootfs, "tohost"))
    os.symlink("/made/here", os.path.join(rootfs, "dangling"))
    mounts = (MountSpec("/proc", "proc", "proc"), MountSpec("/tmp/new", "tmpfs", "tmpfs"),
              MountSpec("/tohost/new", "tmpfs", "tmpfs"), MountSpec("/dangling", "tmpfs", "tmpfs"))
    script = "grep -c tmpfs /proc/mounts; ls -d /tmp/new /made/here " + str(host_dir) + "/new"
    code, out = await run(rootfs, ["sh", "-c", script], mounts=mounts)
    assert code == 0, out
    assert not (host_dir / "new").exists()
    assert os.path.isdir(os.path.join(rootfs, "made", "here"))
    assert os.path.isdir(os.path.join(rootfs, "tmp", "new"))


async def test_tty(rootfs):
    spec = make_spec(rootfs, ["sh", "-c", "tty; stty size"], terminal_size=(30, 100))
    proc = await spawn_container(spec, Stdio(tty=True))
    assert proc.pty_master is not None
    out = await read_all(proc.pty_master)
    assert await proc.wait() == 0
    proc.close()
    assert out.decode().split() == ["/dev/pts/0", "30", "100"]


async def test_exec_joins_container(rootfs):
    ctr = await spawn_container(make_spec(rootfs, ["sleep", "1000"], hostname="execbox"), Stdio())
    try:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        placed = []

        async def prepare(pid):
            placed.append(pid)

        try:
            proc = await spawn_exec(ctr.pid, ProcessSpec(args=["sh", "-c", "hostname; ps -o pid,comm"], env=ENV),
                                    Stdio(stdout=out_w, stderr=out_w), prepare=prepare)
        finally:
            os.close(out_w)
        out = (await read_all(out_r)).decode()
        assert await proc.wait() == 0
        assert placed == [proc.pid]
        proc.close()
        lines = out.strip().splitlines()
        assert lines[0] == "execbox"
        table = dict(line.split(None, 1) for line in lines[2:])
        assert table["1"] == "sleep", out

        # exec errors use Docker's messages too
        with pytest.raises(SpawnError) as info:
            await spawn_exec(ctr.pid, ProcessSpec(args=["nope"], env=ENV), Stdio())
        assert info.value.exit_code == 127

        # exec with a tty gets a pty from the container's devpts
        proc = await spawn_exec(ctr.pid, ProcessSpec(args=["tty"], env=ENV), Stdio(tty=True))
        out = (await read_all(proc.pty_master)).decode()
        assert await proc.wait() == 0
        proc.close()
        assert out.strip().startswith("/dev/pts/")
    finally:
        ctr.send_signal(signal.SIGKILL)
        assert await ctr.wait() == 128 + signal.SIGKILL
        ctr.close()


async def test_prepare_failure_kills_child(rootfs):
    seen = []

    async def prepare(pid):
        seen.append(pid)
        raise ValueError("no cgroup for you")

    with pytest.raises(ValueError):
        await run(rootfs, ["sleep", "1000"], prepare=prepare)
    assert seen
    with pytest.raises(ProcessLookupError):
        os.kill(seen[0], 0)


async def test_prepare_cancelled_kills_child(rootfs):
    seen = []

    async def prepare(pid):
        seen.append(pid)
        await trio.sleep_forever()

    with trio.move_on_after(0.2):
        await run(rootfs, ["sleep", "1000"], prepare=prepare)
    assert seen
    with pytest.raises(ProcessLookupError):
        os.kill(seen[0], 0)


async def test_child_joins_its_v1_cgroups_itself(rootfs):
    """cgroup v1: the child writes itself into each hierarchy's `tasks` before anything else,
    so no prepare step places it; a cgroup it cannot join fails the start with step "cgroup"."""
    from engine.runtime import cgroups

    if cgroups.detect_mode() != "v1":
        pytest.skip("cgroup v1 only (v2 is placed through cgroup.procs)")
    parent = f"pe-test-join-{os.getpid()}"
    m = cgroups.for_container(parent, "c1")
    m.create(cgroups.Resources())
    try:
        spec = make_spec(rootfs, ["sleep", "1000"], cgroup_tasks=m.self_join_files())
        proc = await spawn_container(spec, Stdio())
        try:
            assert m.pids() == [proc.pid]
            with open(f"/proc/{proc.pid}/cgroup") as f:
                paths = {line.split(":", 2)[2].strip() for line in f if line.split(":", 2)[1]}
            assert paths == {f"/{parent}/c1"} or all(p.endswith(f"/{parent}/c1") for p in paths)
        finally:
            proc.kill()
            await proc.wait()
            proc.close()
        missing = m.self_join_files()[:1] + [os.path.join(os.path.dirname(m.dirs()[0]), "gone", "tasks")]
        with pytest.raises(SpawnError) as info:
            await run_spec(make_spec(rootfs, ["true"], cgroup_tasks=missing))
        assert info.value.step == "cgroup" and "gone" in info.value.message
    finally:
        m.destroy()
        cgroups.remove_parent(parent)


async def test_signals(rootfs):
    proc = await spawn_container(make_spec(rootfs, ["sleep", "1000"]), Stdio())
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == 137
    assert await proc.wait() == 137  # idempotent
    proc.send_signal(signal.SIGTERM)  # after exit: ignored
    proc.close()

    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = await spawn_container(
            make_spec(rootfs, ["sh", "-c", "trap 'echo got; exit 3' TERM; echo ready; while :; do sleep 0.05; done"]),
            Stdio(stdout=out_w))
    finally:
        os.close(out_w)
    async with trio.lowlevel.FdStream(out_r) as stream:
        assert await stream.receive_some(100) == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert await proc.wait() == 3
    proc.close()


def _signal_mask(status: str, field: str) -> int:
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field + ":")), 16)


async def test_exec_signals_blocked(rootfs):
    """ProcessSpec.exec_signals_blocked (an init taking its signals with sigwaitinfo): the
    process starts with every signal blocked, so a SIGTERM sent before it looked is pending,
    not dropped (the kernel drops it for PID 1 of a namespace with SIGTERM's default action)."""
    code, out = await run(rootfs, ["cat", "/proc/self/status"], exec_signals_blocked=True)
    assert code == 0
    assert _signal_mask(out, "SigBlk") & (1 << (signal.SIGTERM - 1))
    assert _signal_mask(out, "SigBlk") & (1 << (signal.SIGINT - 1))
    code, out = await run(rootfs, ["cat", "/proc/self/status"])
    assert (code, _signal_mask(out, "SigBlk")) == (0, 0)

    # Sent while nothing takes it: pending, and the process still runs.
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = await spawn_container(make_spec(rootfs, ["sh", "-c", "echo ready; sleep 1000"], exec_signals_blocked=True),
                                     Stdio(stdout=out_w))
    finally:
        os.close(out_w)
    try:
        async with trio.lowlevel.FdStream(out_r) as stream:
            assert await stream.receive_some(100) == b"ready\n"
            proc.send_signal(signal.SIGTERM)
            with open(f"/proc/{proc.pid}/status") as f:
                status = f.read()
            assert _signal_mask(status, "ShdPnd") & (1 << (signal.SIGTERM - 1))
    finally:
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == 137
        proc.close()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _mountinfo(under: str = "/") -> list[str]:
    """Mount points below `under` (other tests' daemons may mount elsewhere meanwhile)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(under)]


async def test_no_leaks(busybox_root, tmp_path):
    # warm up (imports, trio's wakeup fds)
    before_fds, before_mounts = None, None
    for i in range(51):
        if i == 1:
            before_fds, before_mounts = _fds(), _mountinfo(str(tmp_path))
        d = tmp_path / f"c{i}"
        upper, work, merged = d / "upper", d / "work", d / "merged"
        for x in (upper, work, merged):
            x.mkdir(parents=True)
        await trio.to_thread.run_sync(mount_overlay, [busybox_root], str(upper), str(work), str(merged))
        try:
            if i % 10 == 5:
                with pytest.raises(SpawnError):
                    await run(str(merged), ["missing"])
            else:
                assert await run(str(merged), ["true"]) == (0, "")
        finally:
            await trio.to_thread.run_sync(unmount, str(merged))
    assert _fds() == before_fds
    assert _mountinfo(str(tmp_path)) == before_mounts


async def test_only_stdio_fds_inherited(rootfs):
    keep_r, keep_w = os.pipe()  # not CLOEXEC in the daemon: must still not reach the container
    try:
        code, out = await run(rootfs, ["ls", "/proc/self/fd"])
    finally:
        os.close(keep_r)
        os.close(keep_w)
    assert code == 0 and sorted(out.split()) == ["0", "1", "2", "3"]  # 3 = ls's own dir fd


async def test_join_pid_and_net_namespace(rootfs, busybox_root, tmp_path):
    ctr = await spawn_container(make_spec(rootfs, ["sleep", "1000"], hostname="first"), Stdio())
    d = tmp_path / "second"
    upper, work, merged = d / "upper", d / "work", d / "merged"
    for x in (upper, work, merged):
        x.mkdir(parents=True)
    mount_overlay([busybox_root], str(upper), str(work), str(merged))
    try:
        ns = {"mnt": None, "uts": None, "ipc": None, "cgroup": None,
              "pid": f"/proc/{ctr.pid}/ns/pid", "net": f"/proc/{ctr.pid}/ns/net"}
        code, out = await run(str(merged), ["sh", "-c", "ps -o pid,comm; readlink /proc/1/ns/net; readlink /proc/self/ns/net"],
                              namespaces=ns)
        assert code == 0, out
        lines = out.strip().splitlines()
        assert "1 sleep" in [" ".join(line.split()) for line in lines], out
        assert lines[-1] == lines[-2]  # same net namespace as the first container
    finally:
        ctr.send_signal(signal.SIGKILL)
        await ctr.wait()
        ctr.close()
        unmount(str(merged))


async def test_concurrent_spawns(busybox_root, tmp_path):
    roots = []
    for i in range(8):
        d = tmp_path / f"p{i}"
        upper, work, merged = d / "upper", d / "work", d / "merged"
        for x in (upper, work, merged):
            x.mkdir(parents=True)
        mount_overlay([busybox_root], str(upper), str(work), str(merged))
        roots.append(str(merged))
    results = {}
    try:
        async def one(i):
            async def prepare(pid):
                await trio.sleep(0.01 * (i % 3))

            results[i] = await run(roots[i], ["sh", "-c", f"echo {i}; hostname"], prepare=prepare, hostname=f"h{i}")

        async with trio.open_nursery() as nursery:
            for i in range(len(roots)):
                nursery.start_soon(one, i)
    finally:
        for r in roots:
            unmount(r)
    assert results == {i: (0, f"{i}\nh{i}\n") for i in range(len(roots))}


async def test_exec_prepare_cancelled(rootfs):
    ctr = await spawn_container(make_spec(rootfs, ["sleep", "1000"]), Stdio())
    try:
        seen = []

        async def prepare(pid):
            seen.append(pid)
            await trio.sleep_forever()

        with trio.move_on_after(0.2):
            await spawn_exec(ctr.pid, ProcessSpec(args=["sleep", "1000"], env=ENV), Stdio(), prepare=prepare)
        assert seen
        with pytest.raises(ProcessLookupError):
            os.kill(seen[0], 0)  # killed and reaped: not even a zombie
        assert os.waitpid(-1, os.WNOHANG) == (0, 0)  # only ctr (alive) is left as our child
    finally:
        ctr.send_signal(signal.SIGKILL)
        await ctr.wait()
        ctr.close()


async def test_spawner_go_start_given_up_does_not_run_on(rootfs, tmp_path):
    """With nothing to prepare the spawner lets the child go itself and answers after its
    exec (one round trip). A start given up before that answer (here the child is held before
    its exec: it joins a frozen cgroup) is killed by the RELEASE that follows: it never runs
    its command. A start that completes answers with a process the daemon can wait for."""
    from engine.runtime import cgroups
    from engine.runtime.spawner import SpawnerRuntime

    if cgroups.detect_mode() != "v1":
        pytest.skip("holds the child in a frozen v1 freezer cgroup")
    parent = f"pe-test-go-{os.getpid()}"
    m = cgroups.for_container(parent, "c1")
    m.create(cgroups.Resources())
    runtime = SpawnerRuntime(str(tmp_path / "spawner"), live_restore=False)
    os.makedirs(runtime.socket_path.rsplit("/", 1)[0])
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            try:
                m.freeze()
                marker = os.path.join(rootfs, "ran")
                spec = make_spec(rootfs, ["touch", "/ran"], cgroup_tasks=m.self_join_files())
                def held() -> list[str]:  # it stops in the freezer, maybe before joining the rest
                    with open(os.path.join(m.path("freezer"), "cgroup.procs")) as f:
                        return f.read().split()

                with trio.CancelScope() as scope:
                    async with trio.open_nursery() as starting:
                        starting.start_soon(runtime.spawn_container, "c1", spec, Stdio())
                        with trio.fail_after(10):
                            while len(held()) != 1:  # held before its exec
                                await trio.sleep(0.01)
                        scope.cancel()
                with trio.fail_after(10):
                    m.thaw()
                    while held():
                        await trio.sleep(0.01)
                assert not os.path.exists(marker)

                proc = await runtime.spawn_container("c2", make_spec(rootfs, ["sh", "-c", "exit 7"]), Stdio())
                assert await proc.wait() == 7
                proc.close()
                await runtime.release("c2", proc.pid)
            finally:
                await runtime.aclose(stop=True)
    finally:
        m.thaw()
        m.destroy()
        cgroups.remove_parent(parent)

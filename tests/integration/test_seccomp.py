"""seccomp in real containers: the runtime with a compiled profile, and Docker's semantics
(default profile, seccomp=unconfined, --privileged, custom JSON profiles, docker exec) through
the API with docker-py."""
from __future__ import annotations

import json
import os
import signal

import attrs
import pytest

from engine.runtime import ProcessSpec, SpawnError, Stdio, seccomp, seccomp_program, spawn_container, spawn_exec
from engine.runtime.caps import DEFAULT_CAPABILITIES
from tests.conftest import needs_root
from tests.integration.test_runtime import ENV, busybox_root, make_spec, read_all, rootfs, run, run_spec  # noqa: F401

pytestmark = needs_root

DEFAULT_BPF = seccomp_program([], False, DEFAULT_CAPABILITIES)


def seccomp_mode(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("Seccomp:"))


# ───────────────────────────── runtime ─────────────────────────────

async def test_runtime_default_profile(rootfs):
    spec = make_spec(rootfs, ["sh", "-c", "grep -E '^Seccomp(_filters)?:' /proc/self/status; unshare -U true; echo rc=$?"])
    spec = _with_bpf(spec, DEFAULT_BPF)
    code, out = await run_spec(spec)
    assert code == 0, out
    assert seccomp_mode(out) == "2"
    assert "Seccomp_filters:\t1" in out
    assert "Operation not permitted" in out and "rc=1" in out


async def test_runtime_without_filter(rootfs):
    code, out = await run(rootfs, ["sh", "-c", "grep '^Seccomp:' /proc/self/status; unshare -U true; echo rc=$?"])
    assert code == 0, out
    assert seccomp_mode(out) == "0"
    assert "rc=0" in out


async def test_runtime_non_root_user_gets_filter_without_extra_caps(rootfs):
    # The child holds CAP_SYS_ADMIN only until the filter is in: nothing of it after execve.
    spec = _with_bpf(make_spec(rootfs, ["sh", "-c", "grep -E '^(Seccomp|Cap(Eff|Prm|Bnd)):' /proc/self/status"],
                               uid=65534, gid=65534), DEFAULT_BPF)
    code, out = await run_spec(spec)
    assert code == 0, out
    status = dict(line.split(":\t") for line in out.strip().splitlines())
    assert status == {"Seccomp": "2", "CapEff": "0000000000000000", "CapPrm": "0000000000000000",
                      "CapBnd": "00000000a80425fb"}, out
    spec = _with_bpf(make_spec(rootfs, ["grep", "-E", "^Cap(Eff|Prm|Bnd):", "/proc/self/status"]), DEFAULT_BPF)
    code, out = await run_spec(spec)
    status = dict(line.split(":\t") for line in out.strip().splitlines())
    assert status == {"CapEff": "00000000a80425fb", "CapPrm": "00000000a80425fb", "CapBnd": "00000000a80425fb"}


async def test_runtime_no_new_privileges_with_filter(rootfs):
    spec = make_spec(rootfs, ["grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"])
    spec = _with_bpf(spec, DEFAULT_BPF, no_new_privileges=True)
    code, out = await run_spec(spec)
    assert code == 0 and "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out, out


async def test_runtime_exec_inherits_filter(rootfs):
    ctr = await spawn_container(_with_bpf(make_spec(rootfs, ["sleep", "1000"]), DEFAULT_BPF), Stdio())
    try:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            proc = await spawn_exec(ctr.pid, ProcessSpec(args=["sh", "-c", "grep '^Seccomp:' /proc/self/status; unshare -U true; echo rc=$?"],
                                                         env=ENV, seccomp_bpf=DEFAULT_BPF),
                                    Stdio(stdout=out_w, stderr=out_w))
        finally:
            os.close(out_w)
        out = (await read_all(out_r)).decode()
        assert await proc.wait() == 0
        proc.close()
        assert seccomp_mode(out) == "2" and "rc=1" in out, out
    finally:
        ctr.send_signal(signal.SIGKILL)
        await ctr.wait()
        ctr.close()


async def test_runtime_bad_program_is_reported(rootfs):
    bad = seccomp.INSN.pack(0xFFFF, 0, 0, 0)  # not a BPF opcode: the kernel refuses it
    with pytest.raises(SpawnError) as info:
        await run_spec(_with_bpf(make_spec(rootfs, ["true"]), bad))
    assert info.value.step == "seccomp"


def _with_bpf(spec, bpf, **process_kw):
    return attrs.evolve(spec, process=attrs.evolve(spec.process, seccomp_bpf=bpf, **process_kw))


# ───────────────────────────── through the API ─────────────────────────────

def drun(client, cmd, security_opt=None, **host_kw):
    host_config = client.create_host_config(security_opt=security_opt, **host_kw)
    cid = client.create_container("busybox", cmd, host_config=host_config)["Id"]
    client.start(cid)
    code = client.wait(cid, timeout=60)["StatusCode"]
    out = client.logs(cid).decode()
    client.remove_container(cid, force=True)
    return code, out


PROBE = "grep '^Seccomp:' /proc/self/status; unshare -U true; echo rc=$?"


def test_api_default_profile(dclient):
    code, out = drun(dclient, ["sh", "-c", PROBE])
    assert code == 0, out
    assert seccomp_mode(out) == "2"
    assert "Operation not permitted" in out and "rc=1" in out


def test_api_unconfined(dclient):
    code, out = drun(dclient, ["sh", "-c", PROBE], security_opt=["seccomp=unconfined"])
    assert code == 0, out
    assert seccomp_mode(out) == "0" and "rc=0" in out


def test_api_privileged(dclient):
    code, out = drun(dclient, ["sh", "-c", "grep '^Seccomp:' /proc/self/status"], privileged=True)
    assert code == 0 and seccomp_mode(out) == "0", out


def test_api_cap_sys_admin_allows_unshare(dclient):
    code, out = drun(dclient, ["sh", "-c", PROBE], cap_add=["SYS_ADMIN"])
    assert code == 0 and seccomp_mode(out) == "2" and "rc=0" in out, out


def test_api_busybox_commands_still_work(dclient):
    script = ("set -e; ls / >/dev/null; ps >/dev/null; date >/dev/null; wget -h 2>/dev/null || true; "
              "dd if=/dev/zero of=/tmp/x bs=1k count=16 2>/dev/null; test $(wc -c < /tmp/x) = 16384; "
              "sh -c 'exit 0' & wait; sleep 0.01; id -u; echo ok")
    code, out = drun(dclient, ["sh", "-c", script])
    assert code == 0 and out.strip().endswith("0\nok"), out


def test_api_custom_profile(dclient, tmp_path):
    # The docker CLI sends the file's content; our own CLI may send a path on the daemon host.
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    script = "grep '^Seccomp:' /proc/self/status; mkdir /tmp/d; echo rc=$?"
    code, out = drun(dclient, ["sh", "-c", script], security_opt=["seccomp=" + json.dumps(profile)])
    assert seccomp_mode(out) == "2" and "Permission denied" in out and "rc=1" in out, out
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    code, out = drun(dclient, ["sh", "-c", script], security_opt=[f"seccomp={path}"])
    assert "Permission denied" in out and "rc=1" in out, out


def test_api_bad_profile_rejected(dclient):
    import docker

    host_config = dclient.create_host_config(security_opt=["seccomp={not json"])
    cid = dclient.create_container("busybox", ["true"], host_config=host_config)["Id"]
    with pytest.raises(docker.errors.APIError) as info:
        dclient.start(cid)
    assert info.value.status_code == 400 and "seccomp" in str(info.value)
    dclient.remove_container(cid, force=True)


def test_api_exec_inherits_profile(dclient):
    cid = dclient.create_container("busybox", ["sleep", "1000"])["Id"]
    try:
        dclient.start(cid)
        exec_id = dclient.exec_create(cid, ["sh", "-c", PROBE])["Id"]
        out = dclient.exec_start(exec_id).decode()
        assert seccomp_mode(out) == "2" and "rc=1" in out, out
    finally:
        dclient.remove_container(cid, force=True)
    cid = dclient.create_container("busybox", ["sleep", "1000"],
                                   host_config=dclient.create_host_config(security_opt=["seccomp=unconfined"]))["Id"]
    try:
        dclient.start(cid)
        exec_id = dclient.exec_create(cid, ["sh", "-c", PROBE])["Id"]
        out = dclient.exec_start(exec_id).decode()
        assert seccomp_mode(out) == "0" and "rc=0" in out, out
    finally:
        dclient.remove_container(cid, force=True)

"""engine.runtime.seccomp without a kernel: the compiled BPF is run by a small classic-BPF
interpreter here and compared with the profile's meaning."""
from __future__ import annotations

import errno
import json
import os
import random
import re
import struct

import pytest

from engine import errors
from engine.runtime import seccomp as sc
from engine.runtime.caps import ALL_CAPABILITIES, DEFAULT_CAPABILITIES

AUDIT_ARCH_I386 = 0x40000003
ALLOW = sc.RET_ALLOW
EPERM = sc.errno_action(errno.EPERM)
ENOSYS = sc.errno_action(errno.ENOSYS)
NR = sc.SYSCALLS_X86_64
DEFAULT_CAPS = frozenset(DEFAULT_CAPABILITIES)
REFERENCE = "/work/shared/reference/seccomp-default.json"  # dev machines only


def run_bpf(program: bytes, nr: int, args=(0,) * 6, arch: int = sc.AUDIT_ARCH_X86_64) -> int:
    """Execute a classic BPF seccomp program on one struct seccomp_data."""
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    insns = sc.disassemble(program)
    pc, acc, steps = 0, 0, 0
    while True:
        steps += 1
        assert steps <= len(insns), "loop?"
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == 0x54:  # and #k
            acc &= k
        elif code == 0x05:  # ja
            pc += k
        elif code in (0x15, 0x25, 0x35):
            cond = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k}[code]
            pc += jt if cond else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def default_program(caps=DEFAULT_CAPS) -> bytes:
    return sc.compile_profile(sc.DEFAULT_PROFILE, frozenset(caps))


def test_program_shape():
    prog = default_program()
    insns = sc.disassemble(prog)
    assert len(prog) % 8 == 0 and 20 < len(insns) < 400
    # arch check first, then the syscall number
    assert insns[0] == (0x20, 0, 0, 4)
    assert insns[1][0] == 0x15 and insns[1][3] == sc.AUDIT_ARCH_X86_64
    assert insns[2] == (0x06, 0, 0, sc.RET_KILL_PROCESS)
    assert insns[3] == (0x20, 0, 0, 0)
    assert insns[-1][0] == 0x06


def test_syscall_table_matches_kernel_headers():
    header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
    if not os.path.exists(header):
        header = "/usr/include/asm/unistd_64.h"
    if not os.path.exists(header):
        pytest.skip("no kernel headers")
    found = {}
    with open(header) as f:
        for line in f:
            m = re.match(r"#define __NR_(\w+)\s+(\d+)", line)
            if m:
                found[m.group(1)] = int(m.group(2))
    assert found and all(NR[name] == nr for name, nr in found.items())
    assert len(set(NR.values())) == len(NR)


def test_default_profile_verdicts():
    prog = default_program()
    assert run_bpf(prog, NR["read"]) == ALLOW
    assert run_bpf(prog, NR["execve"]) == ALLOW
    assert run_bpf(prog, NR["arch_prctl"]) == ALLOW
    for name in ("keyctl", "add_key", "unshare", "setns", "mount", "reboot", "kexec_load", "bpf",
                 "process_vm_readv", "userfaultfd", "pivot_root"):
        assert run_bpf(prog, NR[name]) == EPERM, name
    assert run_bpf(prog, NR["ptrace"]) == ALLOW  # minKernel 4.8
    assert run_bpf(prog, NR["clone3"]) == ENOSYS  # libc falls back to clone
    # clone without namespace flags only
    assert run_bpf(prog, NR["clone"], (0x11 | 0x3D0F00,)) == ALLOW  # SIGCHLD | thread flags
    assert run_bpf(prog, NR["clone"], (0x11 | 0x10000000,)) == EPERM  # CLONE_NEWUSER
    assert run_bpf(prog, NR["clone"], (0x11 | 0x20000,)) == EPERM  # CLONE_NEWNS
    assert run_bpf(prog, NR["clone"], (0x11 | (1 << 40),)) == ALLOW  # high bits are not in the mask
    # personality: only the listed personas
    for persona in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert run_bpf(prog, NR["personality"], (persona,)) == ALLOW, hex(persona)
    for persona in (1, 0x0400000, 0xFFFFFFFFFFFFFFFF, 1 << 32):
        assert run_bpf(prog, NR["personality"], (persona,)) == EPERM, hex(persona)


def test_beyond_profile_other_abis():
    prog = default_program()
    # syscalls newer than the profile: ENOSYS, so libc falls back (runc does the same)
    assert run_bpf(prog, NR["fchmodat2"]) == ENOSYS
    assert run_bpf(prog, NR["listns"]) == ENOSYS
    assert run_bpf(prog, 100000) == ENOSYS
    # x32 ABI (syscall number with bit 30) never reaches the allow-list
    assert run_bpf(prog, sc.X32_SYSCALL_BIT | NR["read"]) == ENOSYS
    assert run_bpf(prog, sc.X32_SYSCALL_BIT | 520) == ENOSYS
    # i386 (int 0x80): killed
    assert run_bpf(prog, 1, arch=AUDIT_ARCH_I386) == sc.RET_KILL_PROCESS
    # a number inside the table the profile does not name
    assert run_bpf(prog, NR["set_mempolicy_home_node"]) in (EPERM, ENOSYS)


def test_capabilities_change_the_program():
    admin = default_program(DEFAULT_CAPS | {"CAP_SYS_ADMIN"})
    assert run_bpf(admin, NR["unshare"]) == ALLOW
    assert run_bpf(admin, NR["mount"]) == ALLOW
    assert run_bpf(admin, NR["clone3"]) == ALLOW
    assert run_bpf(admin, NR["clone"], (0x10000000,)) == ALLOW
    assert run_bpf(admin, NR["keyctl"]) == EPERM
    everything = default_program(ALL_CAPABILITIES)
    for name in ("reboot", "init_module", "iopl", "settimeofday", "syslog", "open_by_handle_at", "ptrace", "acct"):
        assert run_bpf(everything, NR[name]) == ALLOW, name
    assert run_bpf(default_program(), NR["chroot"]) == ALLOW  # CAP_SYS_CHROOT is a default
    assert run_bpf(default_program(DEFAULT_CAPS - {"CAP_SYS_CHROOT"}), NR["chroot"]) == EPERM


def test_every_syscall_matches_the_profile_meaning():
    """Exhaustive: the compiled program agrees with a direct reading of the profile."""
    for caps in (DEFAULT_CAPS, frozenset(ALL_CAPABILITIES), frozenset()):
        prog = default_program(caps)
        allowed = set()
        for rule in sc.DEFAULT_PROFILE.rules:
            if rule.applies(caps, "amd64", (6, 1)) and not rule.args and rule.action == ALLOW:
                allowed |= {NR[n] for n in rule.names if n in NR}
        top = max(NR[n] for r in sc.DEFAULT_PROFILE.rules for n in r.names if n in NR)
        for name, nr in NR.items():
            got = run_bpf(prog, nr)
            if nr > top:
                assert got == ENOSYS, name
            elif nr in allowed:
                assert got == ALLOW, name
            elif name not in ("clone", "clone3", "personality"):
                assert got == EPERM, (name, sorted(caps))


@pytest.mark.skipif(not os.path.exists(REFERENCE), reason="Docker's profile is not on this machine")
def test_same_program_as_dockers_json():
    with open(REFERENCE) as f:
        text = f.read()
    docker = sc.load_profile(text)
    for caps in (DEFAULT_CAPS, frozenset(ALL_CAPABILITIES), DEFAULT_CAPS | {"CAP_SYS_ADMIN"}, frozenset()):
        assert sc.compile_profile(docker, caps) == sc.compile_profile(sc.DEFAULT_PROFILE, caps)


def test_argument_operators_64bit():
    ops = ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_GE"]
    rng = random.Random(7)
    values = [0, 1, 5, 0xFFFFFFFF, 1 << 32, (1 << 32) + 5, 0xFFFFFFFFFFFFFFFF, 0x100000000FFFFFFFF & (2**64 - 1)]
    values += [rng.getrandbits(64) for _ in range(4)]
    for op in ops:
        for v in values:
            profile = sc.load_profile(json.dumps({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 2, "value": v, "op": op}]}],
            }))
            prog = sc.compile_profile(profile, frozenset())
            for x in values + [v - 1 & (2**64 - 1), v + 1 & (2**64 - 1)]:
                want = {"SCMP_CMP_EQ": x == v, "SCMP_CMP_NE": x != v, "SCMP_CMP_LT": x < v,
                        "SCMP_CMP_LE": x <= v, "SCMP_CMP_GT": x > v, "SCMP_CMP_GE": x >= v}[op]
                assert run_bpf(prog, NR["lseek"], (0, 0, x)) == (ALLOW if want else EPERM), (op, hex(v), hex(x))
    profile = sc.load_profile(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
             "args": [{"index": 0, "value": 0xFF00000000000F, "valueTwo": 0x10000000000005, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"name": "mkdir", "action": "SCMP_ACT_KILL_PROCESS"},
        ],
    }))
    prog = sc.compile_profile(profile, frozenset())
    assert run_bpf(prog, NR["socket"], (0x10000000000005,)) == sc.errno_action(97)
    assert run_bpf(prog, NR["socket"], (0x100000000000F5,)) == sc.errno_action(97)
    assert run_bpf(prog, NR["socket"], (5,)) == ALLOW
    assert run_bpf(prog, NR["mkdir"]) == sc.RET_KILL_PROCESS
    assert run_bpf(prog, NR["read"]) == ALLOW


def test_conditional_rule_over_unconditional_one():
    # "allow socket, except AF_NETLINK": the argument rule wins, the plain rule is the fallback
    profile = sc.load_profile(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}],
    }))
    prog = sc.compile_profile(profile, frozenset())
    assert run_bpf(prog, NR["socket"], (2,)) == ALLOW
    assert run_bpf(prog, NR["socket"], (16,)) == EPERM


def test_long_jumps_use_ja():
    # Many argument rules make big leaves: branches further than 255 instructions need `ja`.
    names = list(NR)[:200]
    calls = [{"names": [name], "action": "SCMP_ACT_ALLOW",
              "args": [{"index": 0, "value": 3 * NR[name] + i, "op": "SCMP_CMP_EQ"}]}
             for name in names for i in range(3)]
    profile = sc.load_profile(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": calls}))
    prog = sc.compile_profile(profile, frozenset())
    assert any(code == 0x05 for code, *_ in sc.disassemble(prog))
    for name in names[::7]:
        nr = NR[name]
        assert run_bpf(prog, nr, (3 * nr + 2,)) == ALLOW
        assert run_bpf(prog, nr, (3 * nr + 3,)) == EPERM


def test_program_for_docker_options(tmp_path):
    default = sc.program_for([], False, DEFAULT_CAPABILITIES)
    assert sc.program_for(None, False, DEFAULT_CAPABILITIES) is default  # cached: free on the hot path
    assert sc.program_for(["seccomp=builtin"], False, DEFAULT_CAPABILITIES) is default
    assert sc.program_for(["no-new-privileges"], False, list(DEFAULT_CAPABILITIES)) is default
    assert sc.program_for(["seccomp=unconfined"], False, DEFAULT_CAPABILITIES) is None
    assert sc.program_for(["seccomp:unconfined"], False, DEFAULT_CAPABILITIES) is None
    assert sc.program_for([], True, ALL_CAPABILITIES) is None
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    inline = sc.program_for(["seccomp=" + json.dumps(profile)], False, DEFAULT_CAPABILITIES)
    assert run_bpf(inline, NR["mkdir"]) == EPERM and run_bpf(inline, NR["keyctl"]) == ALLOW
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    assert sc.program_for([f"seccomp={path}"], False, DEFAULT_CAPABILITIES) == inline
    with pytest.raises(errors.InvalidParameter):
        sc.program_for(["seccomp={bad"], False, DEFAULT_CAPABILITIES)
    with pytest.raises(errors.InvalidParameter):
        sc.program_for([f"seccomp={tmp_path}/missing.json"], False, DEFAULT_CAPABILITIES)
    with pytest.raises(errors.InvalidParameter):
        sc.program_for(['seccomp={"defaultAction": "SCMP_ACT_NOTIFY"}'], False, DEFAULT_CAPABILITIES)
    with pytest.raises(errors.InvalidParameter):
        sc.program_for(['seccomp={"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}'],
                       False, DEFAULT_CAPABILITIES)


def test_a_container_without_a_seccomp_option_gets_the_daemons_profile(tmp_path):
    from engine.runtime.seccomp import DEFAULT_PROFILE, compile_profile, load_profile, program_for

    text = '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}'
    path = tmp_path / "profile.json"
    path.write_text(text)
    caps = ("CAP_CHOWN",)
    own = compile_profile(load_profile(text), frozenset(caps))
    assert program_for(None, False, caps, str(path)) == own
    assert program_for([], False, caps, "unconfined") is None
    assert program_for(None, False, caps, "") == program_for(None, False, caps, "builtin") \
        == compile_profile(DEFAULT_PROFILE, frozenset(caps))
    # the container's own choice wins over the daemon's
    assert program_for(["seccomp=builtin"], False, caps, str(path)) == compile_profile(DEFAULT_PROFILE, frozenset(caps))
    assert program_for(["seccomp=unconfined"], False, caps, str(path)) is None
    assert program_for(None, True, caps, str(path)) is None  # privileged

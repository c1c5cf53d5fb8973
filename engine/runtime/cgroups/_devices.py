"""Device access rules, the one list both cgroup versions enforce.

v1 writes them to the devices controller (`devices.deny a`, then one `devices.allow` line
per rule). v2 has no such file: the same rules become an eBPF program of type
CGROUP_DEVICE attached to the container's cgroup (what runc's devicefilter does). Every
rule allows; whatever no rule matches is denied."""

from __future__ import annotations

import ctypes
import os
import platform
import re
import struct

import attrs

from engine.errors import InvalidParameter, SystemError_

#: Docker's rule syntax (`--device-cgroup-rule`, HostConfig.DeviceCgroupRules).
_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


@attrs.frozen
class DeviceRule:
    """Allow `access` (subset of "rwm") on devices of `type` ("a" any, "c", "b") with the
    given major/minor (None: any)."""

    type: str
    major: int | None
    minor: int | None
    access: str

    @classmethod
    def parse(cls, text: str) -> "DeviceRule":
        m = _RULE.match(text)
        if not m:
            raise InvalidParameter(f"invalid device cgroup rule format: '{text}'")
        kind, major, minor, access = m.groups()
        return cls(kind, None if major == "*" else int(major), None if minor == "*" else int(minor), access)

    def v1_line(self) -> str:
        star = lambda n: "*" if n is None else str(n)  # noqa: E731
        return f"{self.type} {star(self.major)}:{star(self.minor)} {self.access}"


#: Docker's default rules for an unprivileged container.
DEFAULT_DEVICE_RULES = tuple(DeviceRule.parse(r) for r in (
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",    # /dev/null
    "c 1:5 rwm",    # /dev/zero
    "c 1:7 rwm",    # /dev/full
    "c 1:8 rwm",    # /dev/random
    "c 1:9 rwm",    # /dev/urandom
    "c 5:0 rwm",    # /dev/tty
    "c 5:1 rwm",    # /dev/console
    "c 5:2 rwm",    # /dev/ptmx
    "c 136:* rwm",  # /dev/pts/*
    "c 10:200 rwm", # /dev/net/tun
))
ALLOW_ALL = (DeviceRule("a", None, None, "rwm"),)


# ---- eBPF encoding (linux/bpf.h, linux/bpf_common.h) ----------------------------------------
_LDX_MEM_W = 0x61      # dst = *(u32 *)(src + off)
_ALU32_AND_K = 0x54    # dst &= imm (32-bit)
_ALU32_RSH_K = 0x74    # dst >>= imm (32-bit)
_MOV64_K = 0xb7        # dst = imm
_MOV64_X = 0xbf        # dst = src
_JNE_K = 0x55          # if dst != imm: pc += off
_JNE_X = 0x5d          # if dst != src: pc += off
_EXIT = 0x95

#: struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }
_DEV_TYPE = {"b": 1, "c": 2}              # BPF_DEVCG_DEV_BLOCK / _CHAR
_DEV_ACCESS = {"m": 1, "r": 2, "w": 4}    # BPF_DEVCG_ACC_MKNOD / _READ / _WRITE

_SKIP = object()  # placeholder jump target: the end of the current rule's block


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> tuple:
    return (code, dst, src, off, imm)


def device_filter(rules) -> bytes:
    """The CGROUP_DEVICE program for `rules`: 1 (allow) at the first matching rule, else 0.
    r2 = type, r3 = requested access, r4 = major, r5 = minor; each rule is a block of tests
    that jump past the block on mismatch."""
    program = [
        _insn(_LDX_MEM_W, 2, 1, 0), _insn(_ALU32_AND_K, 2, imm=0xFFFF),
        _insn(_LDX_MEM_W, 3, 1, 0), _insn(_ALU32_RSH_K, 3, imm=16),
        _insn(_LDX_MEM_W, 4, 1, 4),
        _insn(_LDX_MEM_W, 5, 1, 8),
    ]
    for rule in rules:
        block = []
        if rule.type != "a":
            block.append(_insn(_JNE_K, 2, off=_SKIP, imm=_DEV_TYPE[rule.type]))
        mask = sum(_DEV_ACCESS[a] for a in set(rule.access))
        if mask != 7:  # every requested bit must be among the allowed ones
            block += [_insn(_MOV64_X, 1, 3), _insn(_ALU32_AND_K, 1, imm=mask), _insn(_JNE_X, 1, 3, off=_SKIP)]
        if rule.major is not None:
            block.append(_insn(_JNE_K, 4, off=_SKIP, imm=rule.major))
        if rule.minor is not None:
            block.append(_insn(_JNE_K, 5, off=_SKIP, imm=rule.minor))
        block += [_insn(_MOV64_K, 0, imm=1), _insn(_EXIT)]
        for i, (code, dst, src, off, imm) in enumerate(block):
            if off is _SKIP:
                block[i] = (code, dst, src, len(block) - i - 1, imm)
        program += block
    program += [_insn(_MOV64_K, 0, imm=0), _insn(_EXIT)]
    return b"".join(struct.pack("<BBhi", code, (src << 4) | dst, off, imm)
                    for code, dst, src, off, imm in program)


# ---- the bpf(2) syscall -------------------------------------------------------------------
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}
_BPF_PROG_LOAD, _BPF_PROG_ATTACH = 5, 8
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_BPF_F_ALLOW_MULTI = 2  # a parent's filter (systemd's, say) still applies as well
_libc = ctypes.CDLL(None, use_errno=True)


def _bpf(cmd: int, attr: bytes) -> int:
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise SystemError_(f"device cgroup filter: bpf(2) number unknown on {platform.machine()}")
    buf = ctypes.create_string_buffer(attr, len(attr))
    result = _libc.syscall(ctypes.c_long(number), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result


def _load(program: bytes) -> int:
    code = ctypes.create_string_buffer(program, len(program))
    license_ = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(1 << 16)

    def attr(log_level: int) -> bytes:
        # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
        return struct.pack("<IIQQIIQ", _BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
                           ctypes.addressof(code), ctypes.addressof(license_),
                           log_level, len(log) if log_level else 0, ctypes.addressof(log) if log_level else 0)

    try:
        return _bpf(_BPF_PROG_LOAD, attr(0))
    except OSError as exc:
        try:  # once more with the verifier's log, for the message
            _bpf(_BPF_PROG_LOAD, attr(1))
        except OSError:
            pass
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise SystemError_(f"device cgroup filter: loading the eBPF program failed: {exc.strerror}"
                           + (f" ({detail[0]})" if detail[0] else "")) from None


def attach_device_filter(cgroup_dir: str, rules) -> None:
    """Attach the filter for `rules` to a cgroup v2 directory. The kernel keeps the program
    while the cgroup exists, so the fds are closed at once and nothing needs undoing."""
    prog = _load(device_filter(rules))
    try:
        target = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            # target_fd, attach_bpf_fd, attach_type, attach_flags
            _bpf(_BPF_PROG_ATTACH, struct.pack("<IIII", target, prog, _BPF_CGROUP_DEVICE, _BPF_F_ALLOW_MULTI))
        except OSError as exc:
            raise SystemError_(f"device cgroup filter: attaching to {cgroup_dir} failed: {exc.strerror}") from None
        finally:
            os.close(target)
    finally:
        os.close(prog)

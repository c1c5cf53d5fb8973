"""seccomp: Docker's default profile as our own data, Docker-format profiles, and a compiler
from a profile to a classic BPF program for the x86_64 kernel ABI (no libseccomp).

    bpf = program_for(security_opt, privileged, capabilities)   # bytes | None (unconfined)

The program goes into ProcessSpec.seccomp_bpf; native/pe_spawn.c installs it right before
execve (see install order there). Compiling costs a few milliseconds of Python, so results
are cached per (profile, capability set, kernel): container start pays it once.

Program layout (struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8*i, little endian):

    ld  arch ; jeq AUDIT_ARCH_X86_64 ? next : ret KILL_PROCESS   (i386 / int 0x80 ABI)
    ld  nr   ; jgt max_nr ? ret ERRNO(ENOSYS) : next               (x32 numbers, and for a
                                                                  denying profile syscalls
                                                                  newer than it, as runc does:
                                                                  libc falls back)
    binary search over ranges of syscall numbers with the same verdict (jge), each leaf a
    `ret` or, for the few argument rules (clone flags, personality), 64-bit comparisons
    done on both 32-bit halves, then the fallback verdict.
"""
from __future__ import annotations

import errno as _errno
import functools
import json
import os
import re
import struct
from collections.abc import Iterable

import attrs

from engine import errors

# ───────────────────────────── kernel ABI constants ─────────────────────────────

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
BPF_MAXINSNS = 4096

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_DATA = 0x0000FFFF

# classic BPF opcodes
_LD_W_ABS = 0x20
_ALU_AND_K = 0x54
_JA = 0x05
_JEQ_K = 0x15
_JGT_K = 0x25
_JGE_K = 0x35
_RET_K = 0x06

_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARGS = 16

INSN = struct.Struct("=HBBI")  # struct sock_filter


def errno_action(err: int) -> int:
    return RET_ERRNO | (err & RET_DATA)


# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl, "common" and "64" rows):
# consecutive names from the start number. The numbers are kernel ABI and never change; new
# syscalls are appended. tests/unit/test_seccomp.py checks this against <asm/unistd_64.h>.
_X86_64_SYSCALLS = (
    (0, """
    read write open close stat fstat lstat poll lseek mmap mprotect munmap brk rt_sigaction
    rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe select
    sched_yield mremap msync mincore madvise shmget shmat shmctl dup dup2 pause nanosleep
    getitimer alarm setitimer getpid sendfile socket connect accept sendto recvfrom sendmsg
    recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt clone
    fork vfork execve exit wait4 kill uname semget semop semctl shmdt msgget msgsnd msgrcv
    msgctl fcntl flock fsync fdatasync truncate ftruncate getdents getcwd chdir fchdir rename
    mkdir rmdir creat link unlink symlink readlink chmod fchmod chown fchown lchown umask
    gettimeofday getrlimit getrusage sysinfo times ptrace getuid syslog getgid setuid setgid
    geteuid getegid setpgid getppid getpgrp setsid setreuid setregid getgroups setgroups
    setresuid getresuid setresgid getresgid getpgid setfsuid setfsgid getsid capget capset
    rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack utime mknod uselib
    personality ustat statfs fstatfs sysfs getpriority setpriority sched_setparam sched_getparam
    sched_setscheduler sched_getscheduler sched_get_priority_max sched_get_priority_min
    sched_rr_get_interval mlock munlock mlockall munlockall vhangup modify_ldt pivot_root
    _sysctl prctl arch_prctl adjtimex setrlimit chroot sync acct settimeofday mount umount2
    swapon swapoff reboot sethostname setdomainname iopl ioperm create_module init_module
    delete_module get_kernel_syms query_module quotactl nfsservctl getpmsg putpmsg afs_syscall
    tuxcall security gettid readahead setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr
    listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr tkill time futex
    sched_setaffinity sched_getaffinity set_thread_area io_setup io_destroy io_getevents
    io_submit io_cancel get_thread_area lookup_dcookie epoll_create epoll_ctl_old epoll_wait_old
    remap_file_pages getdents64 set_tid_address restart_syscall semtimedop fadvise64
    timer_create timer_settime timer_gettime timer_getoverrun timer_delete clock_settime
    clock_gettime clock_getres clock_nanosleep exit_group epoll_wait epoll_ctl tgkill utimes
    vserver mbind set_mempolicy get_mempolicy mq_open mq_unlink mq_timedsend mq_timedreceive
    mq_notify mq_getsetattr kexec_load waitid add_key request_key keyctl ioprio_set ioprio_get
    inotify_init inotify_add_watch inotify_rm_watch migrate_pages openat mkdirat mknodat
    fchownat futimesat newfstatat unlinkat renameat linkat symlinkat readlinkat fchmodat
    faccessat pselect6 ppoll unshare set_robust_list get_robust_list splice tee sync_file_range
    vmsplice move_pages utimensat epoll_pwait signalfd timerfd_create eventfd fallocate
    timerfd_settime timerfd_gettime accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2
    inotify_init1 preadv pwritev rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init
    fanotify_mark prlimit64 name_to_handle_at open_by_handle_at clock_adjtime syncfs sendmmsg
    setns getcpu process_vm_readv process_vm_writev kcmp finit_module sched_setattr
    sched_getattr renameat2 seccomp getrandom memfd_create kexec_file_load bpf execveat
    userfaultfd membarrier mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc
    pkey_free statx io_pgetevents rseq
    """),
    (424, """
    pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount
    fsopen fsconfig fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2
    process_madvise epoll_pwait2 mount_setattr quotactl_fd landlock_create_ruleset
    landlock_add_rule landlock_restrict_self memfd_secret process_mrelease futex_waitv
    set_mempolicy_home_node cachestat fchmodat2 map_shadow_stack futex_wake futex_wait
    futex_requeue statmount listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal
    setxattrat getxattrat listxattrat removexattrat open_tree_attr file_getattr file_setattr
    listns
    """),
)


def _syscall_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for start, names in _X86_64_SYSCALLS:
        for i, name in enumerate(names.split()):
            table[name] = start + i
    return table


SYSCALLS_X86_64: dict[str, int] = _syscall_table()

# ───────────────────────────── profiles ─────────────────────────────

_OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ")


# cache_hash: compile_profile's cache hashes the profile at every start (~300 rules).
@attrs.frozen(cache_hash=True)
class Arg:
    """One argument condition (libseccomp's scmp_arg_cmp): args[index] <op> value, or for
    SCMP_CMP_MASKED_EQ (args[index] & value) == value_two. 64-bit unsigned."""

    index: int
    value: int
    value_two: int = 0
    op: str = "SCMP_CMP_EQ"


@attrs.frozen(cache_hash=True)
class Rule:
    """`names` get `action` (a SECCOMP_RET_* value, data included) when every `args`
    condition holds. The rule is part of the profile only if the container holds all of
    `caps` and none of `not_caps`, runs on one of `arches` (Go names; empty = all) and not
    on `not_arches`, on a kernel ≥ `min_kernel`."""

    names: tuple[str, ...] = attrs.field(converter=tuple)
    action: int = RET_ALLOW
    args: tuple[Arg, ...] = attrs.field(default=(), converter=tuple)
    caps: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    not_caps: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    arches: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    not_arches: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    min_kernel: tuple[int, int] | None = None

    def applies(self, caps: frozenset[str], arch: str, kernel: tuple[int, int]) -> bool:
        if self.caps and not all(c in caps for c in self.caps):
            return False
        if any(c in caps for c in self.not_caps):
            return False
        if self.arches and arch not in self.arches:
            return False
        if arch in self.not_arches:
            return False
        return self.min_kernel is None or kernel >= self.min_kernel


@attrs.frozen(cache_hash=True)
class Profile:
    default_action: int
    rules: tuple[Rule, ...] = attrs.field(converter=tuple)


# Docker's default profile (moby profiles/seccomp/default.json, the version Docker 24/25
# ships): deny with EPERM, allow the syscalls below, a few more per capability, clone without
# namespace flags, clone3 answered ENOSYS (so libc falls back to clone, which we can check).
# Names of other architectures stay in: they simply do not resolve on x86_64.
_DEFAULT_ALLOW = """
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
    clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup
    dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
    epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat
    faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown
    fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr
    fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
    futex_time64 futex_waitv futimesat get_robust_list get_thread_area getcpu getcwd getdents
    getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
    getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
    getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid
    gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
    inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64
    io_setup io_submit io_uring_enter io_uring_register io_uring_setup ioctl ioprio_get
    ioprio_set ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
    lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek
    lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat
    mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
    mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
    msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect
    open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64
    prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64
    pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
    recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
    restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
    rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
    sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr sched_getparam
    sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
    sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget
    semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
    set_robust_list set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32
    setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32
    setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt
    setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
    sigprocmask sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64 statx
    symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
    timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
    tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
    utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
"""

_CLONE_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_S390 = ("s390", "s390x")
_MIPS = ("mips3l64n32", "mips64", "mips64n32", "mipsel", "mipsel64")

DEFAULT_PROFILE = Profile(
    default_action=errno_action(_errno.EPERM),
    rules=(
        Rule(_DEFAULT_ALLOW.split()),
        Rule(("ptrace",), min_kernel=(4, 8)),
        # personality: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query.
        *(Rule(("personality",), args=(Arg(0, v),)) for v in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)),
        Rule(("sync_file_range2",), arches=("ppc64le",)),
        Rule(("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
              "set_tls"), arches=("arm", "arm64")),
        Rule(("arch_prctl",), arches=("amd64", "x32")),
        Rule(("modify_ldt",), arches=("amd64", "x32", "x86")),
        Rule(("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"), arches=_S390),
        Rule(("open_by_handle_at",), caps=("CAP_DAC_READ_SEARCH",)),
        Rule(("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
              "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
              "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
              "syslog", "umount", "umount2", "unshare"), caps=("CAP_SYS_ADMIN",)),
        Rule(("clone",), args=(Arg(0, _CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),),
             not_caps=("CAP_SYS_ADMIN",), not_arches=_S390),
        Rule(("clone",), args=(Arg(1, _CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),),
             arches=_S390, not_caps=("CAP_SYS_ADMIN",)),
        Rule(("clone3",), action=errno_action(_errno.ENOSYS), not_caps=("CAP_SYS_ADMIN",), not_arches=_MIPS),
        Rule(("clone3",), action=errno_action(89), arches=_MIPS, not_caps=("CAP_SYS_ADMIN",)),
        Rule(("reboot",), caps=("CAP_SYS_BOOT",)),
        Rule(("chroot",), caps=("CAP_SYS_CHROOT",)),
        Rule(("delete_module", "init_module", "finit_module"), caps=("CAP_SYS_MODULE",)),
        Rule(("acct",), caps=("CAP_SYS_PACCT",)),
        Rule(("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"),
             caps=("CAP_SYS_PTRACE",)),
        Rule(("iopl", "ioperm"), caps=("CAP_SYS_RAWIO",)),
        Rule(("settimeofday", "stime", "clock_settime"), caps=("CAP_SYS_TIME",)),
        Rule(("vhangup",), caps=("CAP_SYS_TTY_CONFIG",)),
        Rule(("get_mempolicy", "mbind", "set_mempolicy"), caps=("CAP_SYS_NICE",)),
        Rule(("syslog",), caps=("CAP_SYSLOG",)),
    ),
)

# ───────────────────────────── Docker-format JSON ─────────────────────────────

_ACTIONS = {
    "SCMP_ACT_ALLOW": RET_ALLOW, "SCMP_ACT_ERRNO": RET_ERRNO, "SCMP_ACT_KILL": RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD, "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": RET_TRAP, "SCMP_ACT_TRACE": RET_TRACE, "SCMP_ACT_LOG": RET_LOG,
}


def _action(name, errno_ret) -> int:
    if name not in _ACTIONS:
        raise errors.InvalidParameter(f"seccomp profile: unsupported action {name!r}")
    base = _ACTIONS[name]
    if base == RET_ERRNO:
        return errno_action(_errno.EPERM if errno_ret is None else int(errno_ret))
    if base == RET_TRACE:
        return RET_TRACE | (int(errno_ret or 0) & RET_DATA)
    return base


def _kernel_version(text: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", text or "")
    if not m:
        raise errors.InvalidParameter(f"seccomp profile: bad minKernel {text!r}")
    return (int(m.group(1)), int(m.group(2)))


def _names(value) -> tuple[str, ...]:
    return tuple(value or ())


@functools.lru_cache(maxsize=32)
def load_profile(text: str) -> Profile:
    """A Docker-format profile (JSON text) → Profile. Raises InvalidParameter."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidParameter(f"decoding seccomp profile failed: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidParameter("decoding seccomp profile failed: not a JSON object")
    arches = list(data.get("architectures") or [])
    for entry in data.get("archMap") or []:
        arches.append(entry.get("architecture"))
        arches.extend(entry.get("subArchitectures") or [])
    if arches and "SCMP_ARCH_X86_64" not in arches:
        raise errors.InvalidParameter("seccomp profile: it does not cover SCMP_ARCH_X86_64")
    default = _action(data.get("defaultAction") or "SCMP_ACT_ALLOW", data.get("defaultErrnoRet"))
    rules = []
    for i, call in enumerate(data.get("syscalls") or []):
        names = _names(call.get("names")) or ((call["name"],) if call.get("name") else ())
        if not names:
            raise errors.InvalidParameter(f"seccomp profile: syscalls[{i}] names no syscall")
        args = []
        for a in call.get("args") or []:
            op = a.get("op", "SCMP_CMP_EQ")
            if op not in _OPS:
                raise errors.InvalidParameter(f"seccomp profile: unsupported operator {op!r}")
            index = int(a.get("index", 0))
            if not 0 <= index < 6:
                raise errors.InvalidParameter(f"seccomp profile: argument index {index} out of range")
            args.append(Arg(index, int(a.get("value", 0)) & (2**64 - 1),
                            int(a.get("valueTwo", 0)) & (2**64 - 1), op))
        inc, exc = call.get("includes") or {}, call.get("excludes") or {}
        rules.append(Rule(
            names, _action(call.get("action"), call.get("errnoRet")), args,
            caps=_names(inc.get("caps")), not_caps=_names(exc.get("caps")),
            arches=_names(inc.get("arches")), not_arches=_names(exc.get("arches")),
            min_kernel=_kernel_version(inc["minKernel"]) if inc.get("minKernel") else None,
        ))
    return Profile(default, rules)


# ───────────────────────────── compiler ─────────────────────────────

class _Asm:
    """Instructions with symbolic forward jump targets (None = next instruction)."""

    def __init__(self) -> None:
        self.items: list = []
        self._n = 0

    def new_label(self) -> str:
        self._n += 1
        return f"L{self._n}"

    def label(self, name: str) -> None:
        self.items.append(("label", name))

    def ld(self, offset: int) -> None:
        self.items.append((_LD_W_ABS, None, None, offset))

    def and_(self, k: int) -> None:
        self.items.append((_ALU_AND_K, None, None, k))

    def jump(self, code: int, k: int, jt: str | None, jf: str | None) -> None:
        self.items.append((code, jt, jf, k))

    def ret(self, k: int) -> None:
        self.items.append((_RET_K, None, None, k))

    def assemble(self) -> list[tuple[int, int, int, int]]:
        where, n = {}, 0
        for item in self.items:
            if item[0] == "label":
                where[item[1]] = n
            else:
                n += 1
        out, i = [], 0
        for item in self.items:
            if item[0] == "label":
                continue
            code, jt, jf, k = item

            def off(target):
                if target is None:
                    return 0
                d = where[target] - (i + 1)
                if not 0 <= d <= 255:
                    raise ValueError("seccomp: local jump out of range")
                return d

            out.append((code, off(jt), off(jf), k))
            i += 1
        return out


def _emit_arg(asm: _Asm, arg: Arg, fail: str) -> None:
    """Fall through when the condition holds, jump to `fail` otherwise."""
    lo_off = _OFF_ARGS + 8 * arg.index
    hi_off = lo_off + 4
    v, w = arg.value, arg.value_two
    vhi, vlo = v >> 32, v & 0xFFFFFFFF
    ok = asm.new_label()
    if arg.op == "SCMP_CMP_EQ":
        asm.ld(hi_off); asm.jump(_JEQ_K, vhi, None, fail)
        asm.ld(lo_off); asm.jump(_JEQ_K, vlo, None, fail)
    elif arg.op == "SCMP_CMP_MASKED_EQ":
        asm.ld(hi_off); asm.and_(vhi); asm.jump(_JEQ_K, (w >> 32) & vhi, None, fail)
        asm.ld(lo_off); asm.and_(vlo); asm.jump(_JEQ_K, w & 0xFFFFFFFF & vlo, None, fail)
    elif arg.op == "SCMP_CMP_NE":
        asm.ld(hi_off); asm.jump(_JEQ_K, vhi, None, ok)
        asm.ld(lo_off); asm.jump(_JEQ_K, vlo, fail, None)
    elif arg.op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        asm.ld(hi_off); asm.jump(_JGT_K, vhi, ok, None); asm.jump(_JEQ_K, vhi, None, fail)
        asm.ld(lo_off); asm.jump(_JGT_K if arg.op == "SCMP_CMP_GT" else _JGE_K, vlo, None, fail)
    elif arg.op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):
        asm.ld(hi_off); asm.jump(_JGE_K, vhi, None, ok); asm.jump(_JEQ_K, vhi, None, fail)
        asm.ld(lo_off)
        if arg.op == "SCMP_CMP_LT":
            asm.jump(_JGE_K, vlo, fail, None)
        else:
            asm.jump(_JGT_K, vlo, fail, None)
    else:  # pragma: no cover - load_profile validates
        raise ValueError(arg.op)
    asm.label(ok)


def _leaf_code(leaf) -> list[tuple[int, int, int, int]]:
    if leaf[0] == "ret":
        return [(_RET_K, 0, 0, leaf[1])]
    _, conds, fallback = leaf
    asm = _Asm()
    for args, action in conds:
        fail = asm.new_label()
        # (x & mask) == want can never hold when want has bits outside the mask.
        impossible = any(a.op == "SCMP_CMP_MASKED_EQ" and (a.value_two & ~a.value) for a in args)
        if not impossible:
            for arg in args:
                _emit_arg(asm, arg, fail)
            asm.ret(action)
        asm.label(fail)
    asm.ret(fallback)
    return asm.assemble()


def _tree(ranges: list, leaf_code: dict) -> list[tuple[int, int, int, int]]:
    """Binary search over sorted (lo, leaf) ranges; every branch ends in a ret."""
    if len(ranges) == 1:
        return list(leaf_code[ranges[0][1]])
    mid = len(ranges) // 2
    left = _tree(ranges[:mid], leaf_code)
    right = _tree(ranges[mid:], leaf_code)
    k = ranges[mid][0]
    if len(left) <= 255:
        return [(_JGE_K, len(left), 0, k)] + left + right
    return [(_JGE_K, 0, 1, k), (_JA, 0, 0, len(left))] + left + right


def _kernel() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@functools.lru_cache(maxsize=64)
def compile_profile(profile: Profile, caps: frozenset[str], kernel: tuple[int, int] | None = None) -> bytes:
    """The BPF program (struct sock_filter[]) enforcing `profile` on x86_64 for a container
    with capability set `caps`. Cached: the hot path pays it once per (profile, caps)."""
    kernel = kernel or _kernel()
    table = SYSCALLS_X86_64
    entries: dict[int, list] = {}
    max_nr = -1
    for rule in profile.rules:
        nrs = [table[n] for n in rule.names if n in table]
        if nrs:
            max_nr = max(max_nr, *nrs)
        if not rule.applies(caps, "amd64", kernel):
            continue
        for nr in nrs:
            entries.setdefault(nr, []).append((rule.args, rule.action))
    default = profile.default_action

    def leaf_for(nr: int):
        found = entries.get(nr)
        if not found:
            return ("ret", default)
        plain = [action for args, action in found if not args]
        fallback = plain[0] if plain else default
        conds = tuple((args, action) for args, action in found if args and action != fallback)
        if not conds:
            return ("ret", fallback)
        return ("cond", conds, fallback)

    ranges: list = []  # (first nr, leaf) with consecutive equal leaves merged; the last is open
    for nr in range(max_nr + 1):
        leaf = leaf_for(nr)
        if not ranges or ranges[-1][1] != leaf:
            ranges.append((nr, leaf))
    enosys = errno_action(_errno.ENOSYS)
    # Like runc: a denying profile answers ENOSYS (not its default) above the highest syscall it
    # names, so libc's fallbacks for syscalls newer than the profile work. x32 numbers (bit 30)
    # get ENOSYS in any case, as on a kernel without x32 support.
    stub = default & 0xFFFF0000 not in (RET_ALLOW, RET_LOG) and default != enosys
    limit = max_nr if stub and max_nr >= 0 else X32_SYSCALL_BIT - 1
    if not stub and (not ranges or ranges[-1][1] != ("ret", default)):
        ranges.append((max_nr + 1, ("ret", default)))
    code = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        (_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        (_RET_K, 0, 0, RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, _OFF_NR),
        (_JGT_K, 0, 1, limit),
        (_RET_K, 0, 0, enosys),
    ]
    if ranges:
        leaf_code = {leaf: _leaf_code(leaf) for _, leaf in ranges}
        code += _tree(ranges, leaf_code)
    else:
        code.append((_RET_K, 0, 0, default))
    if len(code) > BPF_MAXINSNS:
        raise errors.InvalidParameter(f"seccomp profile compiles to {len(code)} instructions (max {BPF_MAXINSNS})")
    return b"".join(INSN.pack(*insn) for insn in code)


# ───────────────────────────── Docker's --security-opt ─────────────────────────────

def profile_option(security_opt: Iterable[str] | None) -> str | None:
    """The value of `seccomp=…` (or the old `seccomp:…`) in SecurityOpt, None if absent."""
    value = None
    for opt in security_opt or ():
        for sep in ("=", ":"):
            key, found, rest = opt.partition(sep)
            if found and key == "seccomp":
                value = rest
                break
    return value


def reads_a_profile_file(security_opt: Iterable[str] | None) -> bool:
    """program_for will read a profile from a file on the daemon's host (blocking)."""
    value = profile_option(security_opt)
    return value not in (None, "", "builtin", "default", "unconfined") and not value.lstrip().startswith("{")


@functools.cache
def profile_file(path: str) -> Profile:
    """The daemon's --seccomp-profile, read once (at daemon start, which checks it)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise errors.InvalidParameter(f"opening seccomp profile ({path}) failed: {exc.strerror}") from None
    return load_profile(text)


def program_for(security_opt: Iterable[str] | None, privileged: bool, capabilities: Iterable[str],
                daemon_profile: str = "") -> bytes | None:
    """Docker's rules: --privileged or seccomp=unconfined → no filter; seccomp=<JSON profile>
    (the docker CLI sends the file's content) or seccomp=<path to a JSON file on the daemon's
    host> → that profile; seccomp=builtin (or default) → Docker's default profile; no seccomp
    option → the daemon's `--seccomp-profile` ("unconfined", a file's path; "" or "builtin":
    Docker's default)."""
    if privileged:
        return None
    value = profile_option(security_opt)
    if value in (None, ""):
        value = daemon_profile or "builtin"
        if value not in ("builtin", "unconfined"):
            return compile_profile(profile_file(value), frozenset(capabilities))
    if value == "unconfined":
        return None
    caps = frozenset(capabilities)
    if value in ("builtin", "default"):
        return compile_profile(DEFAULT_PROFILE, caps)
    text = value
    if not value.lstrip().startswith("{"):
        try:
            with open(value) as f:
                text = f.read()
        except OSError as exc:
            raise errors.InvalidParameter(f"opening seccomp profile ({value}) failed: {exc.strerror}") from None
    return compile_profile(load_profile(text), caps)


def disassemble(program: bytes) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) per instruction — for tests and debugging."""
    return [INSN.unpack_from(program, i) for i in range(0, len(program), INSN.size)]

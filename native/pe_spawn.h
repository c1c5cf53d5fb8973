/* pe_spawn.h — the flat spec between Python (engine/runtime/spawn.py) and pe_spawn.c.
 * This file is also fed to cffi's cdef (build_native.py strips the preprocessor guard
 * lines), so keep it to plain structs, integer #defines and prototypes. */
#ifndef PE_SPAWN_H
#define PE_SPAWN_H

#define PE_MODE_CONTAINER 0
#define PE_MODE_EXEC 1

#define PE_CHILD_FAIL_EXIT 255

/* Steps reported as pe_err.step (engine/runtime/spawn.py names them for messages). */
#define PE_STEP_SETNS 1
#define PE_STEP_CLONE 2
#define PE_STEP_UNSHARE_CGROUP 3
#define PE_STEP_STDIO 4
#define PE_STEP_ROOT_PROPAGATION 5
#define PE_STEP_BIND_ROOTFS 6
#define PE_STEP_MOUNT_SOURCE 7
#define PE_STEP_MOUNTPOINT 8
#define PE_STEP_MOUNT 9
#define PE_STEP_REMOUNT 10
#define PE_STEP_PROPAGATION 11
#define PE_STEP_DEVICES 12
#define PE_STEP_SYMLINKS 13
#define PE_STEP_CWD 14
#define PE_STEP_PIVOT_ROOT 15
#define PE_STEP_MASK_PATHS 16
#define PE_STEP_READONLY_PATHS 17
#define PE_STEP_READONLY_ROOTFS 18
#define PE_STEP_HOSTNAME 19
#define PE_STEP_TTY 20
#define PE_STEP_RLIMITS 21
#define PE_STEP_CAPS 22
#define PE_STEP_SETGROUPS 23
#define PE_STEP_SETGID 24
#define PE_STEP_SETUID 25
#define PE_STEP_NO_NEW_PRIVS 26
#define PE_STEP_CHDIR 27
#define PE_STEP_LOOKUP 28
#define PE_STEP_STAT 29
#define PE_STEP_ACCESS 30
#define PE_STEP_EXEC 31
#define PE_STEP_LOOPBACK 32
#define PE_STEP_SECCOMP 33
#define PE_STEP_CGROUP 34
#define PE_STEP_OOM_SCORE_ADJ 35
#define PE_STEP_SYSCTL 36

struct pe_err {
    int32_t step;
    int32_t err;
    int32_t index; /* mount/path/device index the step was working on, or -1 */
};

struct pe_mount {
    const char *source;
    const char *target;      /* absolute path inside the rootfs */
    const char *fstype;      /* NULL for bind mounts */
    unsigned long flags;     /* MS_* (MS_BIND|MS_REC for rbind); ro etc. re-applied by remount */
    unsigned long propagation; /* MS_PRIVATE|MS_REC …, 0 = leave as is */
    const char *data;        /* filesystem options ("mode=755,size=65536k"), may be NULL */
};

struct pe_device {
    const char *path;        /* "/dev/null" */
    int type;                /* 'c' or 'b' */
    uint32_t major, minor, mode, uid, gid;
};

struct pe_rlimit {
    int resource;
    uint64_t soft, hard;
};

struct pe_spec {
    int mode;                /* PE_MODE_CONTAINER (rootfs setup) or PE_MODE_EXEC */
    int use_helper;          /* setns in a helper, then clone3(CLONE_PARENT) the final process */
    uint64_t clone_flags;    /* CLONE_NEW* created at clone (never CLONE_NEWCGROUP) */
    int unshare_cgroup;      /* unshare(CLONE_NEWCGROUP) after the parent released us */
    const int *join_fds;     /* setns(join_fds[i], join_types[i]) (ns fds or a pidfd) */
    const int *join_types;
    int njoin;

    const char *rootfs;
    int readonly_rootfs;
    unsigned long root_propagation; /* MS_SLAVE (default when 0) or MS_PRIVATE */
    const char *hostname;    /* NULL = leave */
    const struct pe_mount *mounts;
    int nmounts;
    const struct pe_device *devices;
    int ndevices;
    const char *const *symlink_paths;
    const char *const *symlink_targets;
    int nsymlinks;
    const char *const *masked_paths;
    int nmasked;
    const char *const *readonly_paths;
    int nreadonly;

    char *const *argv;       /* NULL-terminated */
    char *const *envp;       /* NULL-terminated */
    const char *cwd;
    uint32_t uid, gid;
    const uint32_t *groups;
    int ngroups;
    uint64_t caps;           /* bit n = capability n: bounding, effective, permitted */
    int no_new_privileges;
    /* Every signal blocked from the clone through execve (--init): a signal sent meanwhile stays
     * pending instead of being dropped by the kernel (PID 1 of a namespace, default action),
     * and pe-init takes it once it waits for signals; it clears the mask for its child. */
    int exec_signals_blocked;
    /* seccomp: a classic BPF program (struct sock_filter[seccomp_len]), installed as the last
     * step before execve; NULL/0 = unconfined. Without no_new_privileges the child keeps
     * CAP_SYS_ADMIN effective until then (see drop_privileges in pe_spawn.c). */
    const unsigned char *seccomp_prog;
    unsigned int seccomp_len;
    const struct pe_rlimit *rlimits;
    int nrlimits;

    int stdin_fd, stdout_fd, stderr_fd; /* -1 = /dev/null */
    int tty;
    unsigned short tty_rows, tty_cols;

    /* cgroup v1: `tasks` files the child writes "0" to, first thing after the go byte. A
     * thread that moves itself skips the kernel's global threadgroup lock, whose RCU grace
     * period made each placement written by the parent (cgroup.procs) cost milliseconds. */
    const char *const *cgroup_tasks;
    int ncgroup_tasks;

    /* Written to /proc/self/oom_score_adj right after the cgroups are joined (always: the
     * daemon's own score must not leak into containers). */
    int oom_score_adj;
    /* --sysctl: /proc/sys/<file> paths and values, written after the container's /proc is
     * mounted and before /proc/sys becomes read-only (container mode only). */
    const char *const *sysctl_paths;
    const char *const *sysctl_values;
    int nsysctl;
};

struct pe_spawn_result {
    int pid, pidfd;               /* direct mode */
    int helper_pid, helper_pidfd; /* helper mode: read the final pid from pid_r */
    int pid_r;
    int sync_w, err_r, sock_r;
};

/* ─── the spawner (native/pe_spawner.c): messages on its SOCK_SEQPACKET unix socket ───
 * Each message is one struct pe_msg, then a payload (PE_OP_SPAWN: a packed pe_spec, see
 * pe_wire.c), with pe_msg.nfds descriptors attached (SCM_RIGHTS). Diagram in pe_spawner.c. */
#define PE_OP_SPAWN 1      /* daemon → spawner: id, kind, [pe_hold + dir,] packed spec; fds the spec
                              refers to [, output ends to hold (PE_SPAWN_HOLD)] */
#define PE_OP_HOLD 2       /* daemon → spawner: id, pid; fds = output ends (stdout, stderr | pty master);
                              payload u64 spill cap + spill file path: the spawner drains them into it */
#define PE_OP_LIST 3       /* daemon → spawner: answered by ENTRY…, END */
#define PE_OP_RELEASE 4    /* daemon → spawner: id (and pid, or 0 = every entry of id) */
#define PE_OP_SHUTDOWN 5   /* daemon → spawner: exit (nothing of ours runs any more) */
#define PE_OP_ARM 6        /* daemon → spawner: id, pid; payload u64 read_to, u64 keep_from (spill offsets) */
#define PE_OP_FLUSH 7      /* daemon → spawner: seq, id, pid: read what the output fds hold now into the spill */
#define PE_OP_SPAWNED 10   /* spawner → daemon: seq, pid or step/err/index; fds pidfd, sync_w, err_r[, sock_r];
                              after a SPAWN with PE_SPAWN_GO: seq, pid [, step/err/index: exec failed]; fd pidfd */
#define PE_OP_EXIT 11      /* spawner → daemon: id, pid, status (exit code or 128+signal) */
#define PE_OP_ENTRY 12     /* spawner → daemon: id, pid, kind, status (-1 running); fds [pidfd,] held… */
#define PE_OP_END 13
#define PE_OP_DATA 14      /* spawner → daemon: id, pid, seq = spill generation; status -1: no such entry */
#define PE_OP_FLUSHED 15   /* spawner → daemon: seq; status -1: not read (no such entry, a spill write
                              pending); else payload u64 stdout, u64 stderr: stream offsets the spill holds */

/* The spill file (pe_spawner.c): a header, then records, each a pe_spill_rec and `len` bytes.
 * len 0 = end of that stream. `offset` counts the stream's bytes from the start of the run. */
#define PE_SPILL_HDR 16 /* "PESPILL1", then 8 zero bytes */
struct pe_spill_rec {
    uint32_t stream; /* 1 stdout (or the pty), 2 stderr */
    uint32_t len;
    uint64_t offset;
    uint64_t ts_ns; /* CLOCK_REALTIME when the spawner read it */
};

/* SPAWN's `status`: flags. GO: nothing to prepare (no tty either), the spawner lets the child
 * go at once and answers once its execve succeeded or failed. */
#define PE_SPAWN_GO 1
/* HOLD: the payload starts with a struct pe_hold (then its directory, padded to 8 bytes,
 * then the packed spec) and the message's last `nfds` fds are the output ends: the entry holds
 * them from its creation, as after a HOLD, spilling to <directory>/output.<pid>.spill, and it is
 * armed as by an ARM 0,0 (two messages less per start: the daemon knows the output ends before
 * the spawn, not the pid, and its first wait for output needs no ARM). */
#define PE_SPAWN_HOLD 2

struct pe_hold {
    uint64_t cap;    /* spill cap */
    uint32_t nfds;   /* output ends: the message's last nfds fds */
    uint32_t dirlen; /* then this many bytes of directory, zero-padded to a multiple of 8 */
};

#define PE_KIND_INIT 0
#define PE_KIND_EXEC 1
#define PE_MAX_FDS 16

struct pe_msg {
    uint32_t op;
    uint32_t seq;
    int32_t pid;
    int32_t kind;
    int32_t status;
    int32_t step, err, index;
    uint32_t nfds;
    char id[68];
};

int pe_spawn(const struct pe_spec *spec, struct pe_spawn_result *out);
/* Flatten a spec into buf (returns the length it needs; writes only when it fits in cap). */
long pe_spec_pack(const struct pe_spec *spec, unsigned char *buf, unsigned long cap);
int pe_release(int sync_w);
int pe_recv_fd(int sock);
int pe_mount_overlay(const char *const *lowers, int n, const char *upper, const char *work, const char *target);
int pe_unmount(const char *target);
/* `path` a shared mount (bind-mounted on itself first when `bind_first`): the daemon's data
 * root, so that its mounts and unmounts reach a container's rslave copy of it. 0 or -errno. */
int pe_make_shared(const char *path, int bind_first);
/* A tmpfs (nosuid, nodev, noexec) at target with the mount data `data` ("mode=1777,size=…"). */
int pe_mount_tmpfs(const char *target, const char *data);
/* rm -rf without following symlinks or entering other file systems; 0 or -errno (the first
 * failure; the rest is still removed as far as possible). */
int pe_remove_tree(const char *path);
/* Empty the directory `path` down to its entries named in `dirs`, which must be directories
 * on its file system (not mount points) and are emptied too, those in `files` that are
 * plain files linked nowhere else (kept as they are), and those in `pristine` that look as
 * the first of `dirs` (a directory, emptied and rid of overlayfs' trusted.overlay.* marks)
 * or of `files` (a file) does: mode, owner, inode flags and project, no extended attributes,
 * no other link. Nothing followed, no other file system
 * entered. 0 or -errno (the first failure: the caller deletes the rest). */
int pe_empty_except(const char *path, const char *const *dirs, int ndirs, const char *const *files, int nfiles,
                    const char *const *pristine, int npristine);
int pe_resize(int fd, unsigned short rows, unsigned short cols);

#endif

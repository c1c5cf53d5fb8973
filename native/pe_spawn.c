/*
 * pe_spawn.c — process creation for pyengine (compiled into engine._native by cffi).
 *
 * Everything a container process does between clone and execve happens here, in C: the
 * daemon is a multithreaded CPython process, so its child may only make syscalls (no malloc,
 * no stdio, no locks) until it execs.  The Python side (engine/runtime/spawn.py) builds one
 * flat `struct pe_spec` (see pe_spawn.h) and drives the protocol below with trio.
 *
 * ───────────────────────── parent/child sync protocol ─────────────────────────
 *
 * Pipes/sockets created by pe_spawn() (all O_CLOEXEC; each side closes the other's ends):
 *   sync   parent ──▶ child    one byte 'G' = "go"; EOF without a byte = abort (child _exit(0))
 *   err    child  ──▶ parent   struct pe_err {step, errno, index} on failure; EOF = execve ok
 *   pid    helper ──▶ parent   (helper mode only) int32 pid of the final process
 *   sock   child  ──▶ parent   (tty only) 1 byte + SCM_RIGHTS(pty master), sent before execve
 *
 * Direct mode (spawn_container, no pid namespace to join):
 *
 *   parent (daemon, Python + trio)              child (C only)
 *   ──────────────────────────────              ─────────────────────────────────────────
 *   pe_spawn: clone3(CLONE_PIDFD|NEW*) ───────▶ reset signals, setns(joined ns fds)
 *   ◀─ returns pid, pidfd                       read(sync) … blocks
 *   await prepare(pid)  (cgroups, network)
 *   pe_release: write(sync,'G'), close ───────▶ join v1 cgroups (write "0" to `tasks`),
 *                                               oom_score_adj, unshare(CLONE_NEWCGROUP),
 *                                               stdio dup2, rootfs: rslave /, bind rootfs,
 *                                               mounts, devices, mkdir cwd, pivot_root,
 *                                               sysctls (/proc/sys still writable), mask,
 *                                               readonly paths, ro rootfs, hostname,
 *                                               [tty: open ptmx, setsid, TIOCSCTTY,
 *                                                sendmsg(sock, master) ──────────┐]
 *                                               rlimits, groups/gid/uid, caps, nnp,
 *                                               chdir, PATH lookup, close_range(CLOEXEC),
 *                                               seccomp filter (last: only execve and,
 *                                               on failure, write(err)+_exit follow)
 *   await wait_readable(err) ◀──────────────── execve ok: err closes (EOF)          │
 *                            ◀──────────────── or failure: write(err, {step,errno,i}), _exit
 *   [tty: pe_recv_fd(sock) ◀─────────────────────────────────────────────────────────┘]
 *
 * Helper mode (spawn_exec, or spawn_container joining a pid namespace):
 *
 *   parent                         helper (plain clone3)          final (clone3 CLONE_PARENT)
 *   pe_spawn: clone3(CLONE_PIDFD) ▶ setns(fds/pidfd, flags)
 *   ◀─ helper pid, helper pidfd     clone3(CLONE_PARENT|NEW*) ──▶ (a child of the daemon, in
 *   await wait_readable(pid) ◀───── write(pid, final pid)          the joined pid ns)
 *                                   _exit(0)                       read(sync) … blocks
 *   reap helper (pidfd), pidfd_open(final pid)
 *   await prepare(pid); pe_release ──────────────────────────────▶ same steps as the child
 *   await wait_readable(err) … as in direct mode                   above (exec mode skips the
 *                                                                  rootfs steps)
 *   If the helper fails (setns, clone) it writes {step, errno} to err and exits: the pid pipe
 *   then reads EOF and the parent reads err.
 *
 * Through the spawner (live restore, native/pe_spawner.c): "parent" above is split in two.
 * pe-spawner runs pe_spawn() (the spec arrives packed, pe_wire.c), resolves helper mode
 * itself (reads pid, reaps the helper, pidfd_open), stays the container's parent and reaper,
 * and passes pidfd, sync_w, err_r [, sock_r] to the daemon (SCM_RIGHTS); the daemon then runs
 * the rest of this protocol (prepare, pe_release, err EOF, pty) exactly as in direct mode:
 *
 *   daemon ── SPAWN(spec, fds) ──▶ spawner: pe_spawn ──▶ child … read(sync) blocks
 *   daemon ◀── SPAWNED(pid; pidfd, sync_w, err_r[, sock_r]) ── spawner
 *   daemon: prepare(pid); pe_release(sync_w) ──────────────────▶ child runs on, execve
 *   daemon: wait_readable(err_r) … EOF                            (exit: spawner reaps, EXIT)
 *
 * With nothing to prepare (the child joins its cgroups itself, no network to join, no tty)
 * the daemon asks for GO and the spawner runs the daemon's half too:
 *
 *   daemon ── SPAWN(spec, fds, GO) ──▶ spawner: pe_spawn, pe_release ──▶ child runs on, execve
 *                                      spawner: err_r in its epoll … EOF or {step, errno, index}
 *   daemon ◀── SPAWNED(pid[, step/errno/index]; pidfd) ── spawner
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>

#include "pe_spawn.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_seccomp
#define SYS_seccomp 317
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define PE_CLOSE_RANGE_CLOEXEC (1U << 2)
#define PE_RESOLVE_NO_MAGICLINKS 0x02
#define PE_RESOLVE_IN_ROOT 0x10
#define PE_FSOPEN_CLOEXEC 0x1
#define PE_FSMOUNT_CLOEXEC 0x1
#define PE_FSCONFIG_SET_STRING 1
#define PE_FSCONFIG_CMD_CREATE 6
#define PE_MOVE_MOUNT_F_EMPTY_PATH 0x4

#define PE_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct pe_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

struct pe_open_how {
    uint64_t flags, mode, resolve;
};

/* Per-spawn file descriptors, as seen by the child. */
struct pe_ctx {
    const struct pe_spec *spec;
    int sync_r, err_w, sock_w, pid_w;
};

/* ───────────────────────────── small syscall helpers ───────────────────────────── */

static long pe_clone3(uint64_t flags, int *pidfd)
{
    struct pe_clone_args a;
    memset(&a, 0, sizeof a);
    a.flags = flags;
    /* With CLONE_PARENT the kernel wants exit_signal 0 and takes ours (SIGCHLD). */
    a.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    if (pidfd)
        a.pidfd = (uint64_t)(uintptr_t)pidfd;
    return syscall(SYS_clone3, &a, sizeof a);
}

static int pe_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
    struct pe_open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Write all, retrying on EINTR; async-signal-safe. */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void close_if(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* "/proc/self/fd/<fd>" into buf (no snprintf in the child). */
static void procfd_path(char *buf, int fd)
{
    static const char prefix[] = "/proc/self/fd/";
    char digits[16];
    int n = 0;
    memcpy(buf, prefix, sizeof prefix - 1);
    do {
        digits[n++] = (char)('0' + fd % 10);
        fd /= 10;
    } while (fd && n < 15);
    for (int i = 0; i < n; i++)
        buf[sizeof prefix - 1 + i] = digits[n - 1 - i];
    buf[sizeof prefix - 1 + n] = '\0';
}

/* ─────────────────────────────────── child ─────────────────────────────────── */

static __attribute__((noreturn)) void child_fail(const struct pe_ctx *c, int step, int err, int index)
{
    struct pe_err e = {.step = step, .err = err, .index = index};
    (void)write_all(c->err_w, &e, sizeof e);
    _exit(PE_CHILD_FAIL_EXIT);
}

#define TRY(c, expr, step, index)                                                                 \
    do {                                                                                          \
        if ((expr) < 0)                                                                           \
            child_fail((c), (step), errno, (index));                                              \
    } while (0)

/* Default dispositions, and the mask empty, or full when the process must meet its first
 * signals with them blocked (spec->exec_signals_blocked). */
static void reset_signals(int keep_blocked)
{
    struct sigaction sa;
    sigset_t mask;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        (void)sigaction(sig, &sa, NULL); /* glibc-reserved RT signals answer EINVAL: fine */
    }
    if (keep_blocked)
        sigfillset(&mask);
    else
        sigemptyset(&mask);
    (void)sigprocmask(SIG_SETMASK, &mask, NULL);
}

/*
 * Open (O_PATH) `path` inside the tree rooted at `rootfd`, resolving every symlink as if
 * rootfd were "/" (RESOLVE_IN_ROOT), so nothing can point outside the rootfs.  With
 * `create` = PE_CREATE_DIR / PE_CREATE_FILE, missing components are created as directories
 * (0755) and the last one as a directory or an empty file (0644).
 */
enum { PE_CREATE_NONE = 0, PE_CREATE_DIR = 1, PE_CREATE_FILE = 2 };

/* Create the last component of `buf` (starting at buf + start: a directory, or an empty
 * file with PE_CREATE_FILE) in `parent` (an O_PATH fd of its directory, resolved in the
 * root) and open `buf` in the root. Returns the O_PATH fd, or -1 with errno; `*dangling` is
 * set when the name exists but does not resolve (a dangling symlink). */
static int create_last(int rootfd, int parent, const char *buf, size_t start, int create, int *dangling)
{
    const uint64_t resolve = PE_RESOLVE_IN_ROOT | PE_RESOLVE_NO_MAGICLINKS;
    int rc;
    *dangling = 0;
    if (create == PE_CREATE_FILE) {
        rc = openat(parent, buf + start, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (rc >= 0)
            close(rc);
    } else {
        rc = mkdirat(parent, buf + start, 0755);
    }
    if (rc < 0 && errno != EEXIST)
        return -1;
    int fd = pe_openat2(rootfd, buf, O_PATH | O_CLOEXEC, resolve);
    if (fd < 0 && errno == ENOENT && rc < 0)
        *dangling = 1;
    return fd;
}

static int open_in_root(int rootfd, const char *path, int create)
{
    const uint64_t resolve = PE_RESOLVE_IN_ROOT | PE_RESOLVE_NO_MAGICLINKS;
    int fd = pe_openat2(rootfd, path, O_PATH | O_CLOEXEC, resolve);
    if (fd >= 0 || errno != ENOENT || create == PE_CREATE_NONE)
        return fd;

    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    /* Most missing paths miss only their last component (/dev/pts in the new /dev,
     * /sys/fs/cgroup/<hierarchy> in the new tmpfs): create it in its parent, resolved in
     * the root like every step of the walk below (3 openat2 instead of 2 + 2 per level).
     * The walk takes over when the parent is missing too, or the name is a dangling
     * symlink (the walk creates its target, inside the root). */
    {
        size_t end = len;
        while (end > 0 && buf[end - 1] == '/')
            end--;
        size_t start = end;
        while (start > 0 && buf[start - 1] != '/')
            start--;
        int dots = (end - start == 1 && buf[start] == '.') ||
                   (end - start == 2 && buf[start] == '.' && buf[start + 1] == '.');
        if (end > start && !dots && end == len) {
            int parent;
            if (start == 0) {
                parent = pe_openat2(rootfd, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, resolve);
            } else {
                char save_start = buf[start];
                buf[start] = '\0';
                parent = pe_openat2(rootfd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC, resolve);
                buf[start] = save_start;
            }
            if (parent >= 0) {
                int dangling;
                fd = create_last(rootfd, parent, buf, start, create, &dangling);
                int e = errno;
                close(parent);
                if (fd >= 0 || !dangling) {
                    errno = e;
                    return fd;
                }
            } else if (errno != ENOENT) {
                return -1;
            }
        }
    }
    /* Walk prefixes: "/a", "/a/b", …; create what is missing. */
    size_t pos = 0;
    int restarts = 0;
    while (pos < len) {
        while (pos < len && buf[pos] == '/')
            pos++;
        if (pos >= len)
            break;
        size_t start = pos;
        while (pos < len && buf[pos] != '/')
            pos++;
        size_t end = pos;
        int last = 1;
        for (size_t k = end; k < len; k++)
            if (buf[k] != '/') {
                last = 0;
                break;
            }
        char saved = buf[end];
        buf[end] = '\0';
        fd = pe_openat2(rootfd, buf, O_PATH | O_CLOEXEC, resolve);
        if (fd < 0 && errno == ENOENT) {
            /* The parent exists (checked in the previous round): create this component. */
            char save_start = buf[start];
            int parent;
            if (start == 0) {
                parent = pe_openat2(rootfd, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, resolve);
            } else {
                buf[start] = '\0';
                parent = pe_openat2(rootfd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC, resolve);
                buf[start] = save_start;
            }
            if (parent < 0)
                return -1;
            int rc;
            if (last && create == PE_CREATE_FILE) {
                rc = openat(parent, buf + start, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (rc >= 0)
                    close(rc);
            } else {
                rc = mkdirat(parent, buf + start, 0755);
            }
            int saved_errno = errno;
            if (rc < 0 && saved_errno != EEXIST) {
                close(parent);
                errno = saved_errno;
                return -1;
            }
            fd = pe_openat2(rootfd, buf, O_PATH | O_CLOEXEC, resolve);
            if (fd < 0 && errno == ENOENT && rc < 0) {
                /* A dangling symlink: create its target (inside the root) instead, like
                 * runc's SecureJoin + MkdirAll.  Rewrite the path and start over. */
                char link[PATH_MAX], next[PATH_MAX];
                ssize_t ll = readlinkat(parent, buf + start, link, sizeof link - 1);
                close(parent);
                if (ll < 0 || ++restarts > 40) {
                    errno = ll < 0 ? errno : ELOOP;
                    return -1;
                }
                link[ll] = '\0';
                buf[end] = saved;
                size_t n = 0;
                if (link[0] != '/') { /* relative to the symlink's directory */
                    memcpy(next, buf, start);
                    n = start;
                }
                size_t rest = len - end;
                if (n + (size_t)ll + rest + 2 >= sizeof next) {
                    errno = ENAMETOOLONG;
                    return -1;
                }
                memcpy(next + n, link, (size_t)ll);
                n += (size_t)ll;
                memcpy(next + n, buf + end, rest + 1);
                len = n + rest;
                memcpy(buf, next, len + 1);
                pos = 0;
                continue;
            }
            close(parent);
        }
        buf[end] = saved;
        if (fd < 0)
            return -1;
        if (!last)
            close(fd);
        else
            return fd;
    }
    /* path was "/" (or empty) */
    return pe_openat2(rootfd, "/", O_PATH | O_CLOEXEC, resolve);
}

static unsigned long statvfs_to_ms(unsigned long f)
{
    unsigned long ms = 0;
    if (f & ST_NOSUID)
        ms |= MS_NOSUID;
    if (f & ST_NODEV)
        ms |= MS_NODEV;
    if (f & ST_NOEXEC)
        ms |= MS_NOEXEC;
    if (f & ST_NOATIME)
        ms |= MS_NOATIME;
    if (f & ST_NODIRATIME)
        ms |= MS_NODIRATIME;
    if (f & ST_RELATIME)
        ms |= MS_RELATIME;
    return ms;
}

/* Remount an existing bind mount read-only, keeping its nosuid/nodev/noexec/atime flags. */
static int remount_ro(const char *target, unsigned long extra)
{
    struct statvfs sv;
    unsigned long keep = 0;
    if (statvfs(target, &sv) == 0)
        keep = statvfs_to_ms(sv.f_flag);
    return mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep | extra, NULL);
}

static void do_mounts(const struct pe_ctx *c, int rootfd)
{
    const struct pe_spec *s = c->spec;
    char target[64];
    for (int i = 0; i < s->nmounts; i++) {
        const struct pe_mount *m = &s->mounts[i];
        int create = PE_CREATE_DIR;
        if (m->flags & MS_BIND) {
            struct stat st;
            TRY(c, stat(m->source, &st), PE_STEP_MOUNT_SOURCE, i);
            if (!S_ISDIR(st.st_mode))
                create = PE_CREATE_FILE;
        }
        int fd = open_in_root(rootfd, m->target, create);
        if (fd < 0)
            child_fail(c, PE_STEP_MOUNTPOINT, errno, i);
        procfd_path(target, fd);
        if (m->flags & MS_BIND) {
            TRY(c, mount(m->source, target, NULL, m->flags & (MS_BIND | MS_REC), NULL), PE_STEP_MOUNT, i);
            /* Bind mounts ignore the other flags at creation: remount to apply them. */
            unsigned long rest = m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
            if (rest) {
                /* Re-open: the old O_PATH fd points below the new mount. */
                close(fd);
                fd = open_in_root(rootfd, m->target, PE_CREATE_NONE);
                if (fd < 0)
                    child_fail(c, PE_STEP_MOUNTPOINT, errno, i);
                procfd_path(target, fd);
                if (rest & MS_RDONLY)
                    TRY(c, remount_ro(target, rest & ~MS_RDONLY), PE_STEP_REMOUNT, i);
                else
                    TRY(c, mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | rest, NULL), PE_STEP_REMOUNT, i);
            }
        } else {
            TRY(c, mount(m->source, target, m->fstype, m->flags, m->data), PE_STEP_MOUNT, i);
        }
        if (m->propagation) {
            close(fd);
            fd = open_in_root(rootfd, m->target, PE_CREATE_NONE);
            if (fd < 0)
                child_fail(c, PE_STEP_MOUNTPOINT, errno, i);
            procfd_path(target, fd);
            TRY(c, mount(NULL, target, NULL, m->propagation, NULL), PE_STEP_PROPAGATION, i);
        }
        close(fd);
    }
}

/* The directory holding `path` ("/dev/null" → "/dev"), opened in the root for *at calls.
 * Consecutive nodes and links share it (every default one is in /dev): `*cached` and
 * `cached_path` keep the last one open (creating entries in a directory does not change
 * what its path resolves to). Returns the dir fd or -1 with errno; sets `*name`. */
static int dir_of(int rootfd, const char *path, const char **name, int *cached, char *cached_path)
{
    const char *slash = strrchr(path, '/');
    size_t plen = slash ? (size_t)(slash - path) : 0;
    *name = slash ? slash + 1 : path;
    if (plen >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char parent[PATH_MAX];
    memcpy(parent, path, plen);
    parent[plen] = '\0';
    if (!plen) {
        parent[0] = '/';
        parent[1] = '\0';
    }
    if (*cached >= 0 && strcmp(cached_path, parent) == 0)
        return *cached;
    if (*cached >= 0) {
        close(*cached);
        *cached = -1;
    }
    int dfd = open_in_root(rootfd, parent, PE_CREATE_DIR);
    if (dfd < 0)
        return -1;
    char dpath[64];
    procfd_path(dpath, dfd);
    int dirfd = open(dpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    close(dfd);
    if (dirfd < 0) {
        errno = e;
        return -1;
    }
    memcpy(cached_path, parent, strlen(parent) + 1);
    *cached = dirfd;
    return dirfd;
}

static void create_devices(const struct pe_ctx *c, int rootfd)
{
    const struct pe_spec *s = c->spec;
    int cached = -1;
    char cached_path[PATH_MAX];
    const char *name;
    for (int i = 0; i < s->ndevices; i++) {
        const struct pe_device *d = &s->devices[i];
        int dirfd = dir_of(rootfd, d->path, &name, &cached, cached_path);
        if (dirfd < 0)
            child_fail(c, PE_STEP_DEVICES, errno, i);
        mode_t type = d->type == 'b' ? S_IFBLK : S_IFCHR;
        if (mknodat(dirfd, name, type | (d->mode & 07777), makedev(d->major, d->minor)) < 0) {
            if (errno != EEXIST)
                child_fail(c, PE_STEP_DEVICES, errno, i);
        } else {
            TRY(c, fchmodat(dirfd, name, d->mode & 07777, 0), PE_STEP_DEVICES, i);
            TRY(c, fchownat(dirfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW), PE_STEP_DEVICES, i);
        }
    }
    for (int i = 0; i < s->nsymlinks; i++) {
        const char *path = s->symlink_paths[i];
        int dirfd = dir_of(rootfd, path, &name, &cached, cached_path);
        if (dirfd < 0)
            child_fail(c, PE_STEP_SYMLINKS, errno, i);
        if (symlinkat(s->symlink_targets[i], dirfd, name) < 0 && errno != EEXIST)
            child_fail(c, PE_STEP_SYMLINKS, errno, i);
    }
    if (cached >= 0)
        close(cached);
}

/* Write `value` to the file at `path` (a /proc file): open, one write, close. */
static int write_proc_file(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(value);
    ssize_t n;
    do {
        n = write(fd, value, len);
    } while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0 || (size_t)n != len) {
        errno = n < 0 ? e : EIO;
        return -1;
    }
    return 0;
}

/* --sysctl: in the container's own namespaces, after its /proc is mounted and before
 * /proc/sys is made read-only (a readonly path). */
static void write_sysctls(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;
    for (int i = 0; i < s->nsysctl; i++)
        TRY(c, write_proc_file(s->sysctl_paths[i], s->sysctl_values[i]), PE_STEP_SYSCTL, i);
}

/* Always set: 0 unless asked, so the daemon's (or spawner's) score never leaks in. */
static void set_oom_score_adj(const struct pe_ctx *c)
{
    char buf[16], digits[12];
    int v = c->spec->oom_score_adj, n = 0, len = 0;
    unsigned int u = v < 0 ? (unsigned int)(-(long)v) : (unsigned int)v;
    if (v < 0)
        buf[len++] = '-';
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u && n < 11);
    while (n)
        buf[len++] = digits[--n];
    buf[len] = '\0';
    TRY(c, write_proc_file("/proc/self/oom_score_adj", buf), PE_STEP_OOM_SCORE_ADJ, -1);
}

static void setup_rootfs(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;

    /* Nothing we mount may propagate back to the host. */
    TRY(c, mount(NULL, "/", NULL, MS_REC | (s->root_propagation ? s->root_propagation : MS_SLAVE), NULL),
        PE_STEP_ROOT_PROPAGATION, -1);
    /* pivot_root needs the new root to be a mount point. */
    TRY(c, mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL), PE_STEP_BIND_ROOTFS, -1);
    int rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        child_fail(c, PE_STEP_BIND_ROOTFS, errno, -1);

    do_mounts(c, rootfd);
    create_devices(c, rootfd);
    if (s->cwd && s->cwd[0]) {
        int fd = open_in_root(rootfd, s->cwd, PE_CREATE_DIR);
        if (fd < 0)
            child_fail(c, PE_STEP_CWD, errno, -1);
        close(fd);
    }

    /* pivot_root(".", "."): the old root ends up stacked on "."; detach it. */
    TRY(c, fchdir(rootfd), PE_STEP_PIVOT_ROOT, -1);
    close(rootfd);
    TRY(c, (int)syscall(SYS_pivot_root, ".", "."), PE_STEP_PIVOT_ROOT, -1);
    TRY(c, mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL), PE_STEP_PIVOT_ROOT, -1);
    TRY(c, umount2(".", MNT_DETACH), PE_STEP_PIVOT_ROOT, -1);
    TRY(c, chdir("/"), PE_STEP_PIVOT_ROOT, -1);

    write_sysctls(c);
    for (int i = 0; i < s->nmasked; i++) {
        const char *p = s->masked_paths[i];
        struct stat st;
        if (stat(p, &st) < 0) {
            if (errno == ENOENT)
                continue;
            child_fail(c, PE_STEP_MASK_PATHS, errno, i);
        }
        if (S_ISDIR(st.st_mode))
            TRY(c, mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL), PE_STEP_MASK_PATHS, i);
        else
            TRY(c, mount("/dev/null", p, NULL, MS_BIND, NULL), PE_STEP_MASK_PATHS, i);
    }
    for (int i = 0; i < s->nreadonly; i++) {
        const char *p = s->readonly_paths[i];
        if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            child_fail(c, PE_STEP_READONLY_PATHS, errno, i);
        }
        TRY(c, remount_ro(p, 0), PE_STEP_READONLY_PATHS, i);
    }
    if (s->readonly_rootfs)
        TRY(c, remount_ro("/", 0), PE_STEP_READONLY_ROOTFS, -1);
}

static void setup_stdio(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;
    int src[3];
    int in[3] = {s->stdin_fd, s->stdout_fd, s->stderr_fd};
    /* Move the sources above 2 first so dup2 never clobbers one we still need. */
    for (int i = 0; i < 3; i++) {
        int fd = in[i];
        int opened = -1;
        if (fd < 0) {
            opened = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (opened < 0)
                child_fail(c, PE_STEP_STDIO, errno, i);
            fd = opened;
        }
        src[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (src[i] < 0)
            child_fail(c, PE_STEP_STDIO, errno, i);
        if (opened >= 0)
            close(opened);
    }
    for (int i = 0; i < 3; i++) {
        TRY(c, dup2(src[i], i), PE_STEP_STDIO, i);
        close(src[i]);
    }
}

static void send_fd(const struct pe_ctx *c, int fd)
{
    char byte = 'T';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&u, 0, sizeof u);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    ssize_t n;
    do {
        n = sendmsg(c->sock_w, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        child_fail(c, PE_STEP_TTY, errno, 3);
}

static void setup_tty(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;
    int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        child_fail(c, PE_STEP_TTY, errno, 0);
    int unlock = 0;
    TRY(c, ioctl(master, TIOCSPTLCK, &unlock), PE_STEP_TTY, 1);
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        child_fail(c, PE_STEP_TTY, errno, 2);
    if (s->tty_rows || s->tty_cols) {
        struct winsize ws = {.ws_row = s->tty_rows, .ws_col = s->tty_cols};
        TRY(c, ioctl(master, TIOCSWINSZ, &ws), PE_STEP_TTY, 4);
    }
    (void)fchown(slave, s->uid, (gid_t)-1);
    TRY(c, ioctl(slave, TIOCSCTTY, 0), PE_STEP_TTY, 5);
    for (int i = 0; i < 3; i++)
        TRY(c, dup2(slave, i), PE_STEP_TTY, 6);
    close(slave);
    send_fd(c, master);
    close(master);
}

/* Go's exec.findExecutable: 0 or an errno. */
static int find_executable(const char *file)
{
    struct stat st;
    if (stat(file, &st) < 0)
        return errno;
    if (S_ISDIR(st.st_mode))
        return EISDIR;
    if (faccessat(AT_FDCWD, file, X_OK, AT_EACCESS) == 0)
        return 0;
    int e = errno;
    if (e != ENOSYS && e != EPERM)
        return e;
    return (st.st_mode & 0111) ? 0 : EACCES;
}

static const char *env_path(char *const *envp)
{
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            return *e + 5;
    return PE_DEFAULT_PATH;
}

/* Resolve argv[0] like Go's exec.LookPath; writes the result into out (PATH_MAX). */
static void lookup_executable(const struct pe_ctx *c, char *out)
{
    const struct pe_spec *s = c->spec;
    const char *file = s->argv[0];
    size_t flen = strlen(file);
    if (flen == 0)
        child_fail(c, PE_STEP_LOOKUP, ENOENT, 0);
    if (strchr(file, '/')) {
        struct stat st;
        if (stat(file, &st) < 0)
            child_fail(c, PE_STEP_STAT, errno, 0);
        int e = find_executable(file);
        if (e)
            child_fail(c, PE_STEP_ACCESS, e, 0);
        if (flen >= PATH_MAX)
            child_fail(c, PE_STEP_LOOKUP, ENAMETOOLONG, 0);
        memcpy(out, file, flen + 1);
        return;
    }
    const char *p = env_path(s->envp);
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        const char *dir = p;
        if (dlen == 0) {
            dir = ".";
            dlen = 1;
        }
        if (dlen + 1 + flen < PATH_MAX) {
            memcpy(out, dir, dlen);
            out[dlen] = '/';
            memcpy(out + dlen + 1, file, flen + 1);
            if (find_executable(out) == 0)
                return;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    child_fail(c, PE_STEP_LOOKUP, ENOENT, 0);
}

static void drop_privileges(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;
    for (int i = 0; i < s->nrlimits; i++) {
        struct rlimit rl = {.rlim_cur = s->rlimits[i].soft, .rlim_max = s->rlimits[i].hard};
        TRY(c, setrlimit(s->rlimits[i].resource, &rl), PE_STEP_RLIMITS, i);
    }
    /* Bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP, which we still hold. */
    for (int cap = 0; cap < 64; cap++) {
        if (s->caps & (1ULL << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break; /* past the kernel's last capability: so is every higher one */
            child_fail(c, PE_STEP_CAPS, errno, cap);
        }
    }
    /* Keep permitted caps across setuid so capset below can still set them. */
    TRY(c, prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), PE_STEP_CAPS, -1);
    /* Raw syscalls, not glibc's setgroups/setresgid/setresuid: in a multithreaded process
     * those broadcast the change to every thread (__nptl_setxid), taking glibc's stack-list
     * lock — which a daemon thread may have held at the moment of clone, so in our copy of
     * the address space it would never be released.  The kernel call changes just us. */
    TRY(c, (int)syscall(SYS_setgroups, (size_t)s->ngroups, s->groups), PE_STEP_SETGROUPS, -1);
    TRY(c, (int)syscall(SYS_setresgid, s->gid, s->gid, s->gid), PE_STEP_SETGID, -1);
    TRY(c, (int)syscall(SYS_setresuid, s->uid, s->uid, s->uid), PE_STEP_SETUID, -1);
    TRY(c, prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), PE_STEP_CAPS, -1);

    /* Installing a seccomp filter needs no_new_privs or CAP_SYS_ADMIN.  Docker only sets
     * no_new_privs on request (setuid binaries must keep working), so — like runc, which
     * installs the filter before dropping capabilities in that case — we hold on to
     * CAP_SYS_ADMIN, but only in effective/permitted, and only until the filter is in: it is
     * already gone from the bounding set, and execve recomputes permitted/effective from the
     * bounding set (root) or file caps (others) with empty inheritable/ambient sets, so the
     * extra bit never reaches the container.  This keeps the filter the very last step. */
    uint64_t caps = s->caps;
    if (s->seccomp_len && !s->no_new_privileges)
        caps |= 1ULL << CAP_SYS_ADMIN;
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].effective = data[0].permitted = (uint32_t)(caps & 0xffffffffu);
    data[1].effective = data[1].permitted = (uint32_t)(caps >> 32);
    TRY(c, (int)syscall(SYS_capset, &hdr, data), PE_STEP_CAPS, -1);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        child_fail(c, PE_STEP_CAPS, errno, -1);
    if (s->no_new_privileges)
        TRY(c, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), PE_STEP_NO_NEW_PRIVS, -1);
}

static void mark_fds_cloexec(void)
{
    if (syscall(SYS_close_range, 3U, ~0U, PE_CLOSE_RANGE_CLOEXEC) == 0)
        return;
    struct rlimit rl;
    long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536)
        max = (long)rl.rlim_cur;
    for (long fd = 3; fd < max; fd++)
        (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
}

/* The container's seccomp filter, after everything else: from here on only execve runs (and
 * on failure write(err) + _exit), so a profile cannot break our own set-up steps. */
static void install_seccomp(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;
    if (!s->seccomp_prog || !s->seccomp_len)
        return;
    struct sock_fprog prog = {
        .len = (unsigned short)s->seccomp_len,
        .filter = (struct sock_filter *)(uintptr_t)s->seccomp_prog,
    };
    if (s->seccomp_len > BPF_MAXINSNS)
        child_fail(c, PE_STEP_SECCOMP, EINVAL, -1);
    TRY(c, (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), PE_STEP_SECCOMP, -1);
}

/* A new network namespace starts with `lo` down; Docker's containers (even --network none)
 * see it up with 127.0.0.1. Needs CAP_NET_ADMIN, so before privileges drop. */
static void loopback_up(const struct pe_ctx *c)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        child_fail(c, PE_STEP_LOOPBACK, errno, -1);
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    TRY(c, ioctl(fd, SIOCGIFFLAGS, &ifr), PE_STEP_LOOPBACK, -1);
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    TRY(c, ioctl(fd, SIOCSIFFLAGS, &ifr), PE_STEP_LOOPBACK, -1);
    close(fd);
}

/* cgroup v1: move this (single-threaded) process into each hierarchy's cgroup itself. */
static void join_cgroups(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;
    for (int i = 0; i < s->ncgroup_tasks; i++) {
        int fd = open(s->cgroup_tasks[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            child_fail(c, PE_STEP_CGROUP, errno, i);
        if (write(fd, "0", 1) != 1)
            child_fail(c, PE_STEP_CGROUP, errno, i);
        close(fd);
    }
}

/* Runs in the process that will exec; never returns. */
static __attribute__((noreturn)) void child_main(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;
    char byte;
    ssize_t n;

    do {
        n = read(c->sync_r, &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(0); /* parent aborted (prepare failed / cancelled) */
    close(c->sync_r);

    join_cgroups(c);
    set_oom_score_adj(c);
    if (s->unshare_cgroup)
        TRY(c, unshare(CLONE_NEWCGROUP), PE_STEP_UNSHARE_CGROUP, -1);
    setup_stdio(c);
    umask(022);
    if (s->mode == PE_MODE_CONTAINER && (s->clone_flags & CLONE_NEWNET))
        loopback_up(c);
    if (s->mode == PE_MODE_CONTAINER)
        setup_rootfs(c);
    if (s->hostname)
        TRY(c, sethostname(s->hostname, strlen(s->hostname)), PE_STEP_HOSTNAME, -1);
    /* Our own session: the daemon's terminal signals never reach the container. */
    (void)setsid();
    if (s->tty)
        setup_tty(c);
    if (s->cwd && s->cwd[0])
        TRY(c, chdir(s->cwd), PE_STEP_CHDIR, -1);
    drop_privileges(c);

    char path[PATH_MAX];
    lookup_executable(c, path);
    mark_fds_cloexec(); /* the err pipe closes only when execve succeeds */
    install_seccomp(c);
    execve(path, s->argv, s->envp);
    child_fail(c, PE_STEP_EXEC, errno, 0);
}

static void join_namespaces(const struct pe_ctx *c)
{
    const struct pe_spec *s = c->spec;
    for (int i = 0; i < s->njoin; i++)
        TRY(c, setns(s->join_fds[i], s->join_types[i]), PE_STEP_SETNS, i);
}

/* ─────────────────────────────────── parent ─────────────────────────────────── */

/* Keep an fd we pass to the child above 0..2 (the daemon may run with them closed). */
static int hi_fd(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return n;
}

static int pipe_hi(int p[2])
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    p[0] = hi_fd(p[0]);
    p[1] = hi_fd(p[1]);
    if (p[0] < 0 || p[1] < 0) {
        close_if(p[0]);
        close_if(p[1]);
        return -1;
    }
    return 0;
}

int pe_spawn(const struct pe_spec *spec, struct pe_spawn_result *out)
{
    int sync_p[2] = {-1, -1}, err_p[2] = {-1, -1}, pid_p[2] = {-1, -1}, sock[2] = {-1, -1};
    int rc = 0;
    int helper = spec->use_helper;

    memset(out, 0, sizeof *out);
    out->pid = out->helper_pid = -1;
    out->pidfd = out->helper_pidfd = out->sync_w = out->err_r = out->sock_r = out->pid_r = -1;

    if (pipe_hi(sync_p) < 0 || pipe_hi(err_p) < 0 || (helper && pipe_hi(pid_p) < 0))
        goto fail_errno;
    if (spec->tty) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0)
            goto fail_errno;
        sock[0] = hi_fd(sock[0]);
        sock[1] = hi_fd(sock[1]);
        if (sock[0] < 0 || sock[1] < 0)
            goto fail_errno;
    }

    struct pe_ctx ctx = {.spec = spec, .sync_r = sync_p[0], .err_w = err_p[1], .sock_w = sock[1], .pid_w = pid_p[1]};

    /* No signal handler of the daemon may run in the child before it resets them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);

    int pidfd = -1;
    long pid = pe_clone3(CLONE_PIDFD | (helper ? 0 : spec->clone_flags), &pidfd);
    if (pid == 0) {
        /* child (direct mode) or helper */
        close(sync_p[1]);
        close(err_p[0]);
        close_if(sock[0]);
        close_if(pid_p[0]);
        reset_signals(spec->exec_signals_blocked);
        join_namespaces(&ctx);
        if (!helper)
            child_main(&ctx);
        long fpid = pe_clone3(CLONE_PARENT | spec->clone_flags, NULL);
        if (fpid == 0) {
            close(pid_p[1]);
            child_main(&ctx);
        }
        if (fpid < 0)
            child_fail(&ctx, PE_STEP_CLONE, errno, -1);
        int32_t v = (int32_t)fpid;
        (void)write_all(pid_p[1], &v, sizeof v);
        _exit(0);
    }
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        errno = clone_errno;
        goto fail_errno;
    }

    close(sync_p[0]);
    close(err_p[1]);
    close_if(sock[1]);
    close_if(pid_p[1]);
    if (helper) {
        out->helper_pid = (int)pid;
        out->helper_pidfd = pidfd;
        out->pid_r = pid_p[0];
    } else {
        out->pid = (int)pid;
        out->pidfd = pidfd;
    }
    out->sync_w = sync_p[1];
    out->err_r = err_p[0];
    out->sock_r = sock[0];
    return 0;

fail_errno:
    rc = -errno;
    close_if(sync_p[0]);
    close_if(sync_p[1]);
    close_if(err_p[0]);
    close_if(err_p[1]);
    close_if(pid_p[0]);
    close_if(pid_p[1]);
    close_if(sock[0]);
    close_if(sock[1]);
    return rc;
}

int pe_release(int sync_w)
{
    char go = 'G';
    int rc = write_all(sync_w, &go, 1) < 0 ? -errno : 0;
    close(sync_w);
    return rc;
}

int pe_recv_fd(int sock)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ENODATA;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
        return -EBADMSG;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

/* ─────────────────────────────── overlay mounts ─────────────────────────────── */

static int overlay_legacy(const char *const *lowers, int n, const char *upper, const char *work, const char *target)
{
    size_t len = 64 + strlen(upper) + strlen(work);
    for (int i = 0; i < n; i++)
        len += strlen(lowers[i]) + 1;
    char *data = malloc(len);
    if (!data)
        return -ENOMEM;
    char *p = data;
    p = stpcpy(p, "lowerdir=");
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ':';
        p = stpcpy(p, lowers[i]);
    }
    p = stpcpy(p, ",upperdir=");
    p = stpcpy(p, upper);
    p = stpcpy(p, ",workdir=");
    p = stpcpy(p, work);
    int rc = mount("overlay", target, "overlay", 0, data) < 0 ? -errno : 0;
    free(data);
    return rc;
}

int pe_mount_overlay(const char *const *lowers, int n, const char *upper, const char *work, const char *target)
{
    int fsfd = (int)syscall(SYS_fsopen, "overlay", PE_FSOPEN_CLOEXEC);
    if (fsfd < 0) {
        if (errno == ENOSYS)
            return overlay_legacy(lowers, n, upper, work, target);
        return -errno;
    }
    int rc = 0, mfd = -1;
#define FSCFG(key, val)                                                                           \
    do {                                                                                          \
        if (syscall(SYS_fsconfig, fsfd, PE_FSCONFIG_SET_STRING, key, val, 0) < 0) {               \
            rc = -errno;                                                                          \
            goto out;                                                                             \
        }                                                                                         \
    } while (0)
    FSCFG("source", "overlay"); /* what /proc/mounts and df show, as for the legacy mount */
    for (int i = 0; i < n; i++) {
        if (syscall(SYS_fsconfig, fsfd, PE_FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0) {
            rc = -errno;
            if (rc == -EINVAL && i == 0) {
                /* Kernel < 6.8: no "lowerdir+"; the legacy string is our only choice. */
                close(fsfd);
                return overlay_legacy(lowers, n, upper, work, target);
            }
            goto out;
        }
    }
    if (upper && upper[0]) {
        FSCFG("upperdir", upper);
        FSCFG("workdir", work);
    }
    if (syscall(SYS_fsconfig, fsfd, PE_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        rc = -errno;
        goto out;
    }
    mfd = (int)syscall(SYS_fsmount, fsfd, PE_FSMOUNT_CLOEXEC, 0);
    if (mfd < 0) {
        rc = -errno;
        goto out;
    }
    if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, target, PE_MOVE_MOUNT_F_EMPTY_PATH) < 0)
        rc = -errno;
out:
#undef FSCFG
    close_if(mfd);
    close(fsfd);
    return rc;
}

int pe_mount_tmpfs(const char *target, const char *data)
{
    return mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data) < 0 ? -errno : 0;
}

int pe_make_shared(const char *path, int bind_first)
{
    if (bind_first && mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -errno;
    return mount(NULL, path, NULL, MS_SHARED, NULL) < 0 ? -errno : 0;
}

int pe_unmount(const char *target)
{
    if (umount2(target, MNT_DETACH) < 0) {
        if (errno == EINVAL || errno == ENOENT)
            return 0;
        return -errno;
    }
    return 0;
}

/* ─────────────────────────────── tree removal ─────────────────────────────── */

/* Empty the directory open as `dfd` (closed here), never following symlinks nor entering
 * another file system (a mount left below is reported as EBUSY by its rmdir). */
/* fdopendir(fd), or NULL with fd closed and *rc = -errno. */
static DIR *listing_of(int fd, int *rc)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        *rc = -errno;
        close(fd);
    }
    return d;
}

static int dot_or_dotdot(const char *n)
{
    return n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0));
}

static int remove_contents(int dfd, dev_t dev, int depth)
{
    int rc = 0;
    DIR *d = listing_of(dfd, &rc);
    if (!d)
        return rc;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (dot_or_dotdot(n))
            continue;
        int isdir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) == 0)
                isdir = S_ISDIR(st.st_mode);
        }
        if (!isdir) {
            if (unlinkat(dirfd(d), n, 0) < 0 && errno != ENOENT && rc == 0)
                rc = -errno;
            continue;
        }
        int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            if (errno != ENOENT && rc == 0)
                rc = -errno;
            continue;
        }
        struct stat st;
        if (depth > 256 || fstat(sub, &st) < 0 || st.st_dev != dev) {
            close(sub); /* too deep, or a mount point: leave it (its rmdir says EBUSY) */
        } else {
            int r = remove_contents(sub, dev, depth + 1);
            if (r < 0 && rc == 0)
                rc = r;
        }
        if (unlinkat(dirfd(d), n, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
            rc = -errno;
    }
    closedir(d);
    return rc;
}

int pe_remove_tree(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ENOTDIR || errno == ELOOP)
            return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = remove_contents(fd, st.st_dev, 0);
    if (rmdir(path) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

/* From linux/fs.h, whose includes clash with sys/mount.h. */
#ifndef FS_IOC_GETFLAGS
#define FS_IOC_GETFLAGS _IOR('f', 1, long)
#endif
struct pe_fsxattr {
    uint32_t xflags, extsize, nextents, projid, cowextsize;
    unsigned char pad[8];
};
#ifndef FS_IOC_FSGETXATTR
#define FS_IOC_FSGETXATTR _IOR('X', 31, struct pe_fsxattr)
#endif

static int listed(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* What a container could have changed on an inode it saw (its rootfs' upper dir, a file
 * bound into it) and a reference of ours (made the same way, never shown to it) did not:
 * type, mode, owner, inode flags and project, extended attributes (ACLs, file capabilities,
 * user.*), other links. */
struct look {
    struct stat st;
    long flags; /* FS_IOC_GETFLAGS, or -errno */
    long xflags, projid; /* FS_IOC_FSGETXATTR's, or -errno */
    ssize_t xattrs; /* flistxattr's size, or -errno */
};

static int look_at(int fd, struct look *l)
{
    if (fstat(fd, &l->st) < 0)
        return -1;
    int flags = 0;
    l->flags = ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 ? -errno : flags;
    struct pe_fsxattr fsx;
    memset(&fsx, 0, sizeof fsx);
    if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) < 0) {
        l->xflags = l->projid = -errno;
    } else {
        l->xflags = fsx.xflags;
        l->projid = fsx.projid;
    }
    ssize_t n = flistxattr(fd, NULL, 0);
    l->xattrs = n < 0 ? (errno == ENOTSUP ? 0 : -errno) : n;
    return 0;
}

static int same_look(const struct look *a, const struct look *ref)
{
    return (a->st.st_mode & S_IFMT) == (ref->st.st_mode & S_IFMT) && (a->st.st_mode & 07777) == (ref->st.st_mode & 07777) &&
           a->st.st_uid == ref->st.st_uid && a->st.st_gid == ref->st.st_gid && a->st.st_dev == ref->st.st_dev &&
           a->flags == ref->flags && a->flags >= 0 && a->xflags == ref->xflags && a->projid == ref->projid &&
           a->xattrs == 0 && ref->xattrs == 0 &&
           (S_ISDIR(a->st.st_mode) || a->st.st_nlink == 1);
}

static int drop_overlay_xattrs(int fd)
{
    char names[4096];
    ssize_t n = flistxattr(fd, names, sizeof names);
    if (n < 0)
        return -1;
    static const char prefix[] = "trusted.overlay.";
    for (char *p = names; p < names + n; p += strlen(p) + 1)
        if (strncmp(p, prefix, sizeof prefix - 1) == 0 && fremovexattr(fd, p) < 0)
            return -1;
    return 0;
}

/* Keep `name` (a pristine entry) if it looks as `ref` does (a directory emptied first);
 * 1 kept, 0 not (the caller removes it). */
static int keep_pristine(int dfd, const char *name, const struct look *ref, dev_t dev)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct look l;
    if (look_at(fd, &l) < 0 || l.st.st_dev != dev || !(S_ISDIR(l.st.st_mode) || S_ISREG(l.st.st_mode))) {
        close(fd);
        return 0;
    }
    if (S_ISDIR(l.st.st_mode)) {
        int sub = dup(fd);
        if (sub < 0 || remove_contents(sub, dev, 1) < 0) {
            close(fd);
            return 0;
        }
        /* An upper dir's own: overlayfs marks it at mount (trusted.overlay.uuid, .impure…);
         * a new one has none. Anything else stays and keeps it from being reused. */
        if (l.xattrs > 0 && drop_overlay_xattrs(fd) == 0 && look_at(fd, &l) < 0) {
            close(fd);
            return 0;
        }
    }
    int kept = same_look(&l, ref);
    close(fd);
    return kept;
}

int pe_empty_except(const char *path, const char *const *dirs, int ndirs, const char *const *files, int nfiles,
                    const char *const *pristine, int npristine)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    /* The kept directories first: each must be a directory on the same file system (not a
     * mount point), emptied. The first is the reference for pristine directories. */
    struct look dir_ref, file_ref;
    int have_dir_ref = 0, have_file_ref = 0;
    unsigned files_bad = 0; /* kept names that are not plain files of ours: removed below */
    if (nfiles > 32) {
        close(fd);
        return -EINVAL;
    }
    for (int i = 0; i < ndirs; i++) {
        int sub = openat(fd, dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat sst;
        if (sub < 0 || fstat(sub, &sst) < 0 || sst.st_dev != st.st_dev) {
            int e = sub < 0 ? errno : EXDEV;
            close_if(sub);
            close(fd);
            return -e;
        }
        if (i == 0)
            have_dir_ref = look_at(sub, &dir_ref) == 0;
        int rc = remove_contents(sub, st.st_dev, 0);
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    /* Kept files: plain files of ours linked nowhere else; the first is the reference for
     * pristine files. */
    for (int i = 0; i < nfiles; i++) {
        int f = openat(fd, files[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (f < 0) {
            if (errno != ENOENT) /* a link (ELOOP), a directory…: not ours to keep */
                files_bad |= 1u << i;
            continue;
        }
        struct look l;
        if (look_at(f, &l) == 0 && S_ISREG(l.st.st_mode) && l.st.st_nlink == 1 && l.st.st_dev == st.st_dev) {
            if (i == 0) {
                file_ref = l;
                have_file_ref = 1;
            }
        } else {
            files_bad |= 1u << i;
        }
        close(f);
    }
    int rc = 0;
    DIR *d = listing_of(fd, &rc);
    if (!d)
        return rc;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (dot_or_dotdot(n))
            continue;
        if (listed(n, dirs, ndirs))
            continue;
        int kept = 0;
        for (int i = 0; i < nfiles && !kept; i++)
            kept = strcmp(n, files[i]) == 0 && !(files_bad & (1u << i));
        if (kept)
            continue;
        if (listed(n, pristine, npristine)) {
            int isdir = de->d_type == DT_DIR;
            const struct look *ref = isdir ? (have_dir_ref ? &dir_ref : NULL) : (have_file_ref ? &file_ref : NULL);
            if (ref && keep_pristine(dirfd(d), n, ref, st.st_dev))
                continue;
        }
        if (unlinkat(dirfd(d), n, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR && errno != EPERM) {
            rc = -errno;
            break;
        }
        int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat sst;
        if (sub < 0 || fstat(sub, &sst) < 0 || sst.st_dev != st.st_dev) {
            rc = sub < 0 ? -errno : -EXDEV;
            close_if(sub);
            break;
        }
        int r = remove_contents(sub, st.st_dev, 1);
        if (r < 0) {
            rc = r;
            break;
        }
        if (unlinkat(dirfd(d), n, AT_REMOVEDIR) < 0 && errno != ENOENT) {
            rc = -errno;
            break;
        }
    }
    closedir(d);
    return rc;
}

int pe_resize(int fd, unsigned short rows, unsigned short cols)
{
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

/*
 * pe_spawner.c — pyengine's spawner: one small long-lived process per daemon that clones
 * the containers (with pe_spawn.c, the same child-side C the daemon uses in-process), is
 * their parent and subreaper, reaps them and records exit statuses, and keeps the daemon-side
 * ends of their output pipes / pty masters.  It is not in the daemon's session or process
 * group, so it and the containers outlive a daemon crash or a live-restore stop; output
 * written meanwhile waits in the pipes (enlarged by the daemon) and the next daemon takes the
 * ends back (LIST) and reads on: no line is lost.
 *
 * Started by the daemon as `pe-spawner SOCKET`: the first process forks, the child (the
 * spawner) makes its own session, binds SOCKET (SOCK_SEQPACKET, 0600), writes SOCKET.pid and
 * tells its parent it is ready; the parent exits 0, so the daemon never has it as a child.
 * One daemon connection at a time (a new one replaces the old).  Single-threaded: epoll on the
 * listening socket, the connection and a signalfd for SIGCHLD.
 *
 * ───────────────────────── daemon/spawner protocol (pe_msg + payload + fds) ─────────────────
 *
 *   daemon (engine/runtime/spawner.py)          spawner                       container
 *   ─────────────────────────────────           ───────────────────────────   ─────────────
 *   SPAWN {seq,id,kind} spec, fds ─────────────▶ pe_spawn(spec)  (helper mode:
 *                                                read pid, reap helper) ─────▶ clone3 … waits on
 *   ◀──────── SPAWNED {seq,pid} fds: pidfd, sync_w, err_r[, sock_r]            sync (see the
 *   the daemon then drives pe_spawn.c's sync protocol itself with those fds:    diagram in
 *   prepare(pid) (cgroups, network), release(sync_w), read err_r, [pty]        pe_spawn.c)
 *   ◀──────── SPAWNED {seq,pid=-1,step,err,index}   the spawn failed
 *   HOLD {id} fds: stdout_r, stderr_r | pty master ▶ kept (dups) until RELEASE
 *                                                waitpid (SIGCHLD) ◀────────── exit
 *   ◀──────── EXIT {id,pid,status}               (status kept; exec entries are
 *                                                dropped once sent)
 *   RELEASE {id[,pid]} ─────────────────────────▶ forget the entry, close held fds
 *   LIST (a new daemon) ────────────────────────▶
 *   ◀──────── ENTRY {id,pid,kind,status(-1 = running)} fds: [pidfd,] held…   (per entry)
 *   ◀──────── END
 *   SHUTDOWN (nothing runs any more) ───────────▶ unlink SOCKET, exit
 */
#define PE_WIRE_UNPACK
#include "pe_spawn.c"
#include "pe_wire.c"

#include <stdio.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/un.h>

#define PE_PAYLOAD_MAX (4u << 20)

struct entry {
    char id[68];
    int pid;
    int kind;
    int status; /* -1 running */
    int held[PE_MAX_FDS];
    int nheld;
};

static struct entry *entries;
static int nentries, capentries;
static int client = -1;
static unsigned char *payload;

static void log_msg(const char *what, int err)
{
    fprintf(stderr, "pe-spawner: %s: %s\n", what, strerror(err));
}

static int send_msg(int sock, const struct pe_msg *m, const int *fds, int nfds)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    union {
        char buf[CMSG_SPACE(sizeof(int) * PE_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

/* One message: header, payload (its length in *plen), fds.  0 = EOF, -1 = error. */
static int recv_msg(int sock, struct pe_msg *m, size_t *plen, int *fds, int *nfds)
{
    struct iovec iov[2] = {{.iov_base = m, .iov_len = sizeof *m}, {.iov_base = payload, .iov_len = PE_PAYLOAD_MAX}};
    union {
        char buf[CMSG_SPACE(sizeof(int) * PE_MAX_FDS * 2)];
        struct cmsghdr align;
    } u;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    *nfds = 0;
    if (n <= 0)
        return (int)n;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
            if (*nfds < PE_MAX_FDS)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if ((size_t)n < sizeof *m || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (int i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        return -2; /* malformed: ignored */
    }
    *plen = (size_t)n - sizeof *m;
    m->id[sizeof m->id - 1] = 0;
    return 1;
}

static struct entry *add_entry(const char *id, int pid, int kind)
{
    if (nentries == capentries) {
        int ncap = capentries ? capentries * 2 : 64;
        struct entry *n = realloc(entries, sizeof *n * (size_t)ncap);
        if (!n)
            return NULL;
        entries = n;
        capentries = ncap;
    }
    struct entry *e = &entries[nentries++];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->pid = pid;
    e->kind = kind;
    e->status = -1;
    return e;
}

static void drop_entry(int i)
{
    for (int k = 0; k < entries[i].nheld; k++)
        close(entries[i].held[k]);
    entries[i] = entries[--nentries];
}

static void reply_failure(const struct pe_msg *req, int step, int err, int index)
{
    struct pe_msg r = {.op = PE_OP_SPAWNED, .seq = req->seq, .pid = -1, .step = step, .err = err, .index = index};
    if (client >= 0)
        send_msg(client, &r, NULL, 0);
}

static int map_fd(int index, const int *fds, int nfds)
{
    return index >= 0 && index < nfds ? fds[index] : -1;
}

static void handle_spawn(const struct pe_msg *req, size_t plen, const int *fds, int nfds)
{
    struct pe_spec spec;
    if (pe_spec_unpack(payload, plen, &spec) < 0) {
        pe_spec_free(&spec);
        reply_failure(req, PE_STEP_CLONE, EINVAL, -1);
        return;
    }
    int *joins = (int *)spec.join_fds;
    for (int i = 0; i < spec.njoin; i++)
        joins[i] = map_fd(joins[i], fds, nfds);
    spec.stdin_fd = map_fd(spec.stdin_fd, fds, nfds);
    spec.stdout_fd = map_fd(spec.stdout_fd, fds, nfds);
    spec.stderr_fd = map_fd(spec.stderr_fd, fds, nfds);

    struct pe_spawn_result res;
    int rc = pe_spawn(&spec, &res);
    int helper = spec.use_helper, tty = spec.tty;
    pe_spec_free(&spec);
    if (rc < 0) {
        reply_failure(req, PE_STEP_CLONE, -rc, -1);
        return;
    }
    int pid = res.pid, pidfd = res.pidfd;
    if (helper) {
        int32_t v = -1;
        ssize_t n, got = 0;
        while (got < (ssize_t)sizeof v) {
            n = read(res.pid_r, (char *)&v + got, sizeof v - (size_t)got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += n;
        }
        while (waitpid(res.helper_pid, NULL, __WALL) < 0 && errno == EINTR)
            ;
        close(res.helper_pidfd);
        close(res.pid_r);
        if (got != (ssize_t)sizeof v) {
            struct pe_err e = {.step = PE_STEP_CLONE, .err = 0, .index = -1};
            if (read(res.err_r, &e, sizeof e) != (ssize_t)sizeof e)
                e.step = PE_STEP_CLONE;
            reply_failure(req, e.step, e.err, e.index);
            close(res.sync_w);
            close(res.err_r);
            close_if(res.sock_r);
            return;
        }
        pid = v;
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    }
    add_entry(req->id, pid, req->kind);
    struct pe_msg r = {.op = PE_OP_SPAWNED, .seq = req->seq, .pid = pid};
    int out[4] = {pidfd, res.sync_w, res.err_r, res.sock_r};
    int nout = tty ? 4 : 3;
    r.nfds = (uint32_t)nout;
    if (pidfd < 0 || client < 0 || send_msg(client, &r, out, nout) < 0) {
        /* The daemon is gone: closing sync_w makes the child exit without running. */
        log_msg("answering a spawn", errno);
    }
    for (int i = 0; i < 4; i++)
        close_if(out[i]);
}

static void handle_hold(const struct pe_msg *req, int *fds, int nfds)
{
    for (int i = 0; i < nentries; i++) {
        struct entry *e = &entries[i];
        if (e->kind == PE_KIND_INIT && e->status < 0 && strcmp(e->id, req->id) == 0) {
            for (int k = 0; k < e->nheld; k++)
                close(e->held[k]);
            memcpy(e->held, fds, sizeof(int) * (size_t)nfds);
            e->nheld = nfds;
            return;
        }
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
}

static void handle_list(void)
{
    for (int i = 0; i < nentries; i++) {
        struct entry *e = &entries[i];
        struct pe_msg r = {.op = PE_OP_ENTRY, .pid = e->pid, .kind = e->kind, .status = e->status};
        snprintf(r.id, sizeof r.id, "%s", e->id);
        int out[PE_MAX_FDS + 1], n = 0, pidfd = -1;
        if (e->status < 0) {
            pidfd = (int)syscall(SYS_pidfd_open, e->pid, 0);
            out[n++] = pidfd;
        }
        for (int k = 0; k < e->nheld && n < PE_MAX_FDS; k++)
            out[n++] = e->held[k];
        r.nfds = (uint32_t)n;
        send_msg(client, &r, out, n);
        close_if(pidfd);
    }
    struct pe_msg end = {.op = PE_OP_END};
    send_msg(client, &end, NULL, 0);
}

static void handle_release(const struct pe_msg *req)
{
    for (int i = nentries - 1; i >= 0; i--)
        if (strcmp(entries[i].id, req->id) == 0 && (req->pid <= 0 || entries[i].pid == req->pid))
            drop_entry(i);
}

static void reap(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
        for (int i = 0; i < nentries; i++) {
            struct entry *e = &entries[i];
            if (e->pid != pid || e->status >= 0)
                continue;
            e->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            struct pe_msg r = {.op = PE_OP_EXIT, .pid = pid, .kind = e->kind, .status = e->status};
            snprintf(r.id, sizeof r.id, "%s", e->id);
            int sent = client >= 0 && send_msg(client, &r, NULL, 0) == 0;
            if (sent && e->kind == PE_KIND_EXEC)
                drop_entry(i);
            break;
        }
    }
}

static void serve(int lsock, const char *path)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || ep < 0) {
        log_msg("signalfd/epoll", errno);
        exit(1);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lsock};
    epoll_ctl(ep, EPOLL_CTL_ADD, lsock, &ev);
    ev.data.fd = sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    reap(); /* children that exited before the signalfd existed */
    for (;;) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, -1);
        if (n < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == sfd) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) > 0)
                    ;
                reap();
            } else if (fd == lsock) {
                int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                    continue;
                if (client >= 0) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, client, NULL);
                    close(client);
                }
                client = c;
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
            } else if (fd == client) {
                struct pe_msg m;
                int fds[PE_MAX_FDS], nfds = 0;
                size_t plen = 0;
                int rc = recv_msg(client, &m, &plen, fds, &nfds);
                if (rc == -2)
                    continue;
                if (rc <= 0) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, client, NULL);
                    close(client);
                    client = -1;
                    continue;
                }
                switch (m.op) {
                case PE_OP_SPAWN:
                    handle_spawn(&m, plen, fds, nfds);
                    for (int k = 0; k < nfds; k++)
                        close(fds[k]);
                    break;
                case PE_OP_HOLD:
                    handle_hold(&m, fds, nfds);
                    break;
                case PE_OP_LIST:
                    handle_list();
                    break;
                case PE_OP_RELEASE:
                    handle_release(&m);
                    break;
                case PE_OP_SHUTDOWN: {
                    char pidpath[PATH_MAX];
                    snprintf(pidpath, sizeof pidpath, "%s.pid", path);
                    unlink(pidpath);
                    unlink(path);
                    exit(0);
                }
                default:
                    for (int k = 0; k < nfds; k++)
                        close(fds[k]);
                }
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || strlen(argv[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "usage: pe-spawner SOCKET\n");
        return 2;
    }
    const char *path = argv[1];
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid > 0) {
        char ok = 0;
        close(ready[1]);
        while (read(ready[0], &ok, 1) < 0 && errno == EINTR)
            ;
        return ok == '1' ? 0 : 1;
    }
    close(ready[0]);
    setsid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_NAME, "pe-spawner");
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    if (chdir("/") < 0)
        return 1;
    payload = malloc(PE_PAYLOAD_MAX);
    int lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    unlink(path);
    if (!payload || lsock < 0 || bind(lsock, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        chmod(path, 0600) < 0 || listen(lsock, 16) < 0) {
        log_msg(path, errno);
        return 1;
    }
    char pidpath[sizeof addr.sun_path + 8];
    snprintf(pidpath, sizeof pidpath, "%s.pid", path);
    FILE *f = fopen(pidpath, "we");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        close(devnull);
    }
    (void)write(ready[1], "1", 1);
    close(ready[1]);
    serve(lsock, path);
    return 0;
}

/*
 * pe_spawner.c — pyengine's spawner: one small long-lived process per daemon that clones
 * the containers (with pe_spawn.c, the same child-side C the daemon uses in-process), is
 * their parent and subreaper, reaps them and records exit statuses, and reads their output.
 * It is not in the daemon's session or process group, so it and the containers outlive a
 * daemon crash or a live-restore stop.
 *
 * Output: the spawner is the only reader of every container's stdout/stderr pipes (or pty
 * master), always — with a daemon or without one.  It appends what it reads to the run's
 * spill file (<container dir>/output.<pid>.spill: records of stream, length, stream offset,
 * capture time; struct pe_spill_rec) and the daemon reads the file, not the pipes.  So
 * nothing is ever read by two processes, a container never waits for a daemon (up to the
 * spill cap, then it blocks on its full pipe as with no spawner), and a daemon killed at any
 * instant finds every byte in the file again: it logs from the stream offset its json-file
 * log recorded (engine/containers/journal.py), so no line is lost or logged twice.  While a
 * daemon reads along, it asks (ARM) for the part it has logged to be dropped: the part still
 * needed is copied to a new file renamed over the old one (generation + 1), so the file stays
 * small.  Without a daemon the file grows to the cap.
 *
 * Started by the daemon as `pe-spawner SOCKET`: the first process forks, the child (the
 * spawner) makes its own session, binds SOCKET (SOCK_SEQPACKET, 0600), writes SOCKET.pid and
 * tells its parent it is ready; the parent exits 0, so the daemon never has it as a child.
 * One daemon connection at a time (a new one replaces the old).  Single-threaded: epoll on the
 * listening socket, the connection, a signalfd for SIGCHLD and the output fds; every fd is
 * non-blocking, a spill write that fails (ENOSPC…) is kept and retried every second while
 * that container's output is not read.
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
 *   SPAWN {…,status=GO} (nothing to prepare,  ▶ pe_spawn, then pe_release itself; err_r
 *   no tty)                                      watched (epoll) … EOF: execve ok, or a report
 *   ◀──────── SPAWNED {seq,pid[,step,err,index]} fd: pidfd   (step set: the exec failed; the
 *   daemon kills/waits as above).  A RELEASE of a start still watched kills its child (the
 *   daemon gave up on it); a new connection never gets an older one's answer (the child runs
 *   on as an entry LIST shows).
 *   HOLD {id,pid} cap, path; fds: stdout_r, stderr_r | pty master
 *                                     ─────────▶ kept; read (epoll) ◀──────────── output
 *   (or, no tty: SPAWN {…,status|=HOLD} pe_hold{cap,nfds}, dir, spec; fds: …, stdout_r,
 *   stderr_r — or, status|=PIPES, none: the spawner makes the child's stdout and stderr
 *   pipes itself (BIGPIPES: 1 MiB each) — held from the entry's creation,
 *   spill <dir>/output.<pid>.spill, armed as by an
 *   ARM 0,0; no HOLD after, no ARM before the daemon's first DATA, which may come before the
 *   SPAWNED: the daemon keeps a DATA nobody waits for until the run's first wait or RELEASE)
 *                                                → records appended to the spill file
 *   ◀──────── DATA {id,pid,seq=generation}       sent once after an ARM when the file grew
 *   the daemon reads records up to read_to,      (or at once if it already has); a new
 *   logs them, then                              generation: the daemon rereads from the
 *   ARM {id,pid} read_to, keep_from ───────────▶ start (records before keep_from dropped)
 *   FLUSH {seq,id,pid} (before a log read) ─────▶ read what the fds hold now (FIONREAD)
 *                                                → records appended (DATA if armed)
 *   ◀──────── FLUSHED {seq,status} u64 stdout, u64 stderr: stream offsets now in the file;
 *   the daemon logs up to them, then reads its log (a container's output written before a
 *   `docker logs` is in what it returns, whoever was scheduled first)
 *                                                waitpid (SIGCHLD) ◀────────── exit
 *   ◀──────── EXIT {id,pid,status}               (status kept; exec entries are
 *                                                dropped once sent)
 *   RELEASE {id[,pid]} ─────────────────────────▶ forget the entry, close held fds and spill
 *   LIST (a new daemon) ────────────────────────▶
 *   ◀──────── ENTRY {id,pid,kind,status(-1 = running)} fds: [pidfd,] held…   (per entry)
 *   ◀──────── END
 *   SHUTDOWN (nothing runs any more) ───────────▶ unlink SOCKET, exit
 *
 * A dead daemon's ARM dies with it: a new connection disarms every entry, and the new daemon
 * reads each spill from its start before it arms.  A stream's end is a record of length 0.
 * A run whose streams all end before its first byte has no spill file at all (one file made
 * and deleted less per silent run): an ARM then answers DATA -1 (nothing more, ever), as
 * does the end of the last stream to an armed daemon; if a byte comes after all, the end
 * records of the streams that had ended go first into the new file.
 */
#define PE_WIRE_UNPACK
#include "pe_spawn.c"
#include "pe_wire.c"

#include <stdio.h>
#include <sys/epoll.h>

/* SPAWN's flags beside pe_spawn.h's GO and HOLD. PIPES (with HOLD, no output ends passed:
 * pe_hold.nfds 0): the spawner makes the child's stdout and stderr pipes itself (their write
 * ends replace the spec's stdout/stderr, their read ends are the held ones), so the daemon
 * makes, passes and closes none; BIGPIPES: enlarged to PE_PIPE_SIZE (live restore: room for
 * output while no daemon runs). */
#define PE_SPAWN_PIPES 4
#define PE_SPAWN_BIGPIPES 8
#define PE_PIPE_SIZE (1 << 20)
#include <sys/signalfd.h>
#include <sys/un.h>
#include <time.h>

#define PE_PAYLOAD_MAX (4u << 20)
#define CHUNK 65536
#define REC ((uint64_t)sizeof(struct pe_spill_rec))
/* ARM: compact once this much at the head of the file is no longer needed, copying at most
 * COMPACT_COPY bytes (the daemon is nearly caught up). */
#define COMPACT_MIN (64u << 10)
#define COMPACT_COPY (1u << 20)
#define TAG_OUTPUT (1ull << 32)
#define TAG_START (1ull << 33)
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

struct entry {
    char id[68];
    int pid;
    int kind;
    int status; /* -1 running */
    int held[PE_MAX_FDS];
    int nheld;
    /* output (after HOLD): held[k] is stream k+1 */
    char *spill;            /* path; NULL: not read */
    int spill_fd;           /* -1 until the first record */
    uint64_t end, cap;      /* bytes in the file (incl. a partly written record); cap */
    uint64_t soff[2];       /* stream offsets read so far */
    unsigned char eof[2], polled[2];
    unsigned char quiet_eof[2]; /* ended before the file existed: its end record is not written */
    unsigned char *pend;    /* the unwritten rest of a record (a write failed) */
    size_t npend;
    int armed;
    uint32_t gen;
    /* a GO start not answered yet: its err pipe (watched), pidfd, the SPAWN's seq (0: its
     * daemon is gone, nobody to answer) */
    int start_err, start_pidfd;
    uint32_t start_seq;
};

static struct entry *entries;
static int nentries, capentries;
static int client = -1;
static int epfd = -1;
static unsigned char *payload;
static unsigned char iobuf[sizeof(struct pe_spill_rec) + CHUNK];

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

/* A message without fds whose payload is `data`. */
static int send_msg_data(int sock, const struct pe_msg *m, const void *data, size_t len)
{
    struct iovec iov[2] = {{.iov_base = (void *)m, .iov_len = sizeof *m}, {.iov_base = (void *)data, .iov_len = len}};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
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
    e->spill_fd = -1;
    e->start_err = e->start_pidfd = -1;
    return e;
}

/* ─── output: held fds → spill file ─────────────────────────────────────────────────────── */

static int nouts(const struct entry *e)
{
    return e->spill ? (e->nheld < 2 ? e->nheld : 2) : 0;
}

/* Read fd k while it has not ended, nothing waits to be written and the file is under cap. */
static void sync_poll(struct entry *e)
{
    for (int k = 0; k < nouts(e); k++) {
        int want = !e->eof[k] && !e->npend && e->end < e->cap;
        if (want == e->polled[k])
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_OUTPUT | (uint32_t)e->held[k]};
        if (epoll_ctl(epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, e->held[k], &ev) == 0 || !want)
            e->polled[k] = (unsigned char)want;
        else
            log_msg("epoll_ctl", errno);
    }
}

static void unpoll(struct entry *e)
{
    for (int k = 0; k < nouts(e); k++)
        if (e->polled[k]) {
            epoll_ctl(epfd, EPOLL_CTL_DEL, e->held[k], NULL);
            e->polled[k] = 0;
        }
}

static void notify(struct entry *e, int status)
{
    if (!e->armed || client < 0)
        return;
    struct pe_msg r = {.op = PE_OP_DATA, .seq = e->gen, .pid = e->pid, .status = status};
    snprintf(r.id, sizeof r.id, "%s", e->id);
    e->armed = 0;
    send_msg(client, &r, NULL, 0);
}

static int pwrite_all(int fd, const unsigned char *p, size_t n, uint64_t at, size_t *done)
{
    *done = 0;
    while (*done < n) {
        ssize_t w = pwrite(fd, p + *done, n - *done, (off_t)(at + *done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        *done += (size_t)w;
    }
    return 0;
}

static int open_spill(struct entry *e)
{
    if (e->spill_fd >= 0)
        return 0;
    int fd = open(e->spill, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    unsigned char hdr[PE_SPILL_HDR] = "PESPILL1";
    size_t done;
    if (pwrite_all(fd, hdr, sizeof hdr, 0, &done) < 0) {
        close(fd);
        return -1;
    }
    e->spill_fd = fd;
    e->end = PE_SPILL_HDR;
    return 0;
}

/* Write what is pending (a record, or the rest of one). On failure the rest stays pending:
 * nothing read is ever dropped, and nothing more is read until it is written. */
static void flush_pending(struct entry *e)
{
    if (!e->npend)
        return;
    size_t done = 0;
    int rc = open_spill(e);
    if (rc == 0)
        rc = pwrite_all(e->spill_fd, e->pend, e->npend, e->end, &done);
    e->end += done;
    if (rc < 0) {
        memmove(e->pend, e->pend + done, e->npend - done);
        e->npend -= done;
        log_msg(e->spill, errno);
    } else {
        e->npend = 0;
        notify(e, 0);
    }
    sync_poll(e);
}

static void append(struct entry *e, const unsigned char *rec, size_t n)
{
    unsigned char *p = realloc(e->pend, n);
    if (!p) { /* cannot keep it: leave it unread (a real read already happened: keep going) */
        log_msg("spill buffer", ENOMEM);
        return;
    }
    memcpy(p, rec, n);
    e->pend = p;
    e->npend = n;
    flush_pending(e);
}

/* One read of fd k into the spill: its byte count (0: the stream ended), -1 when nothing was
 * read (nothing there, or a record still waits to be written). */
/* Every output stream ended without one byte: no spill file was made, and none will be. */
static int ended_quietly(const struct entry *e)
{
    if (!e->spill || nouts(e) == 0 || e->spill_fd >= 0 || e->npend)
        return 0;
    for (int k = 0; k < nouts(e); k++)
        if (!e->quiet_eof[k])
            return 0;
    return 1;
}

static ssize_t read_output(struct entry *e, int k)
{
    if (e->npend || e->eof[k])
        return -1;
    ssize_t n;
    if (e->nheld == 1) /* a pty master: the daemon's dup for stdin may have made it blocking */
        fcntl(e->held[k], F_SETFL, fcntl(e->held[k], F_GETFL) | O_NONBLOCK);
    do {
        n = read(e->held[k], iobuf + REC, CHUNK);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return -1;
    if (n < 0) /* EIO: a pty master once no slave is open (the end), or a real error */
        n = 0;
    if (n == 0 && e->spill_fd < 0) {
        /* Ended before a byte was spilled: no file for it.  Once every stream has, the run's
         * spill never exists and an armed daemon is told there is nothing more (DATA -1). */
        e->eof[k] = 1;
        e->quiet_eof[k] = 1;
        sync_poll(e);
        if (ended_quietly(e))
            notify(e, -1);
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct pe_spill_rec h = {.stream = (uint32_t)k + 1, .len = (uint32_t)n, .offset = e->soff[k],
                             .ts_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec};
    memcpy(iobuf, &h, sizeof h);
    e->soff[k] += (uint64_t)n;
    if (n == 0)
        e->eof[k] = 1;
    int quiet = 0;
    for (int j = 0; j < nouts(e); j++)
        quiet += e->quiet_eof[j];
    if (quiet) {
        /* The file comes to exist now: the streams that ended quietly get their end records
         * first (a reader of the file waits for every stream's end). */
        unsigned char *both = malloc(REC * (size_t)quiet + REC + (size_t)n);
        if (both) {
            size_t at = 0;
            for (int j = 0; j < nouts(e); j++)
                if (e->quiet_eof[j]) {
                    struct pe_spill_rec end = {.stream = (uint32_t)j + 1, .len = 0, .offset = 0, .ts_ns = h.ts_ns};
                    memcpy(both + at, &end, REC);
                    at += REC;
                    e->quiet_eof[j] = 0;
                }
            memcpy(both + at, iobuf, REC + (size_t)n);
            append(e, both, at + REC + (size_t)n);
            free(both);
            return n;
        }
        log_msg("spill buffer", ENOMEM);
    }
    append(e, iobuf, REC + (size_t)n);
    return n;
}

/* FLUSH: a reader of the run's log wants what the container wrote up to now.  Read what its
 * output fds hold at this instant (FIONREAD: not what it goes on writing meanwhile, so a
 * chatty container cannot keep us here) into the spill, and answer with the stream offsets
 * the file then holds; the daemon logs up to them before it reads its log.  The DATA this
 * may owe an armed daemon goes first.  A record that could not be written (ENOSPC…): -1. */
static void handle_flush(const struct pe_msg *req)
{
    struct entry *e = NULL;
    for (int i = 0; i < nentries && !e; i++)
        if (entries[i].spill && entries[i].pid == req->pid && strcmp(entries[i].id, req->id) == 0)
            e = &entries[i];
    struct pe_msg r = {.op = PE_OP_FLUSHED, .seq = req->seq, .pid = req->pid, .status = -1};
    snprintf(r.id, sizeof r.id, "%s", req->id);
    uint64_t offsets[2] = {0, 0};
    if (e) {
        for (int k = 0; k < nouts(e); k++) {
            int avail = 0;
            if (e->eof[k] || ioctl(e->held[k], FIONREAD, &avail) < 0)
                continue;
            while (avail > 0 && e->end < e->cap) {
                ssize_t n = read_output(e, k);
                if (n <= 0)
                    break;
                avail -= (int)n;
            }
        }
        if (!e->npend) {
            r.status = 0;
            offsets[0] = e->soff[0];
            offsets[1] = e->soff[1];
        }
    }
    send_msg_data(client, &r, offsets, sizeof offsets);
}

/* ARM: the daemon read up to read_to and still needs what starts at keep_from. Drop the head
 * when worth it — copy the rest to a new file and rename it over the old one, so a failure
 * anywhere leaves the old file whole — then answer now if there is more, or on the next write. */
static void handle_arm(const struct pe_msg *req, size_t plen)
{
    struct entry *e = NULL;
    for (int i = 0; i < nentries && !e; i++)
        if (entries[i].spill && entries[i].pid == req->pid && strcmp(entries[i].id, req->id) == 0)
            e = &entries[i];
    if (!e) {
        struct pe_msg r = {.op = PE_OP_DATA, .pid = req->pid, .status = -1};
        snprintf(r.id, sizeof r.id, "%s", req->id);
        send_msg(client, &r, NULL, 0);
        return;
    }
    uint64_t read_to = 0, keep = 0;
    if (plen >= 16) {
        memcpy(&read_to, payload, 8);
        memcpy(&keep, payload + 8, 8);
    }
    int moved = 0;
    if (e->spill_fd >= 0 && !e->npend && keep >= PE_SPILL_HDR + COMPACT_MIN && keep <= read_to &&
        read_to <= e->end && e->end - keep <= COMPACT_COPY) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s.new", e->spill);
        int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        unsigned char hdr[PE_SPILL_HDR] = "PESPILL1";
        size_t done;
        int ok = fd >= 0 && pwrite_all(fd, hdr, sizeof hdr, 0, &done) == 0;
        uint64_t at = keep, to = PE_SPILL_HDR;
        while (ok && at < e->end) {
            size_t want = e->end - at < sizeof iobuf ? (size_t)(e->end - at) : sizeof iobuf;
            ssize_t r = pread(e->spill_fd, iobuf, want, (off_t)at);
            if (r < 0 && errno == EINTR)
                continue;
            ok = r > 0 && pwrite_all(fd, iobuf, (size_t)r, to, &done) == 0;
            at += r > 0 ? (uint64_t)r : 0;
            to += r > 0 ? (uint64_t)r : 0;
        }
        if (ok && rename(tmp, e->spill) == 0) {
            close(e->spill_fd);
            e->spill_fd = fd;
            e->end = to;
            e->gen++;
            moved = 1;
            sync_poll(e); /* back under the cap */
        } else {
            log_msg("compacting a spill file", errno);
            close_if(fd);
            unlink(tmp);
        }
    }
    e->armed = 1;
    if (ended_quietly(e)) /* no file, and none will come */
        notify(e, -1);
    else if (!e->npend && (moved || e->end > read_to)) /* pending: DATA comes once it is written */
        notify(e, 0);
}

/* Keep an entry's output ends (taken over: closed with the entry); with `spill` (malloc'd,
 * taken over too), read them into that file from now on. */
static void hold_outputs(struct entry *e, const int *fds, int nfds, uint64_t cap, char *spill)
{
    memcpy(e->held, fds, sizeof(int) * (size_t)nfds);
    e->nheld = nfds;
    if (!spill)
        return;
    e->cap = cap;
    e->spill = spill;
    for (int k = 0; k < nouts(e); k++) {
        int fl = fcntl(e->held[k], F_GETFL);
        fcntl(e->held[k], F_SETFL, fl | O_NONBLOCK);
    }
    sync_poll(e);
}

static void handle_hold(const struct pe_msg *req, size_t plen, int *fds, int nfds)
{
    for (int i = 0; i < nentries; i++) {
        struct entry *e = &entries[i];
        /* (it may have exited already: its output is still to be read) */
        if (e->kind == PE_KIND_INIT && strcmp(e->id, req->id) == 0 && !e->nheld &&
            (req->pid > 0 ? e->pid == req->pid : e->status < 0)) {
            uint64_t cap = 0;
            char *spill = NULL;
            if (plen > 8 && plen < PATH_MAX + 8 && payload[plen - 1] == 0) {
                memcpy(&cap, payload, 8);
                spill = strdup((const char *)payload + 8);
            }
            hold_outputs(e, fds, nfds, cap, spill);
            return;
        }
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
}

static struct entry *entry_of_fd(int fd, int *k)
{
    for (int i = 0; i < nentries; i++)
        for (*k = 0; *k < nouts(&entries[i]); (*k)++)
            if (entries[i].held[*k] == fd)
                return &entries[i];
    return NULL;
}

/* A GO start's err pipe said its word (or EOF: execve succeeded): answer the SPAWN. */
static void finish_start(struct entry *e)
{
    struct pe_err er = {0};
    ssize_t n;
    do {
        n = read(e->start_err, &er, sizeof er);
    } while (n < 0 && errno == EINTR);
    epoll_ctl(epfd, EPOLL_CTL_DEL, e->start_err, NULL);
    close(e->start_err);
    e->start_err = -1;
    struct pe_msg r = {.op = PE_OP_SPAWNED, .seq = e->start_seq, .pid = e->pid, .nfds = 1};
    if (n == (ssize_t)sizeof er) {
        r.step = er.step;
        r.err = er.err;
        r.index = er.index;
    }
    if (e->start_seq && client >= 0 && send_msg(client, &r, &e->start_pidfd, 1) < 0)
        log_msg("answering a spawn", errno);
    close(e->start_pidfd);
    e->start_pidfd = -1;
}

static struct entry *entry_of_start(int fd)
{
    for (int i = 0; i < nentries; i++)
        if (entries[i].start_err == fd)
            return &entries[i];
    return NULL;
}

static void drop_entry(int i)
{
    struct entry *e = &entries[i];
    if (e->start_err >= 0) { /* a GO start given up on: its child must not run on */
        epoll_ctl(epfd, EPOLL_CTL_DEL, e->start_err, NULL);
        close(e->start_err);
        syscall(SYS_pidfd_send_signal, e->start_pidfd, SIGKILL, NULL, 0);
        close(e->start_pidfd);
    }
    unpoll(e);
    for (int k = 0; k < e->nheld; k++)
        close(e->held[k]);
    close_if(e->spill_fd);
    free(e->spill);
    free(e->pend);
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

static void handle_spawn(const struct pe_msg *req, size_t plen, int *fds, int nfds)
{
    /* PE_SPAWN_HOLD: the output ends to hold from the entry's creation (the last fds) */
    struct pe_hold hold = {0};
    char *hold_dir = NULL;
    size_t off = 0;
    int pipes = (req->status & PE_SPAWN_PIPES) != 0;
    if (req->status & PE_SPAWN_HOLD) {
        if (plen >= sizeof hold)
            memcpy(&hold, payload, sizeof hold);
        off = sizeof hold + (((size_t)hold.dirlen + 7) & ~(size_t)7);
        if (plen < sizeof hold || hold.dirlen == 0 || hold.dirlen >= PATH_MAX || off > plen ||
            (pipes ? hold.nfds != 0 : hold.nfds == 0 || hold.nfds > 2 || (int)hold.nfds > nfds) ||
            !(hold_dir = strndup((const char *)payload + sizeof hold, hold.dirlen))) {
            reply_failure(req, PE_STEP_CLONE, EINVAL, -1);
            return;
        }
        nfds -= (int)hold.nfds; /* the spec's indexes never name them */
    } else if (pipes) {
        reply_failure(req, PE_STEP_CLONE, EINVAL, -1);
        return;
    }
    int *held = fds + nfds;
    /* PIPES: stdout's read, write ends, then stderr's; the read ends are held like passed ones */
    int made[4] = {-1, -1, -1, -1};
    if (pipes) {
        if (pipe2(made, O_CLOEXEC) < 0 || pipe2(made + 2, O_CLOEXEC) < 0) {
            int err = errno;
            for (int k = 0; k < 4; k++)
                close_if(made[k]);
            free(hold_dir);
            reply_failure(req, PE_STEP_CLONE, err, -1);
            return;
        }
        if (req->status & PE_SPAWN_BIGPIPES) {
            fcntl(made[0], F_SETPIPE_SZ, PE_PIPE_SIZE); /* best effort, as the daemon's */
            fcntl(made[2], F_SETPIPE_SZ, PE_PIPE_SIZE);
        }
        int out_w = made[1]; /* reordered {out_r, err_r, out_w, err_w}: held = made */
        made[1] = made[2];
        made[2] = out_w;
        held = made;
        hold.nfds = 2;
    }
    struct pe_spec spec;
    if (pe_spec_unpack(payload + off, plen - off, &spec) < 0) {
        free(hold_dir);
        pe_spec_free(&spec);
        for (int k = 0; k < 4; k++)
            close_if(made[k]);
        reply_failure(req, PE_STEP_CLONE, EINVAL, -1);
        return;
    }
    int *joins = (int *)spec.join_fds;
    for (int i = 0; i < spec.njoin; i++)
        joins[i] = map_fd(joins[i], fds, nfds);
    spec.stdin_fd = map_fd(spec.stdin_fd, fds, nfds);
    spec.stdout_fd = pipes ? made[2] : map_fd(spec.stdout_fd, fds, nfds);
    spec.stderr_fd = pipes ? made[3] : map_fd(spec.stderr_fd, fds, nfds);

    struct pe_spawn_result res;
    int rc = pe_spawn(&spec, &res);
    int helper = spec.use_helper, tty = spec.tty;
    int go = (req->status & PE_SPAWN_GO) && !tty;
    pe_spec_free(&spec);
    close_if(made[2]); /* the child's ends: the child has its own now */
    close_if(made[3]);
    made[2] = made[3] = -1;
    if (rc < 0) {
        free(hold_dir);
        close_if(made[0]);
        close_if(made[1]);
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
            free(hold_dir);
            reply_failure(req, e.step, e.err, e.index);
            close(res.sync_w);
            close(res.err_r);
            close_if(res.sock_r);
            close_if(made[0]);
            close_if(made[1]);
            return;
        }
        pid = v;
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    }
    struct entry *e = add_entry(req->id, pid, req->kind);
    if (hold_dir && e) {
        char *spill = NULL;
        if (asprintf(&spill, "%s/output.%d.spill", hold_dir, pid) < 0)
            spill = NULL; /* out of memory: held, not read (as a HOLD's failed strdup) */
        hold_outputs(e, held, (int)hold.nfds, hold.cap, spill);
        e->armed = spill != NULL; /* as by an ARM 0,0: the daemon's first wait sends none */
        for (uint32_t k = 0; k < hold.nfds; k++)
            held[k] = -1; /* the entry's now */
    }
    close_if(made[0]); /* made, not taken (no entry): ours to close, as the caller does passed ones */
    close_if(made[1]);
    free(hold_dir);
    if (go && e && pidfd >= 0) {
        pe_release(res.sync_w); /* closes it; a child gone already is reported on err_r */
        e->start_err = res.err_r;
        e->start_pidfd = pidfd;
        e->start_seq = req->seq;
        close_if(res.sock_r);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_START | (uint32_t)res.err_r};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, res.err_r, &ev) < 0)
            finish_start(e); /* cannot watch it: wait here (the child's setup is short) */
        return;
    }
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
            if (e->start_err >= 0) /* its err pipe has said all by now: SPAWNED goes first */
                finish_start(e);
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

static void set_client(int c)
{
    if (client >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, client, NULL);
        close(client);
    }
    client = c;
    for (int i = 0; i < nentries; i++) {
        entries[i].armed = 0;     /* a new daemon rereads every spill before it arms */
        entries[i].start_seq = 0; /* and never gets the answer to an older one's SPAWN */
    }
    if (c >= 0) {
        struct epoll_event cev = {.events = EPOLLIN, .data.u64 = (uint32_t)c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c, &cev);
    }
}

static void serve(int lsock, const char *path)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || epfd < 0) {
        log_msg("signalfd/epoll", errno);
        exit(1);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint32_t)lsock};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lsock, &ev);
    ev.data.u64 = (uint32_t)sfd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
    reap(); /* children that exited before the signalfd existed */
    for (;;) {
        int pending = 0;
        for (int i = 0; i < nentries; i++)
            pending |= entries[i].npend != 0;
        struct epoll_event evs[16];
        int n = epoll_wait(epfd, evs, 16, pending ? 1000 : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (pending) /* spill writes that failed (ENOSPC…): retry */
            for (int i = 0; i < nentries; i++)
                flush_pending(&entries[i]);
        for (int i = 0; i < n; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64;
            if (evs[i].data.u64 & TAG_START) {
                struct entry *e = entry_of_start(fd);
                if (e)
                    finish_start(e);
            } else if (evs[i].data.u64 & TAG_OUTPUT) {
                int k;
                struct entry *e = entry_of_fd(fd, &k);
                if (e)
                    read_output(e, k);
            } else if (fd == sfd) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) > 0)
                    ;
                reap();
            } else if (fd == lsock) {
                int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0)
                    set_client(c);
            } else if (fd == client) {
                struct pe_msg m;
                int fds[PE_MAX_FDS], nfds = 0;
                size_t plen = 0;
                int rc = recv_msg(client, &m, &plen, fds, &nfds);
                if (rc == -2)
                    continue;
                if (rc <= 0) {
                    set_client(-1);
                    continue;
                }
                switch (m.op) {
                case PE_OP_SPAWN:
                    handle_spawn(&m, plen, fds, nfds);
                    for (int k = 0; k < nfds; k++)
                        close_if(fds[k]); /* but those it took (-1) */
                    break;
                case PE_OP_HOLD:
                    handle_hold(&m, plen, fds, nfds);
                    break;
                case PE_OP_ARM:
                    handle_arm(&m, plen);
                    break;
                case PE_OP_FLUSH:
                    handle_flush(&m);
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

/*
 * pe_hostops.c — a start's and an exit's host work (overlay mount, cgroup mkdirs and
 * writes, unmount, rmdirs) and a removal's (emptying or deleting the directory) on a native
 * thread: see pe_hostops.h for the record format.
 *
 * Why not a Python worker thread: such a thread takes the GIL back after every syscall, and
 * under a burst of starts the event loop holds it most of the time, so a few dozen quick
 * syscalls took several milliseconds (each waiting for the loop to let go); here the whole
 * list runs without Python and the loop only sees the eventfd become readable.
 */
#include "pe_hostops.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOP_MAX_ARGS 64

struct hop {
    uint32_t code, flags, nargs;
    const char *args[HOP_MAX_ARGS];
};

/* The record at *pos; 0, or -EINVAL for a malformed one. */
static int hop_parse(const unsigned char *buf, unsigned long len, unsigned long *pos, struct hop *h)
{
    uint32_t head[3];
    if (len - *pos < sizeof head)
        return -EINVAL;
    memcpy(head, buf + *pos, sizeof head);
    *pos += sizeof head;
    h->code = head[0];
    h->flags = head[1];
    h->nargs = head[2];
    if (h->nargs > HOP_MAX_ARGS)
        return -EINVAL;
    for (uint32_t i = 0; i < h->nargs; i++) {
        uint32_t n;
        if (len - *pos < sizeof n)
            return -EINVAL;
        memcpy(&n, buf + *pos, sizeof n);
        *pos += sizeof n;
        if (n == 0 || len - *pos < n || buf[*pos + n - 1] != 0)
            return -EINVAL;
        h->args[i] = (const char *)buf + *pos;
        *pos += n;
    }
    return 0;
}

static int hop_write(const struct hop *h)
{
    if (h->nargs < 2)
        return -EINVAL;
    int fd = open(h->args[0], O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (uint32_t i = 1; i < h->nargs && rc == 0; i++) {
        size_t n = strlen(h->args[i]);
        if (write(fd, h->args[i], n) < 0)
            rc = -errno;
    }
    close(fd);
    return rc;
}

int pe_open_in_root(const char *root, const char *path)
{
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return -errno;
    int fd = pe_openat2(rootfd, path, O_RDONLY | O_CLOEXEC, PE_RESOLVE_IN_ROOT | PE_RESOLVE_NO_MAGICLINKS);
    int rc = fd < 0 ? -errno : fd;
    close(rootfd);
    return rc;
}

int pe_mkdir_in_root(const char *root, const char *path)
{
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return -errno;
    int fd = open_in_root(rootfd, path, PE_CREATE_DIR);
    int rc = fd < 0 ? -errno : 0;
    if (fd >= 0)
        close(fd);
    close(rootfd);
    return rc;
}

/* The file into buf: 0 and *len; -EFBIG when it holds more than cap; another -errno when
 * it cannot be opened or read. */
static int read_in_root(const char *root, const char *path, unsigned char *buf, unsigned long cap,
                        unsigned long *len)
{
    *len = 0;
    int fd = pe_open_in_root(root, path);
    if (fd < 0)
        return fd;
    int rc = 0;
    for (;;) {
        unsigned char more;
        ssize_t got = *len < cap ? read(fd, buf + *len, cap - *len) : read(fd, &more, 1);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (got == 0)
            break;
        if (*len >= cap) {
            rc = -EFBIG;
            break;
        }
        *len += (unsigned long)got;
    }
    close(fd);
    return rc;
}

static int hop_read(const struct hop *h, struct pe_hostops_job *job)
{
    uint32_t n;
    unsigned long len;
    if (h->nargs != 2)
        return -EINVAL;
    if (job->out_cap - job->out_len < sizeof n)
        return -EFBIG;
    unsigned long at = job->out_len;
    int rc = read_in_root(h->args[0], h->args[1], job->out + at + sizeof n, job->out_cap - at - sizeof n, &len);
    if (rc == -EFBIG)
        return rc; /* the caller reads it another way */
    n = rc == 0 ? (uint32_t)len : 0xffffffffu; /* unreadable is an answer, not a failure */
    memcpy(job->out + at, &n, sizeof n);
    job->out_len = at + sizeof n + (rc == 0 ? len : 0);
    return 0;
}

static int hop_empty_except(const struct hop *h)
{
    const char *kept[3][HOP_MAX_ARGS]; /* by kind: dirs, files, pristine */
    int n[3] = {0, 0, 0};
    if (h->nargs < 1)
        return -EINVAL;
    for (uint32_t i = 1; i < h->nargs; i++) {
        const char *kind = strchr("dfp", h->args[i][0]);
        if (kind == NULL || *kind == 0 || h->args[i][1] == 0)
            return -EINVAL;
        int k = (int)(kind - "dfp");
        kept[k][n[k]++] = h->args[i] + 1;
    }
    return pe_empty_except(h->args[0], kept[0], n[0], kept[1], n[1], kept[2], n[2]);
}

static int hop_run(const struct hop *h, struct pe_hostops_job *job)
{
    switch (h->code) {
    case PE_HOP_MKDIR:
        if (h->nargs != 2)
            return -EINVAL;
        if (mkdir(h->args[0], (mode_t)strtoul(h->args[1], NULL, 10)) < 0)
            return errno == EEXIST && (h->flags & PE_HOP_OK_EXISTS) ? 0 : -errno;
        return 0;
    case PE_HOP_RMDIR:
        if (h->nargs != 1)
            return -EINVAL;
        if (rmdir(h->args[0]) < 0)
            return errno == ENOENT && (h->flags & PE_HOP_OK_MISSING) ? 0 : -errno;
        return 0;
    case PE_HOP_WRITE:
        return hop_write(h);
    case PE_HOP_OVERLAY:
        if (h->nargs < 4)
            return -EINVAL;
        return pe_mount_overlay(h->args + 3, (int)h->nargs - 3, h->args[1], h->args[2], h->args[0]);
    case PE_HOP_UNMOUNT:
        return h->nargs == 1 ? pe_unmount(h->args[0]) : -EINVAL;
    case PE_HOP_READ:
        return hop_read(h, job);
    case PE_HOP_MKDIR_IN_ROOT:
        return h->nargs == 2 ? pe_mkdir_in_root(h->args[0], h->args[1]) : -EINVAL;
    case PE_HOP_RENAME:
        if (h->nargs != 2)
            return -EINVAL;
        if (rename(h->args[0], h->args[1]) < 0)
            return errno == ENOENT && (h->flags & PE_HOP_OK_MISSING) ? 0 : -errno;
        return 0;
    case PE_HOP_EMPTY_EXCEPT:
        return hop_empty_except(h);
    case PE_HOP_REMOVE_TREE:
        return h->nargs == 1 ? pe_remove_tree(h->args[0]) : -EINVAL;
    }
    return -EINVAL;
}

static void hostops_run_job(struct pe_hostops_job *job)
{
    unsigned long pos = 0;
    struct hop h;
    job->failed = -1;
    job->err = 0;
    job->out_len = 0;
    for (int i = 0; i < job->nops; i++) {
        int rc = hop_parse(job->ops, job->len, &pos, &h);
        if (rc == 0)
            rc = hop_run(&h, job);
        if (rc < 0) {
            job->failed = i;
            job->err = -rc;
            break;
        }
    }
    uint64_t one = 1;
    int efd = job->efd; /* the job may be freed as soon as the write lands */
    while (write(efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Jobs wait in a list for HOSTOPS_THREADS long-lived threads: a thread that sleeps until
 * woken runs at once on a busy machine, where a new thread per job (fork-time placement
 * behind every runnable thread) waited milliseconds to first run. Two, so that an unmount
 * waiting out an RCU grace period does not hold up a start's mkdirs. */
#define HOSTOPS_THREADS 2

struct queued {
    struct pe_hostops_job *job;
    struct queued *next;
};

static pthread_mutex_t hostops_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hostops_wake = PTHREAD_COND_INITIALIZER;
static struct queued *hostops_head, *hostops_tail;
static int hostops_threads;

static void *hostops_thread(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the event loop's */
    for (;;) {
        pthread_mutex_lock(&hostops_lock);
        while (hostops_head == NULL)
            pthread_cond_wait(&hostops_wake, &hostops_lock);
        struct queued *q = hostops_head;
        hostops_head = q->next;
        if (hostops_head == NULL)
            hostops_tail = NULL;
        pthread_mutex_unlock(&hostops_lock);
        struct pe_hostops_job *job = q->job;
        free(q);
        hostops_run_job(job);
    }
    return NULL;
}

int pe_hostops_start(struct pe_hostops_job *job)
{
    struct queued *q = malloc(sizeof *q);
    if (q == NULL)
        return ENOMEM;
    q->job = job;
    q->next = NULL;
    int rc = 0;
    pthread_mutex_lock(&hostops_lock);
    while (hostops_threads < HOSTOPS_THREADS) {
        pthread_attr_t attr;
        pthread_t thread;
        rc = pthread_attr_init(&attr);
        if (rc)
            break;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        rc = pthread_create(&thread, &attr, hostops_thread, NULL);
        pthread_attr_destroy(&attr);
        if (rc)
            break;
        hostops_threads++;
    }
    if (hostops_threads == 0) { /* none could be started: the caller falls back */
        pthread_mutex_unlock(&hostops_lock);
        free(q);
        return rc ? rc : EAGAIN;
    }
    if (hostops_tail)
        hostops_tail->next = q;
    else
        hostops_head = q;
    hostops_tail = q;
    pthread_cond_signal(&hostops_wake);
    pthread_mutex_unlock(&hostops_lock);
    return 0;
}

/*
 * pe_wire.c — a struct pe_spec as bytes, so the daemon can hand it to the spawner process
 * (native/pe_spawner.c).  pe_spec_pack runs in the daemon (engine._native); pe_spec_unpack
 * in the spawner, which points the rebuilt struct into one allocation.  File descriptors in
 * the spec (stdio, namespace joins) travel as indexes into the message's SCM_RIGHTS array.
 *
 * Format: native-endian; integers as u64; strings as u32 length + bytes (0xffffffff = NULL);
 * every array preceded by its count.  Field order is exactly the code below; fields added
 * later go at the end and are optional when unpacking (a spec from an older daemon).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pe_spawn.h"

struct pe_wbuf {
    unsigned char *p;
    unsigned long len, cap;
};

static void w_raw(struct pe_wbuf *w, const void *src, unsigned long n)
{
    if (w->len + n <= w->cap)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void w_u64(struct pe_wbuf *w, uint64_t v) { w_raw(w, &v, sizeof v); }

static void w_str(struct pe_wbuf *w, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0xffffffffu;
    w_raw(w, &n, sizeof n);
    if (s)
        w_raw(w, s, n);
}

static void w_strv(struct pe_wbuf *w, const char *const *v, int n)
{
    w_u64(w, (uint64_t)n);
    for (int i = 0; i < n; i++)
        w_str(w, v[i]);
}

static int count_null_terminated(char *const *v)
{
    int n = 0;
    while (v && v[n])
        n++;
    return n;
}

long pe_spec_pack(const struct pe_spec *s, unsigned char *buf, unsigned long cap)
{
    struct pe_wbuf w = {.p = buf, .len = 0, .cap = cap};
    w_u64(&w, (uint64_t)s->mode);
    w_u64(&w, (uint64_t)s->use_helper);
    w_u64(&w, s->clone_flags);
    w_u64(&w, (uint64_t)s->unshare_cgroup);
    w_u64(&w, (uint64_t)s->njoin);
    for (int i = 0; i < s->njoin; i++) {
        w_u64(&w, (uint64_t)(int64_t)s->join_fds[i]);
        w_u64(&w, (uint64_t)s->join_types[i]);
    }
    w_str(&w, s->rootfs);
    w_u64(&w, (uint64_t)s->readonly_rootfs);
    w_u64(&w, s->root_propagation);
    w_str(&w, s->hostname);
    w_u64(&w, (uint64_t)s->nmounts);
    for (int i = 0; i < s->nmounts; i++) {
        const struct pe_mount *m = &s->mounts[i];
        w_str(&w, m->source);
        w_str(&w, m->target);
        w_str(&w, m->fstype);
        w_u64(&w, m->flags);
        w_u64(&w, m->propagation);
        w_str(&w, m->data);
    }
    w_u64(&w, (uint64_t)s->ndevices);
    for (int i = 0; i < s->ndevices; i++) {
        const struct pe_device *d = &s->devices[i];
        w_str(&w, d->path);
        w_u64(&w, (uint64_t)d->type);
        w_u64(&w, d->major);
        w_u64(&w, d->minor);
        w_u64(&w, d->mode);
        w_u64(&w, d->uid);
        w_u64(&w, d->gid);
    }
    w_strv(&w, s->symlink_paths, s->nsymlinks);
    w_strv(&w, s->symlink_targets, s->nsymlinks);
    w_strv(&w, s->masked_paths, s->nmasked);
    w_strv(&w, s->readonly_paths, s->nreadonly);
    w_strv(&w, (const char *const *)s->argv, count_null_terminated(s->argv));
    w_strv(&w, (const char *const *)s->envp, count_null_terminated(s->envp));
    w_str(&w, s->cwd);
    w_u64(&w, s->uid);
    w_u64(&w, s->gid);
    w_u64(&w, (uint64_t)s->ngroups);
    for (int i = 0; i < s->ngroups; i++)
        w_u64(&w, s->groups[i]);
    w_u64(&w, s->caps);
    w_u64(&w, (uint64_t)s->no_new_privileges);
    w_u64(&w, (uint64_t)s->exec_signals_blocked);
    w_u64(&w, s->seccomp_prog ? s->seccomp_len : 0);
    if (s->seccomp_prog)
        w_raw(&w, s->seccomp_prog, (unsigned long)s->seccomp_len * 8);
    w_u64(&w, (uint64_t)s->nrlimits);
    for (int i = 0; i < s->nrlimits; i++) {
        w_u64(&w, (uint64_t)s->rlimits[i].resource);
        w_u64(&w, s->rlimits[i].soft);
        w_u64(&w, s->rlimits[i].hard);
    }
    w_u64(&w, (uint64_t)(int64_t)s->stdin_fd);
    w_u64(&w, (uint64_t)(int64_t)s->stdout_fd);
    w_u64(&w, (uint64_t)(int64_t)s->stderr_fd);
    w_u64(&w, (uint64_t)s->tty);
    w_u64(&w, s->tty_rows);
    w_u64(&w, s->tty_cols);
    w_strv(&w, s->cgroup_tasks, s->ncgroup_tasks);
    w_u64(&w, (uint64_t)(int64_t)s->oom_score_adj);
    w_strv(&w, s->sysctl_paths, s->nsysctl);
    w_strv(&w, s->sysctl_values, s->nsysctl);
    return (long)w.len;
}

#ifdef PE_WIRE_UNPACK
/* The reader keeps its own arrays in malloc'ed memory (the spawner is an ordinary process);
 * strings point into the message buffer, which must outlive the spec.  Returns 0 or -1. */
struct pe_rbuf {
    unsigned char *p;
    unsigned long len, pos;
    int bad;
};

static int r_raw(struct pe_rbuf *r, void *dst, unsigned long n)
{
    if (r->bad || r->pos + n > r->len) {
        r->bad = 1;
        return -1;
    }
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

static uint64_t r_u64(struct pe_rbuf *r)
{
    uint64_t v = 0;
    r_raw(r, &v, sizeof v);
    return v;
}

/* Strings are made NUL-terminated in place by shifting: we copy them to the heap instead. */
static char *r_str(struct pe_rbuf *r)
{
    uint32_t n = 0;
    if (r_raw(r, &n, sizeof n) < 0 || n == 0xffffffffu)
        return NULL;
    if (r->pos + n > r->len) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = 1;
        return NULL;
    }
    memcpy(s, r->p + r->pos, n);
    s[n] = 0;
    r->pos += n;
    return s;
}

static void *r_array(struct pe_rbuf *r, uint64_t n, size_t size, int extra)
{
    if (r->bad || n > 1u << 20) {
        r->bad = 1;
        return NULL;
    }
    void *a = calloc((size_t)n + (size_t)extra + 1, size);
    if (!a)
        r->bad = 1;
    return a;
}

static char **r_strv(struct pe_rbuf *r, int *count)
{
    uint64_t n = r_u64(r);
    char **v = r_array(r, n, sizeof(char *), 1);
    if (!v)
        return NULL;
    for (uint64_t i = 0; i < n; i++)
        v[i] = r_str(r);
    if (count)
        *count = (int)n;
    return v;
}

/* Rebuild a spec; free it with pe_spec_free. */
static int pe_spec_unpack(unsigned char *buf, unsigned long len, struct pe_spec *s)
{
    struct pe_rbuf r = {.p = buf, .len = len, .pos = 0, .bad = 0};
    memset(s, 0, sizeof *s);
    s->mode = (int)r_u64(&r);
    s->use_helper = (int)r_u64(&r);
    s->clone_flags = r_u64(&r);
    s->unshare_cgroup = (int)r_u64(&r);
    s->njoin = (int)r_u64(&r);
    int *jfds = r_array(&r, (uint64_t)s->njoin, sizeof(int), 0);
    int *jtypes = r_array(&r, (uint64_t)s->njoin, sizeof(int), 0);
    for (int i = 0; jfds && jtypes && i < s->njoin; i++) {
        jfds[i] = (int)(int64_t)r_u64(&r);
        jtypes[i] = (int)r_u64(&r);
    }
    s->join_fds = jfds;
    s->join_types = jtypes;
    s->rootfs = r_str(&r);
    s->readonly_rootfs = (int)r_u64(&r);
    s->root_propagation = r_u64(&r);
    s->hostname = r_str(&r);
    s->nmounts = (int)r_u64(&r);
    struct pe_mount *mounts = r_array(&r, (uint64_t)s->nmounts, sizeof *mounts, 0);
    for (int i = 0; mounts && i < s->nmounts; i++) {
        mounts[i].source = r_str(&r);
        mounts[i].target = r_str(&r);
        mounts[i].fstype = r_str(&r);
        mounts[i].flags = r_u64(&r);
        mounts[i].propagation = r_u64(&r);
        mounts[i].data = r_str(&r);
    }
    s->mounts = mounts;
    s->ndevices = (int)r_u64(&r);
    struct pe_device *devices = r_array(&r, (uint64_t)s->ndevices, sizeof *devices, 0);
    for (int i = 0; devices && i < s->ndevices; i++) {
        devices[i].path = r_str(&r);
        devices[i].type = (int)r_u64(&r);
        devices[i].major = (uint32_t)r_u64(&r);
        devices[i].minor = (uint32_t)r_u64(&r);
        devices[i].mode = (uint32_t)r_u64(&r);
        devices[i].uid = (uint32_t)r_u64(&r);
        devices[i].gid = (uint32_t)r_u64(&r);
    }
    s->devices = devices;
    s->symlink_paths = (const char *const *)r_strv(&r, &s->nsymlinks);
    s->symlink_targets = (const char *const *)r_strv(&r, NULL);
    s->masked_paths = (const char *const *)r_strv(&r, &s->nmasked);
    s->readonly_paths = (const char *const *)r_strv(&r, &s->nreadonly);
    s->argv = r_strv(&r, NULL);
    s->envp = r_strv(&r, NULL);
    s->cwd = r_str(&r);
    s->uid = (uint32_t)r_u64(&r);
    s->gid = (uint32_t)r_u64(&r);
    s->ngroups = (int)r_u64(&r);
    uint32_t *groups = r_array(&r, (uint64_t)s->ngroups, sizeof(uint32_t), 0);
    for (int i = 0; groups && i < s->ngroups; i++)
        groups[i] = (uint32_t)r_u64(&r);
    s->groups = groups;
    s->caps = r_u64(&r);
    s->no_new_privileges = (int)r_u64(&r);
    s->exec_signals_blocked = (int)r_u64(&r);
    s->seccomp_len = (unsigned int)r_u64(&r);
    if (s->seccomp_len) {
        unsigned char *prog = r_array(&r, (uint64_t)s->seccomp_len * 8, 1, 0);
        if (prog && r_raw(&r, prog, (unsigned long)s->seccomp_len * 8) == 0)
            s->seccomp_prog = prog;
    }
    s->nrlimits = (int)r_u64(&r);
    struct pe_rlimit *rl = r_array(&r, (uint64_t)s->nrlimits, sizeof *rl, 0);
    for (int i = 0; rl && i < s->nrlimits; i++) {
        rl[i].resource = (int)r_u64(&r);
        rl[i].soft = r_u64(&r);
        rl[i].hard = r_u64(&r);
    }
    s->rlimits = rl;
    s->stdin_fd = (int)(int64_t)r_u64(&r);
    s->stdout_fd = (int)(int64_t)r_u64(&r);
    s->stderr_fd = (int)(int64_t)r_u64(&r);
    s->tty = (int)r_u64(&r);
    s->tty_rows = (unsigned short)r_u64(&r);
    s->tty_cols = (unsigned short)r_u64(&r);
    if (!r.bad && r.pos < r.len)
        s->cgroup_tasks = (const char *const *)r_strv(&r, &s->ncgroup_tasks);
    if (!r.bad && r.pos < r.len) {
        s->oom_score_adj = (int)(int64_t)r_u64(&r);
        s->sysctl_paths = (const char *const *)r_strv(&r, &s->nsysctl);
        int nvalues = 0;
        s->sysctl_values = (const char *const *)r_strv(&r, &nvalues);
        if (nvalues != s->nsysctl)
            r.bad = 1;
    }
    return r.bad || !s->argv ? -1 : 0;
}

static void free_strv(char **v, int n)
{
    for (int i = 0; v && (n < 0 ? v[i] != NULL : i < n); i++)
        free(v[i]);
    free(v);
}

static void pe_spec_free(struct pe_spec *s)
{
    free((void *)s->join_fds);
    free((void *)s->join_types);
    free((void *)s->rootfs);
    free((void *)s->hostname);
    for (int i = 0; s->mounts && i < s->nmounts; i++) {
        free((void *)s->mounts[i].source);
        free((void *)s->mounts[i].target);
        free((void *)s->mounts[i].fstype);
        free((void *)s->mounts[i].data);
    }
    free((void *)s->mounts);
    for (int i = 0; s->devices && i < s->ndevices; i++)
        free((void *)s->devices[i].path);
    free((void *)s->devices);
    free_strv((char **)s->symlink_paths, s->nsymlinks);
    free_strv((char **)s->symlink_targets, s->nsymlinks);
    free_strv((char **)s->masked_paths, s->nmasked);
    free_strv((char **)s->readonly_paths, s->nreadonly);
    free_strv((char **)s->cgroup_tasks, s->ncgroup_tasks);
    free_strv((char **)s->sysctl_paths, s->nsysctl);
    free_strv((char **)s->sysctl_values, s->nsysctl);
    free_strv((char **)s->argv, -1);
    free_strv((char **)s->envp, -1);
    free((void *)s->cwd);
    free((void *)s->groups);
    free((void *)s->seccomp_prog);
    free((void *)s->rlimits);
    memset(s, 0, sizeof *s);
}
#endif

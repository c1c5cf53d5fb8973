#ifndef PE_HOSTOPS_H
#define PE_HOSTOPS_H

/* Host operations (rootfs mounts, cgroup directories and files, a removed container's
 * directory) run in order on a native
 * thread of their own, finished when `efd` (an eventfd) becomes readable: the event loop
 * waits on the fd, and no Python thread needs the GIL to run them.
 *
 * `ops` holds `nops` records, each: u32 code, u32 flags, u32 nargs, then nargs arguments,
 * each a u32 length and that many bytes, the last of which is a NUL. */
#define PE_HOP_MKDIR 1     /* path, mode (decimal); flag OK_EXISTS */
#define PE_HOP_RMDIR 2     /* path; flag OK_MISSING */
#define PE_HOP_WRITE 3     /* path, value…: one open, one write(2) per value */
#define PE_HOP_OVERLAY 4   /* target, upper, work, lower… (top first): pe_mount_overlay */
#define PE_HOP_UNMOUNT 5   /* target: pe_unmount (lazy; not mounted is no error) */
#define PE_HOP_READ 6      /* root, path: the bytes of pe_open_in_root's file into `out` (u32
                            * length; 0xffffffff: unreadable) */
#define PE_HOP_MKDIR_IN_ROOT 7 /* root, path: pe_mkdir_in_root */
#define PE_HOP_RENAME 8    /* from, to: rename(2); flag OK_MISSING (no `from`) */
#define PE_HOP_EMPTY_EXCEPT 9 /* path, then names each after a kind letter: 'd' dirs, 'f'
                               * files, 'p' pristine (pe_spawn.h's pe_empty_except) */
#define PE_HOP_REMOVE_TREE 10 /* path: pe_remove_tree */

#define PE_HOP_OK_EXISTS 1
#define PE_HOP_OK_MISSING 2

struct pe_hostops_job {
    const unsigned char *ops;
    unsigned long len;
    int nops;
    int efd;
    unsigned char *out;     /* READ results, in order */
    unsigned long out_cap;
    unsigned long out_len;
    int failed;             /* the index of the op that failed, -1 when none did */
    int err;                /* its errno (EFBIG: READ results larger than out_cap) */
};

/* `path` resolved inside `root` (every symlink as if root were "/": an image cannot point
 * it at a host file), opened read-only: the fd, or -errno. */
int pe_open_in_root(const char *root, const char *path);
/* mkdir -p of `path` resolved inside `root` the same way (pe_spawn.c's open_in_root): 0 or
 * -errno. */
int pe_mkdir_in_root(const char *root, const char *path);

/* Start the job's thread: 0, or an errno (the job did not start; efd is never written).
 * The caller keeps the job, ops and out alive until efd is readable. */
int pe_hostops_start(struct pe_hostops_job *job);

#endif

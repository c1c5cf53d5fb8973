/*
 * pe-init: the PID 1 of `docker run --init` (HostConfig.Init), what tini is for Docker.
 *
 * The daemon bind-mounts this static binary read-only at /sbin/docker-init and starts the
 * container as `/sbin/docker-init -- CMD ARGS...`. A process that is PID 1 in its namespace
 * gets no default signal actions and inherits every orphan, so a plain CMD ignores SIGTERM
 * and leaves zombies behind. pe-init:
 *
 *   - runs CMD as its only child, in its own process group (and in the terminal's
 *     foreground when stdin is a tty, so ^C/^Z reach it);
 *   - forwards every asynchronous signal it receives to that child (SIGCHLD excepted);
 *   - reaps every process that exits, its child and inherited orphans alike;
 *   - exits when its child does, with the child's status: the exit code, or 128 + signal.
 *
 *      daemon ──clone/exec──▶ pe-init (pid 1) ──fork/exec──▶ CMD (pid 2, own pgrp)
 *                              │  sigwaitinfo(all async signals)
 *                              ├─ SIGTERM/INT/HUP/USR1/… ──kill──▶ CMD
 *                              └─ SIGCHLD ─▶ waitpid(-1) until none; CMD gone ⇒ exit(status)
 *
 * It must run in any rootfs (no libc there, maybe no /bin/sh), hence statically linked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Signals the kernel raises for a fault in this very process: never blocked or forwarded. */
static const int synchronous[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS};

static void fatal(const char *what, const char *detail)
{
    fprintf(stderr, "[pe-init] %s: %s\n", what, detail);
}

static void run_child(char **argv)
{
    setpgid(0, 0);
    if (isatty(STDIN_FILENO)) {
        /* Taking the foreground from a background group raises SIGTTOU: ignore it for the call. */
        struct sigaction ignore = {.sa_handler = SIG_IGN}, previous;
        sigaction(SIGTTOU, &ignore, &previous);
        tcsetpgrp(STDIN_FILENO, getpgrp());
        sigaction(SIGTTOU, &previous, NULL);
    }
    /* The command starts with no signal blocked, whatever mask we were started with. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    int err = errno;
    fprintf(stderr, "[pe-init] exec %s failed: %s\n", argv[0], strerror(err));
    _exit(err == ENOENT ? 127 : 126);
}

int main(int argc, char **argv)
{
    int first = 1;
    if (first < argc && strcmp(argv[first], "--") == 0)
        first++;
    if (first >= argc) {
        fatal("usage", "pe-init [--] COMMAND [ARG...]");
        return 1;
    }

    /* Exactly these blocked (the engine execs us with every signal blocked, so that a signal
     * sent before this point waits for sigwaitinfo instead of being dropped by the kernel). */
    sigset_t all;
    sigfillset(&all);
    for (size_t i = 0; i < sizeof synchronous / sizeof *synchronous; i++)
        sigdelset(&all, synchronous[i]);
    sigprocmask(SIG_SETMASK, &all, NULL);

    pid_t child = fork();
    if (child < 0) {
        fatal("fork", strerror(errno));
        return 1;
    }
    if (child == 0)
        run_child(argv + first);

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            fatal("sigwaitinfo", strerror(errno));
            return 1;
        }
        if (sig != SIGCHLD) {
            /* The child may be gone between its exit and our reaping: ESRCH is fine. */
            kill(child, sig);
            continue;
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != child)
                continue;  /* an orphan we inherited: reaped, nothing more */
            /* Reap what is already dead, then leave: the namespace's other processes are
               killed by the kernel when PID 1 exits. */
            while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
    }
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "diag/mem.h"
#include "diag/proc.h"
#include "diag/ptrace.h"

/*
 * A fork() made by the target itself, so that a copy-on-write child holds its
 * memory image while the target runs on. Only from a ptrace.c stopped hook (the
 * calling thread is the tracer, every thread of the target is stopped).
 *
 * Nothing is written to the target's code. How it stays safe if we die at any
 * instant:
 *  - One thread T is sent to a "syscall; ret" of its C library, with rsp on a
 *    signal frame written below T's red zone (where a signal's frame would go)
 *    that holds T's registers, signal mask and FPU state (restart of an
 *    interrupted system call already applied), and whose return address is the
 *    library's rt_sigreturn. Whatever moment the tracer vanishes, T ends in
 *    rt_sigreturn and continues exactly where it was.
 *  - The child starts on a second frame (clone's newsp) that returns to
 *    exit_group: a child nobody caught exits at once. Caught, it is marked
 *    PTRACE_O_EXITKILL, and so is every process it makes.
 *  - The copies share the target's fd table (CLONE_FILES): they hold no file of
 *    their own, so their exit closes nothing (no flush to a hung FUSE or NFS
 *    server), releases no lock, and keeps no socket alive.
 *  - The child forks once more and dies; a wait4() run the same way in one
 *    thread of the target reaps it at once. The grandchild, which holds the
 *    image, is an orphan adopted by init (or the nearest subreaper): when it
 *    dies, whether we kill it at the end or it dies with us, its new parent
 *    reaps it. The target never sees a SIGCHLD (exit signal 0) and is left
 *    with no zombie.
 *  - Where the target itself would adopt that orphan (the init of a pid
 *    namespace, as in a container), there is no handover: the child, exit
 *    signal 0, holds the image and is reaped from the target at the end. A
 *    subreaper target is found out after the handover; the guard is told of
 *    the grandchild it adopted.
 *  - The frames are put back when done; after a kill they stay in the dead
 *    part of T's stack, below its stack pointer, as a signal's frame would.
 */

/* Addresses of the two instruction sequences used. */
struct diag_gadgets {
        uint64_t syscall_ret;   /* syscall; ret */
        uint64_t sigreturn;     /* mov $15,%rax; syscall */
};

struct diag_fork {
        pid_t pid;              /* the target */
        pid_t tid;              /* the thread that forked */
        pid_t child;            /* in our pid namespace; traced by the calling thread:
                                 * the child, then the grandchild holding the image */
        pid_t child_ns;         /* a child the target must reap (as the target sees it) */
        pid_t unfinished;       /* a thread left in the injected call (timed out): its
                                 * fork may still complete after we let go */
        bool ran;               /* a thread was sent to make the fork */
        int reap_error;         /* the handover's reap failed: a zombie is left */
        bool kept_child;        /* the target adopts orphans (init of its pid namespace):
                                 * no handover, the child holds the image */
        int guard_fd;           /* diag_inject_guard_start's, to tell it of an adopted
                                 * holder; -1: none (set after diag_inject_fork) */
        struct diag_gadgets g;
        uint64_t fork_ns;       /* how long the fork system call took */
        bool mended;            /* a thread's state needed setting back by hand after
                                 * rt_sigreturn (never expected: a sign of a frame bug) */
        /* Stack bytes the frames replaced, in the target (put back at once) and
         * in the copy (put back by prepare_child). */
        uint64_t frame, child_frame;
        uint8_t *frame_saved;
        size_t frame_len;
};

/* The sequences in pid's executable file mappings (C library first), never in
 * a file on a mount in remote (NULL: read here). -ENOENT if either is missing.
 * Reads up to tens of MB: call it before stopping the target. */
int diag_inject_find_gadgets(pid_t pid, const struct diag_maps *maps, const struct diag_remote_devs *remote,
                             struct diag_gadgets *ret);

/* Where XSAVE component bit lies in the standard (non-compacted) layout of this
 * CPU, as ptrace's NT_X86_XSTATE holds it (CPUID leaf 0xd, asked once). x86_64
 * only: false elsewhere, or for a component the CPU does not have. */
bool diag_xsave_component(unsigned bit, uint32_t *ret_off, uint32_t *ret_size);

/* Reasons fork cannot be used for pid, checked before stopping it: NULL if none. */
const char *diag_inject_fork_unsuitable(pid_t pid);

/* Fork the stopped target (c: its capture, maps: its mappings, g: found by
 * diag_inject_find_gadgets; checked again here). On success the child is
 * stopped, traced by the calling thread, shares the target's fd table, and its
 * memory equals the target's at the stop but for the frames (see prepare_child).
 * On failure (negative errno) the target is as it was, and *ret_why says why in
 * a few words. */
int diag_inject_fork(const struct diag_capture *c, const struct diag_maps *maps, const struct diag_gadgets *g,
                     struct diag_fork *f, const char **ret_why);

/* Once the target runs again: hand the image to a grandchild, reap the child
 * from the target, and put back, in the grandchild, the stack bytes the frames
 * replaced, so that its memory is the target's image. f->child is then the
 * grandchild. A failed reap is recorded in f->reap_error, not returned. */
int diag_inject_fork_prepare_child(struct diag_fork *f);

/* Kill the image's holder (and, if the target adopted it as a subreaper, reap
 * it from the target). Returns 0, or negative errno when a zombie was left. */
int diag_inject_fork_end(struct diag_fork *f);

/* A small process that outlives us (its own session, deaf to every signal but
 * SIGKILL): if we die before diag_inject_guard_stop, it reaps from the target
 * the children we made there (exit signal 0, started after it, and a holder the
 * target adopted, whose exit signal is SIGCHLD), so a kill of ours at any
 * instant leaves no zombie. Returns the fd to hand to
 * diag_inject_guard_stop, or negative errno. Call before stopping the target. */
int diag_inject_guard_start(pid_t pid);
/* done: nothing is left for the guard to do. Otherwise it reaps what a fork of
 * ours leaves, and if watch is a thread left in our fork (f->unfinished), for
 * as long as that fork may still complete. */
void diag_inject_guard_stop(int fd, bool done, pid_t watch);

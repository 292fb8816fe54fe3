/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * A bounded child, for the one kind of call a tool must make that can hang for
 * ever: an open, stat or read of a path the user named, which may sit on a
 * FUSE, NFS or CIFS mount whose server stopped answering. The call runs in a
 * child process that
 *  - holds none of the caller's descriptors: 0, 1 and 2 are /dev/null and
 *    everything else is closed, so a pipeline reading the tool's output ends
 *    when the tool does, even while the child is stuck;
 *  - dies with the caller (PR_SET_PDEATHSIG), as soon as the kernel lets it;
 *  - is given timeout_ms, then SIGKILL. A child stuck in uninterruptible sleep
 *    cannot die until the server answers: it is left behind, and its pid is
 *    returned so that the tool says so, once.
 * The caller never waits on the path itself, so it always answers.
 */

/* Shared memory the child writes and the caller reads afterwards: zeroed,
 * MAP_SHARED, size bytes (0 allowed). NULL on failure (errno set). */
void *diag_bounded_alloc(size_t size);
void diag_bounded_free(void *shared, size_t size);

/*
 * Run fn(arg, shared, size) in the child. Returns what fn returned (0 or a
 * negative errno), -ETIMEDOUT when it did not finish in time, or another
 * negative errno when the child could not be made. On -ETIMEDOUT, *ret_stuck
 * (may be NULL) is the pid of a child that would not die, or 0 when it did.
 * shared may be NULL. fn must not return a value it did not compute: the
 * child's own death (a signal) reads as -EIO.
 */
int diag_bounded_run(int (*fn)(void *arg, void *shared, size_t size), void *arg, void *shared, size_t size,
                     unsigned timeout_ms, pid_t *ret_stuck);

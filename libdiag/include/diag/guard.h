/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * A suspended tool must not keep its target stopped. A ptrace-stop lasts until
 * the tracer resumes the tracee or goes away; a tracer that is itself stopped
 * (SIGSTOP, Ctrl-Z, a debugger) does neither, and no ptrace option releases
 * tracees when the tracer stops. Deadlines cannot fire in a stopped process.
 *
 * So a watchdog process, forked once, outside the tool's process group (Ctrl-Z
 * does not reach it), watches the tool while a stop window is open. If the
 * tracing thread is stopped ('T'), it continues the tool (SIGCONT) and asks it
 * to stop itself once the target runs again; if the tool stays stopped or in a
 * tracing stop ('t') for GUARD_KILL_MS, it kills the tool: the kernel then
 * detaches every tracee and the target runs on.
 *
 * Ctrl-Z (SIGTSTP), SIGTTIN and SIGTTOU are also caught for the window and
 * re-raised once it closes, so they never stop the tool inside it.
 *
 * Opening and closing a window are a few atomic operations, one futex wake and
 * six sigaction calls: no fork, no /proc read while a target is stopped.
 */

/* Start the watchdog (once per process; later calls return 0). The thread
 * calling it first should live as long as the process: the watchdog dies with
 * it. Negative errno when it could not be started. */
int diag_guard_start(void);

/* Just before the first stop of a target. 0, or -ECHILD when this process
 * started a watchdog that is now gone or stopped: then do not stop anything.
 * In a process that never started one (a forked helper outside the user's
 * session) it returns 0 and guards nothing. Windows nest. */
int diag_guard_window_open(void);

/* A window left open for more than 60 s (DIAG_TEST_WINDOW_MAX_MS in tests)
 * means the tool is stuck, though running: the watchdog kills it, and the
 * kernel releases the target. A stop meant to last as long as its work (a
 * whole process copied while stopped) lifts that limit for the open window. */
void diag_guard_window_unbounded(void);

/* Right after the last tracee of the window is released (detached, or its
 * tracer thread has exited). Honours a suspension that arrived meanwhile: the
 * tool stops itself now, with the target running. No-op when not open. */
void diag_guard_window_close(void);

/* Test aid, with every thread of the target stopped. With DIAG_TEST_WINDOW_HOLD_MS=N
 * in the environment, writes "diag-test-window: stopped PID watchdog WPID" to the fd named by
 * DIAG_TEST_WINDOW_FD (default 2) and keeps the window open N ms more; without
 * it, does nothing. */
void diag_guard_test_hold(int pid);
/* Test aid, just before the target is released: "diag-test-window: release PID",
 * with " continued NS" (CLOCK_MONOTONIC) when the watchdog had to continue the tool. */
void diag_guard_test_release(int pid);

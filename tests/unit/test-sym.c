/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "diag/mem.h"
#include "diag/proc.h"
#include "diag/sym.h"
#include "diag/util.h"
#include "tap.h"

static int pipefd[2];
static volatile pid_t reader_tid;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile pid_t locker_tid;
int sym_test_data_object = 42;

__attribute__((noinline)) static void *sym_test_reader(void *arg) {
        char c;
        (void) arg;
        reader_tid = (pid_t) syscall(SYS_gettid);
        /* syscall(), not read(): a sanitizer interceptor would sit between */
        (void) syscall(SYS_read, pipefd[0], &c, 1);
        return NULL;
}

__attribute__((noinline)) static void *sym_test_locker(void *arg) {
        (void) arg;
        locker_tid = (pid_t) syscall(SYS_gettid);
        pthread_mutex_lock(&lock);
        pthread_mutex_unlock(&lock);
        return NULL;
}

/* Wait until /proc shows tid blocked in syscall nr. */
static bool wait_blocked(volatile pid_t *tidp, long nr, struct diag_syscall_state *sc) {
        for (int i = 0; i < 200; i++) {
                pid_t tid = *tidp;      /* set by the thread once it runs */
                if (tid && diag_task_read_syscall(getpid(), tid, sc) == 0 && sc->kind == DIAG_SC_IN && sc->nr == nr)
                        return true;
                nanosleep(&(struct timespec) { .tv_nsec = 5000000 }, NULL);
        }
        return false;
}

static bool has_func(const struct diag_peek_frame *f, size_t n, const char *sub) {
        for (size_t i = 0; i < n; i++)
                if (f[i].func && strstr(f[i].func, sub))
                        return true;
        return false;
}

int main(void) {
        struct diag_symcache *c = NULL;
        struct diag_maps *maps = NULL;
        struct diag_syscall_state sc;
        struct diag_peek_frame frames[16];
        pthread_t t1, t2;
        const char *name = NULL, *mod = NULL;
        uint64_t off = 0;
        size_t n;

        CHECK_INT(pipe2(pipefd, O_CLOEXEC), 0);
        pthread_mutex_lock(&lock);
        pthread_create(&t1, NULL, sym_test_reader, NULL);
        pthread_create(&t2, NULL, sym_test_locker, NULL);
        CHECK(wait_blocked(&reader_tid, diag_syscall_number(diag_arch_native(), "read"), &sc));
        CHECK_INT(diag_symcache_new(&c), 0);
        CHECK_INT(diag_maps_read(getpid(), &maps), 0);

        /* the syscall's pc is in libc's read; the peek climbs to our function */
        n = diag_symcache_peek(c, getpid(), maps, sc.sp, sc.pc, frames, 16);
        CHECK(n >= 1);
        CHECK(n >= 1 && frames[0].func && strstr(frames[0].func, "syscall"));
        CHECK(n >= 1 && frames[0].module && strstr(frames[0].module, "libc"));
#if defined(__x86_64__)
        CHECK(has_func(frames, n, "sym_test_reader"));
#endif
        CHECK(wait_blocked(&locker_tid, diag_syscall_number(diag_arch_native(), "futex"), &sc));
        n = diag_symcache_peek(c, getpid(), maps, sc.sp, sc.pc, frames, 16);
#if defined(__x86_64__)
        CHECK(has_func(frames, n, "mutex_lock"));
        CHECK(has_func(frames, n, "sym_test_locker"));
#endif
        /* plain lookups, code and data */
        CHECK_INT(diag_symcache_lookup(c, maps, (uint64_t) (uintptr_t) &sym_test_locker + 1, &name, &off, &mod), 0);
        CHECK_STR(name, "sym_test_locker");
        CHECK_INT(off, 1);
        CHECK_INT(diag_symcache_data_symbol(c, maps, (uint64_t) (uintptr_t) &sym_test_data_object, &name, &off, &mod), 0);
        CHECK_STR(name, "sym_test_data_object");
        CHECK_INT(diag_symcache_lookup(c, maps, 16, &name, &off, &mod), -ENOENT);

        pthread_mutex_unlock(&lock);
        (void) !write(pipefd[1], "x", 1);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        diag_maps_free(maps);
        diag_symcache_free(c);
        return TAP_DONE();
}

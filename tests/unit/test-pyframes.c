/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The CPython frame reader: the 3.11 line table decoder against a hand-made table
 * and against CPython's own co_lines() for every code object of a stdlib module,
 * the splice of Python frames into a native stack, and the reader on a live
 * /usr/bin/python3.11 (the parts that need it skip without it). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diag/pyframes.h"
#include "diag/util.h"
#include "tap.h"

#define PYTHON "/usr/bin/python3.11"

static void check_table_by_hand(void) {
        static const uint8_t t[] = {
                0xe9, 0x02,             /* no column, 2 units, line +1 */
                0xd0, 0x05, 0x09,       /* one line form, 1 unit, line +0 */
                0xe2, 0x01, 0x02,       /* one line form, 3 units, line +2 */
                0xf8,                   /* 1 unit without a location */
                0xf0, 0x07, 0x00, 0x01, 0x02,   /* long form, 1 unit, line -3 */
                0x80, 0x03,             /* short form, 1 unit, same line */
                0xe8, 0x50, 0x01,       /* no column, 1 unit, line +40 (two-byte varint) */
        };
        static const int want[] = { 11, 11, 11, 13, 13, 13, -1, 10, 10, 50 };

        CHECK_INT(diag_py_linetable_line(t, sizeof t, 10, -1), 10);
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                CHECK_INT(diag_py_linetable_line(t, sizeof t, 10, (int) i), want[i]);
        CHECK_INT(diag_py_linetable_line(t, sizeof t, 10, 10), -1);
        /* cut in the middle of an entry, or not at an entry start: no line, no overrun */
        CHECK_INT(diag_py_linetable_line(t, 10, 10, 7), -1);
        CHECK_INT(diag_py_linetable_line(t + 1, sizeof t - 1, 10, 0), -1);
}

/* Every code object of threading.py, nested ones too: CPython's own co_lines()
 * says which line each instruction is on; so must the decoder. */
static const char lines_script[] =
        "import threading, types\n"
        "def walk(co):\n"
        "    yield co\n"
        "    for c in co.co_consts:\n"
        "        if isinstance(c, types.CodeType):\n"
        "            yield from walk(c)\n"
        "src = open(threading.__file__).read()\n"
        "for co in walk(compile(src, threading.__file__, 'exec')):\n"
        "    print('C', co.co_firstlineno, co.co_linetable.hex())\n"
        "    for start, end, line in co.co_lines():\n"
        "        for off in range(start, end, 2):\n"
        "            print('L', off // 2, -1 if line is None else line)\n";

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void check_table_against_cpython(void) {
        char cmd[2048], *line = NULL;
        size_t cap = 0, ncode = 0, nline = 0, bad = 0;
        uint8_t *table = NULL;
        size_t len = 0;
        int first = 0;
        FILE *f;

        snprintf(cmd, sizeof cmd, "%s -c \"$DIAG_LINES_SCRIPT\"", PYTHON);
        setenv("DIAG_LINES_SCRIPT", lines_script, 1);
        f = popen(cmd, "r");
        CHECK(f != NULL);
        if (!f)
                return;
        while (getline(&line, &cap, f) > 0) {
                if (line[0] == 'C') {
                        char *hex = strchr(line + 2, ' ');
                        first = atoi(line + 2);
                        free(table);
                        table = NULL;
                        len = 0;
                        if (!hex)
                                continue;
                        hex++;
                        table = malloc(strlen(hex) / 2 + 1);
                        for (; table && hexval(hex[0]) >= 0 && hexval(hex[1]) >= 0; hex += 2)
                                table[len++] = (uint8_t) (hexval(hex[0]) * 16 + hexval(hex[1]));
                        ncode++;
                } else if (line[0] == 'L' && table) {
                        int lasti, want;
                        if (sscanf(line + 2, "%d %d", &lasti, &want) != 2)
                                continue;
                        nline++;
                        if (diag_py_linetable_line(table, len, first, lasti) != want && bad++ < 5)
                                fprintf(stderr, "code at line %d, instruction %d: line %d, CPython says %d\n", first,
                                        lasti, diag_py_linetable_line(table, len, first, lasti), want);
                }
        }
        free(table);
        free(line);
        CHECK_INT(pclose(f), 0);
        printf("line tables: %zu code objects, %zu instructions\n", ncode, nline);
        CHECK(ncode > 50);
        CHECK(nline > 1000);
        CHECK_INT(bad, 0);
}

static void check_splice(void) {
        struct diag_frame nf[] = {
                { .pc = 0x10, .func = (char *) "read" },
                { .pc = 0x20, .func = (char *) "inlined_in_eval", .inlined = true },
                { .pc = 0x20, .func = (char *) "_PyEval_EvalFrameDefault" },
                { .pc = 0x30, .func = (char *) "_PyFunction_Vectorcall" },
                { .pc = 0x40, .func = (char *) "do_call_core", .inlined = true },
                { .pc = 0x40, .func = (char *) "_PyEval_EvalFrameDefault" },
                { .pc = 0x50, .func = (char *) "main" },
        };
        struct diag_pyframe pf[] = {
                { .qualname = "a", .filename = "x.py", .line = 1 },
                { .qualname = "b", .filename = "x.py", .line = 2, .entry = true },
                { .qualname = "c", .filename = "y.py", .line = 3 },
                { .qualname = "d", .filename = "y.py", .line = 4, .entry = true },
                { .qualname = "e", .filename = "z.py", .line = 5, .entry = true },
        };
        /* the Python frames between the inlined frames and their physical eval frame */
        static const char *want[] = { "read", "inlined_in_eval", "a", "b", "_PyEval_EvalFrameDefault",
                                      "_PyFunction_Vectorcall", "do_call_core", "c", "d",
                                      "_PyEval_EvalFrameDefault", "main", "e" };
        struct diag_stack native = { .n = ELEMENTSOF(nf), .frames = nf, .err = -EIO };
        struct diag_pythread py = { .n = ELEMENTSOF(pf), .frames = pf };
        struct diag_stack out;

        CHECK_INT(diag_py_splice(&native, &py, &out), 0);
        CHECK_INT(out.n, ELEMENTSOF(want));
        for (size_t i = 0; i < out.n && i < ELEMENTSOF(want); i++)
                CHECK_STR(out.frames[i].func, want[i]);
        CHECK(out.frames[2].python && out.frames[2].module == -1 && out.frames[2].line == 1);
        CHECK_STR(out.frames[2].file, "x.py");
        CHECK(!out.frames[1].python);
        CHECK(!out.frames[0].python);
        CHECK_INT(out.err, -EIO);
        free(out.frames);

        /* no eval loop frame at all (the unwind stopped early): all go last */
        native.n = 1;
        CHECK_INT(diag_py_splice(&native, &py, &out), 0);
        CHECK_INT(out.n, 1 + ELEMENTSOF(pf));
        CHECK_STR(out.frames[0].func, "read");
        CHECK_STR(out.frames[1].func, "a");
        free(out.frames);
}

static const char live_script[] =
        "import sys, time\n"
        "def snooze():\n"
        "    print('READY', flush=True)\n"
        "    time.sleep(100)\n"
        "snooze()\n";

/* 900 distinct functions calling each other: more code objects than the cache
 * starts with, so it grows while the frames read before still point into it. */
static const char deep_script[] =
        "import time\n"
        "src = ''.join('def f%d():\\n    f%d()\\n' % (i, i + 1) for i in range(900))\n"
        "src += 'def f900():\\n    print(\\'READY\\', flush=True)\\n    time.sleep(100)\\n'\n"
        "exec(compile(src, 'deep.py', 'exec'))\n"
        "f0()\n";

static pid_t start_python(const char *script, int *ret_fd) {
        char buf[16] = "";
        int fds[2];
        pid_t pid;

        if (pipe(fds) < 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                dup2(fds[1], 1);
                execl(PYTHON, PYTHON, "-c", script, (char *) NULL);
                _exit(127);
        }
        close(fds[1]);
        CHECK(read(fds[0], buf, sizeof buf - 1) > 0);
        CHECK(strncmp(buf, "READY", 5) == 0);
        *ret_fd = fds[0];
        return pid;
}

/* The thread's frames once its innermost one is at line (it printed READY just
 * before it got there), or as they are after 2 s. */
static int read_at_line(struct diag_pyreader *r, pid_t tid, int line, struct diag_pythread *ret) {
        int k = -EAGAIN;

        for (int i = 0; i < 200; i++) {
                k = diag_pyreader_thread(r, tid, ret);
                if (k == 0 && ret->n > 0 && ret->frames[0].line == line)
                        return 0;
                if (i < 199)
                        diag_pythread_clear(ret);
                usleep(10000);
        }
        return k;
}

static void check_deep(void) {
        struct diag_pyreader *r = NULL;
        struct diag_pythread t = { 0 };
        char name[16];
        int fd = -1;
        pid_t pid = start_python(deep_script, &fd);

        if (pid <= 0)
                return;
        CHECK_INT(diag_pyreader_new(pid, &r, NULL), 0);
        if (r && read_at_line(r, pid, 1803, &t) == 0) {
                CHECK_INT(t.n, 902);
                for (size_t i = 0; i < t.n && i < 901; i++) {
                        snprintf(name, sizeof name, "f%zu", 900 - i);
                        CHECK_STR(t.frames[i].qualname, name);
                        CHECK_INT(t.frames[i].line, 2 * (int) (900 - i) + 2 + (i == 0));
                }
                CHECK_STR(t.frames[901].qualname, "<module>");
                CHECK_STR(t.frames[0].filename, "deep.py");
        }
        diag_pythread_clear(&t);
        diag_pyreader_free(r);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(fd);
}

static void check_live(void) {
        struct diag_pyreader *r = NULL;
        struct diag_pythread t = { 0 };
        char *version = NULL, buf[16] = "";
        int fds[2];
        pid_t pid;

        CHECK_INT(diag_pyreader_new(getpid(), &r, &version), -ENOENT);
        CHECK(r == NULL);
        if (access(PYTHON, X_OK) < 0) {
                printf("skip the live part: %s is not installed\n", PYTHON);
                return;
        }
        if (pipe(fds) < 0)
                return;
        pid = fork();
        if (pid == 0) {
                dup2(fds[1], 1);
                execl(PYTHON, PYTHON, "-c", live_script, (char *) NULL);
                _exit(127);
        }
        close(fds[1]);
        CHECK(read(fds[0], buf, sizeof buf - 1) > 0);
        CHECK(strncmp(buf, "READY", 5) == 0);
        CHECK_INT(diag_pyreader_new(pid, &r, &version), 0);
        CHECK(version && strncmp(version, "3.11.", 5) == 0);
        if (r) {
                CHECK_STR(diag_pyreader_version(r), version);
                /* twice: the second from the caches must say the same */
                for (int pass = 0; pass < 2; pass++) {
                        CHECK_INT(read_at_line(r, pid, 4, &t), 0);
                        CHECK_INT(t.n, 2);
                        if (t.n == 2) {
                                CHECK_STR(t.frames[0].qualname, "snooze");
                                CHECK_STR(t.frames[0].filename, "<string>");
                                CHECK_INT(t.frames[0].line, 4);
                                CHECK_INT(t.frames[0].firstline, 2);
                                CHECK(t.frames[0].entry == false);
                                CHECK_STR(t.frames[1].qualname, "<module>");
                                CHECK_INT(t.frames[1].line, 5);
                                CHECK(t.frames[1].entry);
                        }
                        CHECK(!t.holds_gil);
                        diag_pythread_clear(&t);
                }
                /* a tid that is not one of its threads: no frames, no error */
                CHECK_INT(diag_pyreader_thread(r, getpid(), &t), 0);
                CHECK_INT(t.n, 0);
        }
        diag_pyreader_free(r);
        free(version);
        version = NULL;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(fds[0]);
        CHECK_INT(diag_pyreader_new(pid, &r, &version), -ESRCH);
        free(version);
}

int main(void) {
        check_table_by_hand();
        check_splice();
        if (access(PYTHON, X_OK) == 0)
                check_table_against_cpython();
        check_live();
        if (access(PYTHON, X_OK) == 0)
                check_deep();
        return TAP_DONE();
}

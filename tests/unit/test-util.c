/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdio.h>

#include "diag/proc.h"
#include "diag/util.h"
#include "tap.h"

int main(void) {
        long long v;
        unsigned long long u;
        uint64_t ms, sz;
        pid_t pid;
        char buf[DIAG_DURATION_MAX];
        char sbuf[DIAG_SIZE_MAX];
        _cleanup_free_ char *text = NULL;
        size_t len;

        /* /proc/PID/cgroup: a v1 controller in a joined list, the v2 line, none */
        {
                static const char cg[] = "12:pids:/a\n5:cpu,cpuacct:/b\n4:memory:/c/d\n0::/e.slice/f\n";
                char p[64];

                CHECK_INT(diag_proc_cgroup_path(cg, "memory", p, sizeof p), 0); CHECK_STR(p, "/c/d");
                CHECK_INT(diag_proc_cgroup_path(cg, "cpu", p, sizeof p), 0); CHECK_STR(p, "/b");
                CHECK_INT(diag_proc_cgroup_path(cg, "cpuacct", p, sizeof p), 0); CHECK_STR(p, "/b");
                CHECK_INT(diag_proc_cgroup_path(cg, NULL, p, sizeof p), 0); CHECK_STR(p, "/e.slice/f");
                CHECK_INT(diag_proc_cgroup_path(cg, "cpus", p, sizeof p), -ENOENT);
                CHECK_INT(diag_proc_cgroup_path(cg, "mem", p, sizeof p), -ENOENT);
                CHECK_INT(diag_proc_cgroup_path("0::/\n", "memory", p, sizeof p), -ENOENT);
                CHECK_INT(diag_proc_cgroup_path("0::/\n", NULL, p, sizeof p), 0); CHECK_STR(p, "/");
                CHECK_INT(diag_proc_cgroup_path(cg, "memory", p, 4), -ENAMETOOLONG);
        }
        CHECK_INT(diag_parse_ll("42", 10, 0, 100, &v), 0); CHECK_INT(v, 42);
        CHECK_INT(diag_parse_ll("-5", 10, -10, 10, &v), 0); CHECK_INT(v, -5);
        CHECK_INT(diag_parse_ll("101", 10, 0, 100, &v), -ERANGE);
        CHECK_INT(diag_parse_ll("12x", 10, 0, 100, &v), -EINVAL);
        CHECK_INT(diag_parse_ll("", 10, 0, 100, &v), -EINVAL);
        CHECK_INT(diag_parse_ll(" 1", 10, 0, 100, &v), -EINVAL);
        CHECK_INT(diag_parse_ll("99999999999999999999", 10, 0, 100, &v), -ERANGE);
        CHECK_INT(diag_parse_ull("0x10", 16, &u), 0); CHECK_INT(u, 16);
        CHECK_INT(diag_parse_ull("-1", 10, &u), -EINVAL);

        {
                /* a comm with spaces and parentheses, negative and huge fields */
                struct diag_stat st;
                CHECK_INT(diag_stat_parse("42 (a) (b) c) S 1 42 42 0 -1 4194560 99 0 7 0 15 3 0 0 20 0 2 0 "
                                          "12345 10000 250 18446744073709551615 1\n", &st), 0);
                CHECK_STR(st.comm, "a) (b) c");
                CHECK_INT(st.state, 'S');
                CHECK_INT(DIAG_STAT_FIELD(&st, 4), 1);
                CHECK_INT((int64_t) DIAG_STAT_FIELD(&st, 8), -1);
                CHECK_INT(DIAG_STAT_FIELD(&st, 9), 4194560);
                CHECK_INT(DIAG_STAT_FIELD(&st, 12), 7);
                CHECK_INT(DIAG_STAT_FIELD(&st, 14), 15);
                CHECK_INT(DIAG_STAT_FIELD(&st, 15), 3);
                CHECK_INT(DIAG_STAT_FIELD(&st, 20), 2);
                CHECK_INT(DIAG_STAT_FIELD(&st, 22), 12345);
                CHECK_INT(DIAG_STAT_FIELD(&st, 24), 250);
                CHECK_INT(st.n, 23);
                CHECK_INT(diag_stat_parse("42 (x S 1", &st), -EINVAL);
                CHECK_INT(diag_stat_parse("42 (x) ", &st), -EINVAL);
                CHECK_INT(diag_stat_parse("42 (x) R 1 zz", &st), -EINVAL);
        }

        CHECK_INT(diag_parse_pid("1234", &pid), 0); CHECK_INT(pid, 1234);
        CHECK_INT(diag_parse_pid("0", &pid), -ERANGE);
        CHECK_INT(diag_parse_pid("abc", &pid), -EINVAL);

        CHECK_INT(diag_parse_duration_ms("30s", &ms), 0); CHECK_INT(ms, 30000);
        CHECK_INT(diag_parse_duration_ms("1h30m", &ms), 0); CHECK_INT(ms, 5400000);
        CHECK_INT(diag_parse_duration_ms("250ms", &ms), 0); CHECK_INT(ms, 250);
        CHECK_INT(diag_parse_duration_ms("5", &ms), 0); CHECK_INT(ms, 5000);
        CHECK_INT(diag_parse_duration_ms("5x", &ms), -EINVAL);
        CHECK_INT(diag_parse_duration_ms("", &ms), -EINVAL);

        CHECK_INT(diag_parse_size("64k", &sz), 0); CHECK_INT(sz, 65536);
        CHECK_INT(diag_parse_size("1M", &sz), 0); CHECK_INT(sz, 1 << 20);
        CHECK_INT(diag_parse_size("512", &sz), 0); CHECK_INT(sz, 512);
        CHECK_INT(diag_parse_size("1M2k", &sz), -EINVAL);

        CHECK_STR(diag_format_duration(850, buf, sizeof buf), "850ms");
        CHECK_STR(diag_format_duration(12300, buf, sizeof buf), "12.3s");
        CHECK_STR(diag_format_duration(192000, buf, sizeof buf), "3m12s");
        CHECK_STR(diag_format_duration(11520000, buf, sizeof buf), "3h12m");
        CHECK_STR(diag_format_duration(187200000, buf, sizeof buf), "2d4h");
        CHECK_STR(diag_format_size(4096, sbuf, sizeof sbuf), "4.0K");
        CHECK_STR(diag_format_size(100, sbuf, sizeof sbuf), "100B");

        CHECK_INT(diag_read_file_at(AT_FDCWD, "/proc/self/comm", 4096, &text, &len), 0);
        CHECK(len > 0 && text[len - 1] == '\n');
        CHECK_INT(diag_read_file_at(AT_FDCWD, "/proc/self/maps", 8, &text, &len), -EFBIG);
        CHECK_INT(diag_read_file_at(AT_FDCWD, "/nonexistent/x", 8, &text, &len), -ENOENT);

        return TAP_DONE();
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* diag_fdname on this process's own fds, checked against stat() (allowed here: the
 * files are our own) and /proc/self/mountinfo. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "diag/fdname.h"
#include "diag/util.h"
#include "tap.h"

int main(void) {
        char tmpl[] = "/tmp/diagkit-test-fdname-XXXXXX", buf[1024];
        struct diag_fdname n;
        struct diag_mounts ms;
        struct stat st, mst;
        pid_t self = getpid();
        int fd, p[2];

        /* the mount table parses, and names /proc as proc */
        CHECK_INT(diag_mounts_read(self, &ms), 0);
        CHECK(ms.n > 0);
        {
                bool proc = false;
                for (size_t i = 0; i < ms.n; i++)
                        if (strcmp(ms.m[i].point, "/proc") == 0 && strcmp(ms.m[i].fstype, "proc") == 0)
                                proc = true;
                CHECK(proc);
        }
        CHECK(diag_fstype_may_hang("fuse.sshfs"));
        CHECK(diag_fstype_may_hang("nfs4"));
        CHECK(!diag_fstype_may_hang("ext4"));

        /* a regular file: path, position, device and mount */
        fd = mkstemp(tmpl);
        CHECK(fd >= 0);
        CHECK_INT(write(fd, "hello", 5), 5);
        CHECK_INT(fstat(fd, &st), 0);
        CHECK_INT(diag_fdname_read(self, fd, NULL, &n), 0);
        CHECK_STR(n.link, tmpl);
        CHECK_INT(n.type, DIAG_FD_UNKNOWN);
        CHECK(!n.deleted);
        CHECK(n.have_fdinfo);
        CHECK_INT(n.pos, 5);
        CHECK(n.mnt_id > 0);
        CHECK(n.have_mount);
        CHECK_INT(n.dev_major, major(st.st_dev));
        CHECK_INT(n.dev_minor, minor(st.st_dev));
        CHECK(n.mount_point && strncmp(tmpl, n.mount_point, strlen(n.mount_point)) == 0);
        CHECK(n.mount_point && stat(n.mount_point, &mst) == 0 && mst.st_dev == st.st_dev);
        CHECK(n.fstype && n.fstype[0]);
        diag_fdname_format(&n, buf, sizeof buf);
        {
                char want[1024];
                snprintf(want, sizeof want, "%s (%s %s mounted at %s)", tmpl, n.dev_name ? n.dev_name : "?",
                         n.fstype, n.mount_point);
                if (n.dev_name)
                        CHECK_STR(buf, want);
                printf("%s\n", buf);
        }
        diag_fdname_done(&n);

        /* the same with the mount table passed in */
        CHECK_INT(diag_fdname_read(self, fd, &ms, &n), 0);
        CHECK(n.have_mount && n.dev_major == major(st.st_dev));
        diag_fdname_done(&n);

        /* deleted */
        CHECK_INT(unlink(tmpl), 0);
        CHECK_INT(diag_fdname_read(self, fd, &ms, &n), 0);
        CHECK(n.deleted);
        CHECK(strstr(diag_fdname_format(&n, buf, sizeof buf), " (deleted) (") != NULL);
        diag_fdname_done(&n);
        close(fd);

        /* a pipe: its name alone, no mount in the text */
        CHECK_INT(pipe(p), 0);
        CHECK_INT(diag_fdname_read(self, p[1], &ms, &n), 0);
        CHECK_INT(n.type, DIAG_FD_FIFO);
        CHECK(strncmp(diag_fdname_format(&n, buf, sizeof buf), "pipe:[", 6) == 0);
        CHECK(strchr(buf, '(') == NULL);
        diag_fdname_done(&n);
        close(p[0]);
        close(p[1]);

        /* a closed fd and a gone process */
        CHECK_INT(diag_fdname_read(self, p[1], &ms, &n), -ESRCH);
        diag_fdname_done(&n);
        CHECK_INT(diag_fdname_read(0x3ffffff0, 0, NULL, &n), -ESRCH);
        diag_fdname_done(&n);

        diag_mounts_done(&ms);
        return TAP_DONE();
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "diag/fd.h"
#include "diag/scan.h"
#include "diag/util.h"
#include "tap.h"

static const struct diag_fd *find(const struct diag_fdtable *t, int fd) {
        for (size_t i = 0; i < t->n; i++)
                if (t->fds[i].fd == fd)
                        return &t->fds[i];
        return NULL;
}

int main(void) {
        uint64_t ino;
        struct diag_fd f = {};
        struct diag_fdtable *t = NULL;
        const struct diag_fd *x;
        int p[2], sp[2], efd, epfd, mfd, dfd, wfd, lfd;
        char tmpl[] = "/tmp/diagkit-test-fd-XXXXXX";
        struct stat st;
        struct rlimit rl;
        uint64_t soft = 0, hard = 0;

        /* classification of link texts */
        CHECK_INT(diag_fd_classify("pipe:[1234]", &ino), DIAG_FD_FIFO); CHECK_INT(ino, 1234);
        CHECK_INT(diag_fd_classify("socket:[99]", &ino), DIAG_FD_SOCK); CHECK_INT(ino, 99);
        CHECK_INT(diag_fd_classify("socket:[99", &ino), DIAG_FD_UNKNOWN);
        CHECK_INT(diag_fd_classify("anon_inode:[eventfd]", &ino), DIAG_FD_EVENTFD);
        CHECK_INT(diag_fd_classify("anon_inode:[eventpoll]", &ino), DIAG_FD_EVENTPOLL);
        CHECK_INT(diag_fd_classify("anon_inode:inotify", &ino), DIAG_FD_INOTIFY);
        CHECK_INT(diag_fd_classify("anon_inode:bpf-map", &ino), DIAG_FD_BPF);
        CHECK_INT(diag_fd_classify("anon_inode:[io_uring]", &ino), DIAG_FD_IO_URING);
        CHECK_INT(diag_fd_classify("anon_inode:[something-new]", &ino), DIAG_FD_ANON);
        CHECK_INT(diag_fd_classify("/memfd:cache (deleted)", &ino), DIAG_FD_MEMFD);
        CHECK_INT(diag_fd_classify("/etc/passwd", &ino), DIAG_FD_UNKNOWN);
        CHECK_STR(diag_fd_type_name(DIAG_FD_EVENTPOLL), "eventpoll");
        CHECK_STR(diag_fd_type_name(DIAG_FD_FIFO), "FIFO");

        /* fdinfo text */
        CHECK_INT(diag_fd_parse_fdinfo("pos:\t42\nflags:\t02004002\nmnt_id:\t15\nino:\t777\n"
                                       "lock:\t1: FLOCK  ADVISORY  WRITE 1234 08:01:777 0 EOF\n"
                                       "tfd:        5 events:       19 data:                5  pos:0 ino:61c sdev:8\n"
                                       "tfd:        9 events:       19 data:                9  pos:0 ino:61d sdev:8\n"
                                       "eventfd-count:                3\neventfd-id: 17\n", &f), 0);
        CHECK_INT(f.pos, 42);
        CHECK_INT(f.flags, 02004002);
        CHECK_INT(f.mnt_id, 15);
        CHECK_INT(f.inode, 777);
        CHECK_INT(f.nlocks, 1);
        CHECK(f.nlocks == 1 && f.locks[0].kind == DIAG_LOCK_FLOCK && f.locks[0].pid == 1234);
        CHECK_INT(f.nepoll_tfds, 2);
        CHECK(f.nepoll_tfds == 2 && f.epoll_tfds[0] == 5 && f.epoll_tfds[1] == 9);
        CHECK_INT(f.eventfd_count, 3);
        CHECK_INT(f.eventfd_id, 17);
        free(f.locks);
        free(f.epoll_tfds);

        /* a live table: our own fds */
        CHECK_INT(pipe2(p, O_CLOEXEC), 0);
        CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        efd = eventfd(3, EFD_CLOEXEC);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        {
                struct epoll_event ev = { .events = EPOLLIN, .data.fd = p[0] };
                CHECK_INT(epoll_ctl(epfd, EPOLL_CTL_ADD, p[0], &ev), 0);
        }
        mfd = memfd_create("diagkit-test", MFD_CLOEXEC);
        dfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        wfd = mkostemp(tmpl, O_CLOEXEC);
        CHECK(wfd >= 0);
        CHECK_INT(fstat(wfd, &st), 0);
        unlink(tmpl);
        lfd = open("/dev/null", O_WRONLY | O_CLOEXEC);

        CHECK_INT(diag_fd_scan(getpid(), DIAG_FD_STATX | DIAG_FD_ACCESS | DIAG_FD_FDINFO_SPECIAL, &t), 0);
        CHECK(t != NULL);
        x = find(t, p[0]);
        CHECK(x && x->type == DIAG_FD_FIFO && x->access == DIAG_FD_R && x->inode > 0);
        x = find(t, p[1]);
        CHECK(x && x->type == DIAG_FD_FIFO && x->access == DIAG_FD_W);
        x = find(t, sp[0]);
        CHECK(x && x->type == DIAG_FD_SOCK && x->access == (DIAG_FD_R | DIAG_FD_W));
        x = find(t, efd);
        CHECK(x && x->type == DIAG_FD_EVENTFD && x->have_fdinfo && x->eventfd_count == 3 && x->eventfd_id > 0);
        x = find(t, epfd);
        CHECK(x && x->type == DIAG_FD_EVENTPOLL && x->nepoll_tfds == 1 && x->epoll_tfds[0] == p[0]);
        x = find(t, mfd);
        CHECK(x && x->type == DIAG_FD_MEMFD && x->inode > 0);
        x = find(t, dfd);
        CHECK(x && x->type == DIAG_FD_DIR);
        x = find(t, wfd);
        CHECK(x && x->type == DIAG_FD_REG && x->deleted && x->inode == st.st_ino &&
              x->dev_major == major(st.st_dev) && x->dev_minor == minor(st.st_dev));
        x = find(t, lfd);
        CHECK(x && x->type == DIAG_FD_CHR && x->access == DIAG_FD_W);
        for (size_t i = 1; t && i < t->n; i++)
                CHECK(t->fds[i - 1].fd < t->fds[i].fd);
        diag_fdtable_free(t);
        CHECK_INT(diag_fd_scan(999999999, 0, &t), -ESRCH);

        /* on-demand fdinfo of one fd */
        CHECK_INT(diag_fd_scan(getpid(), 0, &t), 0);
        {
                struct diag_fd *y = (struct diag_fd *) find(t, efd);
                CHECK(y && !y->have_fdinfo);
                CHECK(y && diag_fd_read_fdinfo(getpid(), y) == 0 && y->eventfd_count == 3);
        }
        diag_fdtable_free(t);

        CHECK_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
        CHECK_INT(diag_fd_nofile_limit(getpid(), &soft, &hard), 0);
        CHECK_INT(soft, rl.rlim_cur);

        /* the scan's index: both ends of our pipe, found from either */
        {
                pid_t self = getpid();
                struct diag_scan *s = NULL;
                const struct diag_scan_proc *sp_ = NULL;
                size_t first = 0, n;
                uint64_t dev, ino2;

                CHECK_INT(diag_scan_run(&self, 1, DIAG_SCAN_STATX | DIAG_SCAN_INDEX | DIAG_SCAN_EPOLL, &s), 0);
                if (s)
                        sp_ = diag_scan_find(s, self);
                CHECK(sp_ != NULL);
                if (sp_) {
                        CHECK(diag_scan_fd_key(find(sp_->fdt, p[0]), &dev, &ino2) == DIAG_REF_PIPE);
                        n = diag_scan_refs(s, DIAG_REF_PIPE, 0, ino2, &first);
                        CHECK_INT(n, 2);
                        for (size_t i = 0; i < n; i++) {
                                const struct diag_fdref *r = diag_scan_ref(s, first + i);
                                int fdnum = s->procs[r->proc].fdt->fds[r->fd].fd;
                                CHECK(fdnum == p[0] || fdnum == p[1]);
                        }
                        CHECK(diag_scan_fd_key(find(sp_->fdt, wfd), &dev, &ino2) == DIAG_REF_FILE);
                        CHECK_INT(diag_scan_refs(s, DIAG_REF_FILE, dev, ino2, &first), 1);
                        CHECK_INT(diag_scan_refs(s, DIAG_REF_PIPE, 0, 1, &first), 0);
                }
                diag_scan_free(s);
        }
        return TAP_DONE();
}

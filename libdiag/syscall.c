/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "diag/syscall.h"
#include "diag/util.h"

/*
 * Syscall numbers, written out per arch. aarch64 uses the asm-generic numbering,
 * which has only the *at / p* variants of the old calls. 403-423 are the time64
 * calls of 32-bit ABIs and do not exist on either 64-bit arch; 436 is close_range.
 */
static const char *const sc_x86_64[] = {
        [0] = "read", [1] = "write", [2] = "open",
        [3] = "close", [4] = "stat", [5] = "fstat",
        [6] = "lstat", [7] = "poll", [8] = "lseek",
        [9] = "mmap", [10] = "mprotect", [11] = "munmap",
        [12] = "brk", [13] = "rt_sigaction", [14] = "rt_sigprocmask",
        [15] = "rt_sigreturn", [16] = "ioctl", [17] = "pread64",
        [18] = "pwrite64", [19] = "readv", [20] = "writev",
        [21] = "access", [22] = "pipe", [23] = "select",
        [24] = "sched_yield", [25] = "mremap", [26] = "msync",
        [27] = "mincore", [28] = "madvise", [29] = "shmget",
        [30] = "shmat", [31] = "shmctl", [32] = "dup",
        [33] = "dup2", [34] = "pause", [35] = "nanosleep",
        [36] = "getitimer", [37] = "alarm", [38] = "setitimer",
        [39] = "getpid", [40] = "sendfile", [41] = "socket",
        [42] = "connect", [43] = "accept", [44] = "sendto",
        [45] = "recvfrom", [46] = "sendmsg", [47] = "recvmsg",
        [48] = "shutdown", [49] = "bind", [50] = "listen",
        [51] = "getsockname", [52] = "getpeername", [53] = "socketpair",
        [54] = "setsockopt", [55] = "getsockopt", [56] = "clone",
        [57] = "fork", [58] = "vfork", [59] = "execve",
        [60] = "exit", [61] = "wait4", [62] = "kill",
        [63] = "uname", [64] = "semget", [65] = "semop",
        [66] = "semctl", [67] = "shmdt", [68] = "msgget",
        [69] = "msgsnd", [70] = "msgrcv", [71] = "msgctl",
        [72] = "fcntl", [73] = "flock", [74] = "fsync",
        [75] = "fdatasync", [76] = "truncate", [77] = "ftruncate",
        [78] = "getdents", [79] = "getcwd", [80] = "chdir",
        [81] = "fchdir", [82] = "rename", [83] = "mkdir",
        [84] = "rmdir", [85] = "creat", [86] = "link",
        [87] = "unlink", [88] = "symlink", [89] = "readlink",
        [90] = "chmod", [91] = "fchmod", [92] = "chown",
        [93] = "fchown", [94] = "lchown", [95] = "umask",
        [96] = "gettimeofday", [97] = "getrlimit", [98] = "getrusage",
        [99] = "sysinfo", [100] = "times", [101] = "ptrace",
        [102] = "getuid", [103] = "syslog", [104] = "getgid",
        [105] = "setuid", [106] = "setgid", [107] = "geteuid",
        [108] = "getegid", [109] = "setpgid", [110] = "getppid",
        [111] = "getpgrp", [112] = "setsid", [113] = "setreuid",
        [114] = "setregid", [115] = "getgroups", [116] = "setgroups",
        [117] = "setresuid", [118] = "getresuid", [119] = "setresgid",
        [120] = "getresgid", [121] = "getpgid", [122] = "setfsuid",
        [123] = "setfsgid", [124] = "getsid", [125] = "capget",
        [126] = "capset", [127] = "rt_sigpending", [128] = "rt_sigtimedwait",
        [129] = "rt_sigqueueinfo", [130] = "rt_sigsuspend", [131] = "sigaltstack",
        [132] = "utime", [133] = "mknod", [134] = "uselib",
        [135] = "personality", [136] = "ustat", [137] = "statfs",
        [138] = "fstatfs", [139] = "sysfs", [140] = "getpriority",
        [141] = "setpriority", [142] = "sched_setparam", [143] = "sched_getparam",
        [144] = "sched_setscheduler", [145] = "sched_getscheduler", [146] = "sched_get_priority_max",
        [147] = "sched_get_priority_min", [148] = "sched_rr_get_interval", [149] = "mlock",
        [150] = "munlock", [151] = "mlockall", [152] = "munlockall",
        [153] = "vhangup", [154] = "modify_ldt", [155] = "pivot_root",
        [156] = "_sysctl", [157] = "prctl", [158] = "arch_prctl",
        [159] = "adjtimex", [160] = "setrlimit", [161] = "chroot",
        [162] = "sync", [163] = "acct", [164] = "settimeofday",
        [165] = "mount", [166] = "umount2", [167] = "swapon",
        [168] = "swapoff", [169] = "reboot", [170] = "sethostname",
        [171] = "setdomainname", [172] = "iopl", [173] = "ioperm",
        [174] = "create_module", [175] = "init_module", [176] = "delete_module",
        [177] = "get_kernel_syms", [178] = "query_module", [179] = "quotactl",
        [180] = "nfsservctl", [181] = "getpmsg", [182] = "putpmsg",
        [183] = "afs_syscall", [184] = "tuxcall", [185] = "security",
        [186] = "gettid", [187] = "readahead", [188] = "setxattr",
        [189] = "lsetxattr", [190] = "fsetxattr", [191] = "getxattr",
        [192] = "lgetxattr", [193] = "fgetxattr", [194] = "listxattr",
        [195] = "llistxattr", [196] = "flistxattr", [197] = "removexattr",
        [198] = "lremovexattr", [199] = "fremovexattr", [200] = "tkill",
        [201] = "time", [202] = "futex", [203] = "sched_setaffinity",
        [204] = "sched_getaffinity", [205] = "set_thread_area", [206] = "io_setup",
        [207] = "io_destroy", [208] = "io_getevents", [209] = "io_submit",
        [210] = "io_cancel", [211] = "get_thread_area", [212] = "lookup_dcookie",
        [213] = "epoll_create", [214] = "epoll_ctl_old", [215] = "epoll_wait_old",
        [216] = "remap_file_pages", [217] = "getdents64", [218] = "set_tid_address",
        [219] = "restart_syscall", [220] = "semtimedop", [221] = "fadvise64",
        [222] = "timer_create", [223] = "timer_settime", [224] = "timer_gettime",
        [225] = "timer_getoverrun", [226] = "timer_delete", [227] = "clock_settime",
        [228] = "clock_gettime", [229] = "clock_getres", [230] = "clock_nanosleep",
        [231] = "exit_group", [232] = "epoll_wait", [233] = "epoll_ctl",
        [234] = "tgkill", [235] = "utimes", [236] = "vserver",
        [237] = "mbind", [238] = "set_mempolicy", [239] = "get_mempolicy",
        [240] = "mq_open", [241] = "mq_unlink", [242] = "mq_timedsend",
        [243] = "mq_timedreceive", [244] = "mq_notify", [245] = "mq_getsetattr",
        [246] = "kexec_load", [247] = "waitid", [248] = "add_key",
        [249] = "request_key", [250] = "keyctl", [251] = "ioprio_set",
        [252] = "ioprio_get", [253] = "inotify_init", [254] = "inotify_add_watch",
        [255] = "inotify_rm_watch", [256] = "migrate_pages", [257] = "openat",
        [258] = "mkdirat", [259] = "mknodat", [260] = "fchownat",
        [261] = "futimesat", [262] = "newfstatat", [263] = "unlinkat",
        [264] = "renameat", [265] = "linkat", [266] = "symlinkat",
        [267] = "readlinkat", [268] = "fchmodat", [269] = "faccessat",
        [270] = "pselect6", [271] = "ppoll", [272] = "unshare",
        [273] = "set_robust_list", [274] = "get_robust_list", [275] = "splice",
        [276] = "tee", [277] = "sync_file_range", [278] = "vmsplice",
        [279] = "move_pages", [280] = "utimensat", [281] = "epoll_pwait",
        [282] = "signalfd", [283] = "timerfd_create", [284] = "eventfd",
        [285] = "fallocate", [286] = "timerfd_settime", [287] = "timerfd_gettime",
        [288] = "accept4", [289] = "signalfd4", [290] = "eventfd2",
        [291] = "epoll_create1", [292] = "dup3", [293] = "pipe2",
        [294] = "inotify_init1", [295] = "preadv", [296] = "pwritev",
        [297] = "rt_tgsigqueueinfo", [298] = "perf_event_open", [299] = "recvmmsg",
        [300] = "fanotify_init", [301] = "fanotify_mark", [302] = "prlimit64",
        [303] = "name_to_handle_at", [304] = "open_by_handle_at", [305] = "clock_adjtime",
        [306] = "syncfs", [307] = "sendmmsg", [308] = "setns",
        [309] = "getcpu", [310] = "process_vm_readv", [311] = "process_vm_writev",
        [312] = "kcmp", [313] = "finit_module", [314] = "sched_setattr",
        [315] = "sched_getattr", [316] = "renameat2", [317] = "seccomp",
        [318] = "getrandom", [319] = "memfd_create", [320] = "kexec_file_load",
        [321] = "bpf", [322] = "execveat", [323] = "userfaultfd",
        [324] = "membarrier", [325] = "mlock2", [326] = "copy_file_range",
        [327] = "preadv2", [328] = "pwritev2", [329] = "pkey_mprotect",
        [330] = "pkey_alloc", [331] = "pkey_free", [332] = "statx",
        [333] = "io_pgetevents", [334] = "rseq", [424] = "pidfd_send_signal",
        [425] = "io_uring_setup", [426] = "io_uring_enter", [427] = "io_uring_register",
        [428] = "open_tree", [429] = "move_mount", [430] = "fsopen",
        [431] = "fsconfig", [432] = "fsmount", [433] = "fspick",
        [434] = "pidfd_open", [435] = "clone3", [436] = "close_range",
        [437] = "openat2", [438] = "pidfd_getfd", [439] = "faccessat2",
        [440] = "process_madvise", [441] = "epoll_pwait2", [442] = "mount_setattr",
        [443] = "quotactl_fd", [444] = "landlock_create_ruleset", [445] = "landlock_add_rule",
        [446] = "landlock_restrict_self", [447] = "memfd_secret", [448] = "process_mrelease",
        [449] = "futex_waitv", [450] = "set_mempolicy_home_node", [451] = "cachestat",
        [452] = "fchmodat2", [453] = "map_shadow_stack", [454] = "futex_wake",
        [455] = "futex_wait", [456] = "futex_requeue", [457] = "statmount",
        [458] = "listmount", [459] = "lsm_get_self_attr", [460] = "lsm_set_self_attr",
        [461] = "lsm_list_modules", [462] = "mseal", [463] = "setxattrat",
        [464] = "getxattrat", [465] = "listxattrat", [466] = "removexattrat",
        [467] = "open_tree_attr",
};

static const char *const sc_aarch64[] = {
        [0] = "io_setup", [1] = "io_destroy", [2] = "io_submit",
        [3] = "io_cancel", [4] = "io_getevents", [5] = "setxattr",
        [6] = "lsetxattr", [7] = "fsetxattr", [8] = "getxattr",
        [9] = "lgetxattr", [10] = "fgetxattr", [11] = "listxattr",
        [12] = "llistxattr", [13] = "flistxattr", [14] = "removexattr",
        [15] = "lremovexattr", [16] = "fremovexattr", [17] = "getcwd",
        [18] = "lookup_dcookie", [19] = "eventfd2", [20] = "epoll_create1",
        [21] = "epoll_ctl", [22] = "epoll_pwait", [23] = "dup",
        [24] = "dup3", [25] = "fcntl", [26] = "inotify_init1",
        [27] = "inotify_add_watch", [28] = "inotify_rm_watch", [29] = "ioctl",
        [30] = "ioprio_set", [31] = "ioprio_get", [32] = "flock",
        [33] = "mknodat", [34] = "mkdirat", [35] = "unlinkat",
        [36] = "symlinkat", [37] = "linkat", [38] = "renameat",
        [39] = "umount2", [40] = "mount", [41] = "pivot_root",
        [42] = "nfsservctl", [43] = "statfs", [44] = "fstatfs",
        [45] = "truncate", [46] = "ftruncate", [47] = "fallocate",
        [48] = "faccessat", [49] = "chdir", [50] = "fchdir",
        [51] = "chroot", [52] = "fchmod", [53] = "fchmodat",
        [54] = "fchownat", [55] = "fchown", [56] = "openat",
        [57] = "close", [58] = "vhangup", [59] = "pipe2",
        [60] = "quotactl", [61] = "getdents64", [62] = "lseek",
        [63] = "read", [64] = "write", [65] = "readv",
        [66] = "writev", [67] = "pread64", [68] = "pwrite64",
        [69] = "preadv", [70] = "pwritev", [71] = "sendfile",
        [72] = "pselect6", [73] = "ppoll", [74] = "signalfd4",
        [75] = "vmsplice", [76] = "splice", [77] = "tee",
        [78] = "readlinkat", [79] = "newfstatat", [80] = "fstat",
        [81] = "sync", [82] = "fsync", [83] = "fdatasync",
        [84] = "sync_file_range", [85] = "timerfd_create", [86] = "timerfd_settime",
        [87] = "timerfd_gettime", [88] = "utimensat", [89] = "acct",
        [90] = "capget", [91] = "capset", [92] = "personality",
        [93] = "exit", [94] = "exit_group", [95] = "waitid",
        [96] = "set_tid_address", [97] = "unshare", [98] = "futex",
        [99] = "set_robust_list", [100] = "get_robust_list", [101] = "nanosleep",
        [102] = "getitimer", [103] = "setitimer", [104] = "kexec_load",
        [105] = "init_module", [106] = "delete_module", [107] = "timer_create",
        [108] = "timer_gettime", [109] = "timer_getoverrun", [110] = "timer_settime",
        [111] = "timer_delete", [112] = "clock_settime", [113] = "clock_gettime",
        [114] = "clock_getres", [115] = "clock_nanosleep", [116] = "syslog",
        [117] = "ptrace", [118] = "sched_setparam", [119] = "sched_setscheduler",
        [120] = "sched_getscheduler", [121] = "sched_getparam", [122] = "sched_setaffinity",
        [123] = "sched_getaffinity", [124] = "sched_yield", [125] = "sched_get_priority_max",
        [126] = "sched_get_priority_min", [127] = "sched_rr_get_interval", [128] = "restart_syscall",
        [129] = "kill", [130] = "tkill", [131] = "tgkill",
        [132] = "sigaltstack", [133] = "rt_sigsuspend", [134] = "rt_sigaction",
        [135] = "rt_sigprocmask", [136] = "rt_sigpending", [137] = "rt_sigtimedwait",
        [138] = "rt_sigqueueinfo", [139] = "rt_sigreturn", [140] = "setpriority",
        [141] = "getpriority", [142] = "reboot", [143] = "setregid",
        [144] = "setgid", [145] = "setreuid", [146] = "setuid",
        [147] = "setresuid", [148] = "getresuid", [149] = "setresgid",
        [150] = "getresgid", [151] = "setfsuid", [152] = "setfsgid",
        [153] = "times", [154] = "setpgid", [155] = "getpgid",
        [156] = "getsid", [157] = "setsid", [158] = "getgroups",
        [159] = "setgroups", [160] = "uname", [161] = "sethostname",
        [162] = "setdomainname", [163] = "getrlimit", [164] = "setrlimit",
        [165] = "getrusage", [166] = "umask", [167] = "prctl",
        [168] = "getcpu", [169] = "gettimeofday", [170] = "settimeofday",
        [171] = "adjtimex", [172] = "getpid", [173] = "getppid",
        [174] = "getuid", [175] = "geteuid", [176] = "getgid",
        [177] = "getegid", [178] = "gettid", [179] = "sysinfo",
        [180] = "mq_open", [181] = "mq_unlink", [182] = "mq_timedsend",
        [183] = "mq_timedreceive", [184] = "mq_notify", [185] = "mq_getsetattr",
        [186] = "msgget", [187] = "msgctl", [188] = "msgrcv",
        [189] = "msgsnd", [190] = "semget", [191] = "semctl",
        [192] = "semtimedop", [193] = "semop", [194] = "shmget",
        [195] = "shmctl", [196] = "shmat", [197] = "shmdt",
        [198] = "socket", [199] = "socketpair", [200] = "bind",
        [201] = "listen", [202] = "accept", [203] = "connect",
        [204] = "getsockname", [205] = "getpeername", [206] = "sendto",
        [207] = "recvfrom", [208] = "setsockopt", [209] = "getsockopt",
        [210] = "shutdown", [211] = "sendmsg", [212] = "recvmsg",
        [213] = "readahead", [214] = "brk", [215] = "munmap",
        [216] = "mremap", [217] = "add_key", [218] = "request_key",
        [219] = "keyctl", [220] = "clone", [221] = "execve",
        [222] = "mmap", [223] = "fadvise64", [224] = "swapon",
        [225] = "swapoff", [226] = "mprotect", [227] = "msync",
        [228] = "mlock", [229] = "munlock", [230] = "mlockall",
        [231] = "munlockall", [232] = "mincore", [233] = "madvise",
        [234] = "remap_file_pages", [235] = "mbind", [236] = "get_mempolicy",
        [237] = "set_mempolicy", [238] = "migrate_pages", [239] = "move_pages",
        [240] = "rt_tgsigqueueinfo", [241] = "perf_event_open", [242] = "accept4",
        [243] = "recvmmsg", [260] = "wait4", [261] = "prlimit64",
        [262] = "fanotify_init", [263] = "fanotify_mark", [264] = "name_to_handle_at",
        [265] = "open_by_handle_at", [266] = "clock_adjtime", [267] = "syncfs",
        [268] = "setns", [269] = "sendmmsg", [270] = "process_vm_readv",
        [271] = "process_vm_writev", [272] = "kcmp", [273] = "finit_module",
        [274] = "sched_setattr", [275] = "sched_getattr", [276] = "renameat2",
        [277] = "seccomp", [278] = "getrandom", [279] = "memfd_create",
        [280] = "bpf", [281] = "execveat", [282] = "userfaultfd",
        [283] = "membarrier", [284] = "mlock2", [285] = "copy_file_range",
        [286] = "preadv2", [287] = "pwritev2", [288] = "pkey_mprotect",
        [289] = "pkey_alloc", [290] = "pkey_free", [291] = "statx",
        [292] = "io_pgetevents", [293] = "rseq", [294] = "kexec_file_load",
        [424] = "pidfd_send_signal", [425] = "io_uring_setup", [426] = "io_uring_enter",
        [427] = "io_uring_register", [428] = "open_tree", [429] = "move_mount",
        [430] = "fsopen", [431] = "fsconfig", [432] = "fsmount",
        [433] = "fspick", [434] = "pidfd_open", [435] = "clone3",
        [436] = "close_range", [437] = "openat2", [438] = "pidfd_getfd",
        [439] = "faccessat2", [440] = "process_madvise", [441] = "epoll_pwait2",
        [442] = "mount_setattr", [443] = "quotactl_fd", [444] = "landlock_create_ruleset",
        [445] = "landlock_add_rule", [446] = "landlock_restrict_self", [447] = "memfd_secret",
        [448] = "process_mrelease", [449] = "futex_waitv", [450] = "set_mempolicy_home_node",
        [451] = "cachestat", [452] = "fchmodat2", [453] = "map_shadow_stack",
        [454] = "futex_wake", [455] = "futex_wait", [456] = "futex_requeue",
        [457] = "statmount", [458] = "listmount", [459] = "lsm_get_self_attr",
        [460] = "lsm_set_self_attr", [461] = "lsm_list_modules", [462] = "mseal",
        [463] = "setxattrat", [464] = "getxattrat", [465] = "listxattrat",
        [466] = "removexattrat", [467] = "open_tree_attr",
};

enum diag_arch diag_arch_native(void) {
#if defined(__x86_64__) && !defined(__ILP32__)
        return DIAG_ARCH_X86_64;
#elif defined(__aarch64__) && !defined(__ILP32__)
        return DIAG_ARCH_AARCH64;
#else
        return DIAG_ARCH_UNKNOWN;
#endif
}

const char *diag_arch_name(enum diag_arch arch) {
        switch (arch) {
        case DIAG_ARCH_X86_64:
                return "x86_64";
        case DIAG_ARCH_AARCH64:
                return "aarch64";
        case DIAG_ARCH_UNKNOWN:
                break;
        }
        return "unknown";
}

static const char *const *arch_table(enum diag_arch arch, size_t *ret_n) {
        switch (arch) {
        case DIAG_ARCH_X86_64:
                *ret_n = ELEMENTSOF(sc_x86_64);
                return sc_x86_64;
        case DIAG_ARCH_AARCH64:
                *ret_n = ELEMENTSOF(sc_aarch64);
                return sc_aarch64;
        case DIAG_ARCH_UNKNOWN:
                break;
        }
        *ret_n = 0;
        return NULL;
}

const char *diag_syscall_resumed(const char *wchan) {
        if (!wchan || !*wchan)
                return NULL;
        /* select, pselect6 and ppoll restart as themselves; only poll sleeps
         * here under restart_syscall */
        if (strstr(wchan, "poll_schedule_timeout"))
                return "poll";
        /* futex_wait_queue_me, futex_wait_queue, futex_do_wait as kernels name it */
        if (strncmp(wchan, "futex_", 6) == 0)
                return "futex";
        if (strstr(wchan, "nanosleep"))
                return "nanosleep";
        return NULL;
}

const char *diag_syscall_name(enum diag_arch arch, long nr) {
        size_t n;
        const char *const *t = arch_table(arch, &n);

        if (!t || nr < 0 || (unsigned long) nr >= n)
                return NULL;
        return t[nr];
}

long diag_syscall_number(enum diag_arch arch, const char *name) {
        size_t n;
        const char *const *t = arch_table(arch, &n);

        if (!t || !name)
                return -1;
        for (size_t i = 0; i < n; i++)
                if (t[i] && strcmp(t[i], name) == 0)
                        return (long) i;
        return -1;
}

/* /proc prints hex as "0x%llx"; insist on exactly that so garbage is not half-parsed. */
static int parse_hex(const char *s, uint64_t *ret) {
        unsigned long long v;
        int r;

        if (s[0] != '0' || s[1] != 'x' || !s[2])
                return -EINVAL;
        for (const char *p = s + 2; *p; p++)
                if (!isxdigit((unsigned char) *p))
                        return -EINVAL;
        r = diag_parse_ull(s + 2, 16, &v);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int diag_syscall_parse_proc(const char *text, struct diag_syscall_state *ret) {
        /* The longest valid line is 9 fields of at most 20 characters. */
        char copy[256];
        char *tok[10], *save = NULL, *p;
        struct diag_syscall_state st = {};
        size_t ntok = 0, len;
        long long nr;
        int r;

        if (!text || !ret)
                return -EINVAL;
        len = strlen(text);
        if (len == 0 || len >= sizeof(copy))
                return -EINVAL;
        memcpy(copy, text, len + 1);

        for (p = strtok_r(copy, " \t\n", &save); p; p = strtok_r(NULL, " \t\n", &save)) {
                if (ntok == ELEMENTSOF(tok))
                        return -EINVAL;
                tok[ntok++] = p;
        }
        if (ntok == 0)
                return -EINVAL;

        if (strcmp(tok[0], "running") == 0) {
                if (ntok != 1)
                        return -EINVAL;
                st.kind = DIAG_SC_RUNNING;
                *ret = st;
                return 0;
        }

        r = diag_parse_ll(tok[0], 10, -1, 1L << 30, &nr);
        if (r < 0)
                return -EINVAL;
        st.nr = (long) nr;

        if (nr < 0) {
                if (ntok != 3)
                        return -EINVAL;
                st.kind = DIAG_SC_USER;
                if (parse_hex(tok[1], &st.sp) < 0 || parse_hex(tok[2], &st.pc) < 0)
                        return -EINVAL;
        } else {
                if (ntok != 9)
                        return -EINVAL;
                st.kind = DIAG_SC_IN;
                for (size_t i = 0; i < 6; i++)
                        if (parse_hex(tok[1 + i], &st.args[i]) < 0)
                                return -EINVAL;
                if (parse_hex(tok[7], &st.sp) < 0 || parse_hex(tok[8], &st.pc) < 0)
                        return -EINVAL;
        }
        *ret = st;
        return 0;
}

/* How one argument of a decoded syscall is printed. */
enum argfmt {
        AF_INT,         /* int, signed decimal (fds, timeouts, pids, counts) */
        AF_UINT,        /* unsigned int, decimal */
        AF_LONG,        /* long, signed decimal */
        AF_ULONG,       /* size_t and friends, decimal */
        AF_PTR,         /* pointer: hex, NULL for 0 */
        AF_HEX,         /* opaque value, always hex */
        AF_XFLAGS,      /* flags without names: 0 or hex */
        AF_MSG,         /* MSG_* */
        AF_SOCK,        /* SOCK_CLOEXEC|SOCK_NONBLOCK */
        AF_FLOCK,       /* LOCK_* */
        AF_WAIT4,       /* wait4 options */
        AF_WAITID,      /* waitid options */
        AF_IDTYPE,      /* P_* */
        AF_CLOCK,       /* CLOCK_* */
        AF_TIMER,       /* TIMER_ABSTIME */
        AF_IORING,      /* IORING_ENTER_* */
        AF_IPC,         /* IPC_NOWAIT, MSG_NOERROR, ... */
        AF_BITSET,      /* futex bitset */
        AF_FUTEX2,      /* FUTEX2_* */
};

struct out {
        char *buf;
        size_t size, len;
};

_printf_(2, 3)
static void out_printf(struct out *o, const char *fmt, ...) {
        va_list ap;
        int n;

        /* Once full, keep what fits: the caller gets a truncated, terminated line. */
        if (o->size == 0 || o->len >= o->size - 1)
                return;
        va_start(ap, fmt);
        n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        o->len = MIN(o->len + (size_t) n, o->size - 1);
}

static void out_str(struct out *o, const char *s) {
        out_printf(o, "%s", s);
}

struct flag {
        uint64_t value;
        const char *name;
};

/* Known names joined by '|', anything left over in hex, "0" for nothing. */
static void out_flags(struct out *o, const struct flag *tbl, size_t n, uint64_t v) {
        bool first = true;

        if (v == 0) {
                out_str(o, "0");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                if (tbl[i].value == 0 || (v & tbl[i].value) != tbl[i].value)
                        continue;
                out_printf(o, "%s%s", first ? "" : "|", tbl[i].name);
                v &= ~tbl[i].value;
                first = false;
        }
        if (v)
                out_printf(o, "%s0x%" PRIx64, first ? "" : "|", v);
}

static const char *lookup(const struct flag *tbl, size_t n, uint64_t v) {
        for (size_t i = 0; i < n; i++)
                if (tbl[i].value == v)
                        return tbl[i].name;
        return NULL;
}

static void out_ptr(struct out *o, uint64_t v) {
        if (v == 0)
                out_str(o, "NULL");
        else
                out_printf(o, "0x%" PRIx64, v);
}

/* /proc hands out raw registers; an int argument lives in the low 32 bits. */
static int as_int(uint64_t v) {
        return (int) (uint32_t) v;
}

static const struct flag msg_flags[] = {
        { 0x1, "MSG_OOB" },
        { 0x2, "MSG_PEEK" },
        { 0x4, "MSG_DONTROUTE" },
        { 0x8, "MSG_CTRUNC" },
        { 0x10, "MSG_PROBE" },
        { 0x20, "MSG_TRUNC" },
        { 0x40, "MSG_DONTWAIT" },
        { 0x80, "MSG_EOR" },
        { 0x100, "MSG_WAITALL" },
        { 0x200, "MSG_FIN" },
        { 0x400, "MSG_SYN" },
        { 0x800, "MSG_CONFIRM" },
        { 0x1000, "MSG_RST" },
        { 0x2000, "MSG_ERRQUEUE" },
        { 0x4000, "MSG_NOSIGNAL" },
        { 0x8000, "MSG_MORE" },
        { 0x10000, "MSG_WAITFORONE" },
        { 0x40000, "MSG_BATCH" },
        { 0x4000000, "MSG_ZEROCOPY" },
        { 0x20000000, "MSG_FASTOPEN" },
        { 0x40000000, "MSG_CMSG_CLOEXEC" },
        { 0x80000000, "MSG_CMSG_COMPAT" },
};

/* O_CLOEXEC and O_NONBLOCK have the same values on x86_64 and aarch64. */
static const struct flag sock_flags[] = {
        { 02000000, "SOCK_CLOEXEC" },
        { 04000, "SOCK_NONBLOCK" },
};

static const struct flag flock_ops[] = {
        { 1, "LOCK_SH" },
        { 2, "LOCK_EX" },
        { 4, "LOCK_NB" },
        { 8, "LOCK_UN" },
        { 32, "LOCK_MAND" },
        { 64, "LOCK_READ" },
        { 128, "LOCK_WRITE" },
};

/* In strace's order. */
static const struct flag wait4_flags[] = {
        { 0x1, "WNOHANG" },
        { 0x4, "WEXITED" },
        { 0x2, "WUNTRACED" },
        { 0x8, "WCONTINUED" },
        { 0x1000000, "WNOWAIT" },
        { 0x20000000, "__WNOTHREAD" },
        { 0x40000000, "__WALL" },
        { 0x80000000, "__WCLONE" },
};

/* Same bits; for waitid 2 means WSTOPPED, as strace prints it. */
static const struct flag waitid_flags[] = {
        { 0x1, "WNOHANG" },
        { 0x4, "WEXITED" },
        { 0x2, "WSTOPPED" },
        { 0x8, "WCONTINUED" },
        { 0x1000000, "WNOWAIT" },
        { 0x20000000, "__WNOTHREAD" },
        { 0x40000000, "__WALL" },
        { 0x80000000, "__WCLONE" },
};

static const struct flag idtypes[] = {
        { 0, "P_ALL" },
        { 1, "P_PID" },
        { 2, "P_PGID" },
        { 3, "P_PIDFD" },
};

static const struct flag clocks[] = {
        { 0, "CLOCK_REALTIME" },
        { 1, "CLOCK_MONOTONIC" },
        { 2, "CLOCK_PROCESS_CPUTIME_ID" },
        { 3, "CLOCK_THREAD_CPUTIME_ID" },
        { 4, "CLOCK_MONOTONIC_RAW" },
        { 5, "CLOCK_REALTIME_COARSE" },
        { 6, "CLOCK_MONOTONIC_COARSE" },
        { 7, "CLOCK_BOOTTIME" },
        { 8, "CLOCK_REALTIME_ALARM" },
        { 9, "CLOCK_BOOTTIME_ALARM" },
        { 11, "CLOCK_TAI" },
};

static const struct flag timer_flags[] = {
        { 1, "TIMER_ABSTIME" },
};

static const struct flag ioring_flags[] = {
        { 0x1, "IORING_ENTER_GETEVENTS" },
        { 0x2, "IORING_ENTER_SQ_WAKEUP" },
        { 0x4, "IORING_ENTER_SQ_WAIT" },
        { 0x8, "IORING_ENTER_EXT_ARG" },
        { 0x10, "IORING_ENTER_REGISTERED_RING" },
        { 0x20, "IORING_ENTER_ABS_TIMER" },
        { 0x40, "IORING_ENTER_EXT_ARG_REG" },
        { 0x80, "IORING_ENTER_NO_IOWAIT" },
};

static const struct flag ipc_flags[] = {
        { 04000, "IPC_NOWAIT" },
        { 010000, "MSG_NOERROR" },
        { 020000, "MSG_EXCEPT" },
        { 040000, "MSG_COPY" },
};

static const struct flag futex2_flags[] = {
        { 0x04, "FUTEX2_NUMA" },
        { 0x08, "FUTEX2_MPOL" },
        { 0x80, "FUTEX2_PRIVATE" },
};

static const char *const futex2_sizes[] = {
        "FUTEX2_SIZE_U8", "FUTEX2_SIZE_U16", "FUTEX2_SIZE_U32", "FUTEX2_SIZE_U64",
};

#define FUTEX_BITSET_MATCH_ANY_VAL UINT32_C(0xffffffff)

static void out_bitset(struct out *o, uint64_t v) {
        /* futex() takes a u32 bitset, futex_wait() an unsigned long: both mean "any" when all ones. */
        if (v == FUTEX_BITSET_MATCH_ANY_VAL || v == UINT64_MAX)
                out_str(o, "FUTEX_BITSET_MATCH_ANY");
        else
                out_printf(o, "0x%" PRIx64, v);
}

static void out_named(struct out *o, const struct flag *tbl, size_t n, uint64_t v) {
        const char *s = lookup(tbl, n, v);

        if (s)
                out_str(o, s);
        else
                out_printf(o, "%d", as_int(v));
}

static void out_arg(struct out *o, enum argfmt f, uint64_t v) {
        switch (f) {
        case AF_INT:
                out_printf(o, "%d", as_int(v));
                break;
        case AF_UINT:
                out_printf(o, "%u", (unsigned) (uint32_t) v);
                break;
        case AF_LONG:
                out_printf(o, "%" PRId64, (int64_t) v);
                break;
        case AF_ULONG:
                out_printf(o, "%" PRIu64, v);
                break;
        case AF_PTR:
                out_ptr(o, v);
                break;
        case AF_HEX:
                out_printf(o, "0x%" PRIx64, v);
                break;
        case AF_XFLAGS:
                out_flags(o, NULL, 0, v);
                break;
        case AF_MSG:
                out_flags(o, msg_flags, ELEMENTSOF(msg_flags), (uint32_t) v);
                break;
        case AF_SOCK:
                out_flags(o, sock_flags, ELEMENTSOF(sock_flags), (uint32_t) v);
                break;
        case AF_FLOCK:
                out_flags(o, flock_ops, ELEMENTSOF(flock_ops), (uint32_t) v);
                break;
        case AF_WAIT4:
                out_flags(o, wait4_flags, ELEMENTSOF(wait4_flags), (uint32_t) v);
                break;
        case AF_WAITID:
                out_flags(o, waitid_flags, ELEMENTSOF(waitid_flags), (uint32_t) v);
                break;
        case AF_IDTYPE:
                out_named(o, idtypes, ELEMENTSOF(idtypes), (uint32_t) v);
                break;
        case AF_CLOCK:
                /* Negative ids are per-process/thread CPU clocks: print as numbers. */
                out_named(o, clocks, ELEMENTSOF(clocks), (uint32_t) v);
                break;
        case AF_TIMER:
                out_flags(o, timer_flags, ELEMENTSOF(timer_flags), (uint32_t) v);
                break;
        case AF_IORING:
                out_flags(o, ioring_flags, ELEMENTSOF(ioring_flags), (uint32_t) v);
                break;
        case AF_IPC:
                out_flags(o, ipc_flags, ELEMENTSOF(ipc_flags), (uint32_t) v);
                break;
        case AF_BITSET:
                out_bitset(o, v);
                break;
        case AF_FUTEX2:
                out_str(o, futex2_sizes[v & 3]);
                v &= ~UINT64_C(3);
                if (v) {
                        out_str(o, "|");
                        out_flags(o, futex2_flags, ELEMENTSOF(futex2_flags), v);
                }
                break;
        }
}

/*
 * futex(2) commands. Written out rather than taken from the build host's headers: the
 * values are the same on both arches and the host headers may predate newer ones.
 * The argument list strace prints depends on the command.
 */
enum {
        FCMD_WAIT = 0,
        FCMD_WAKE = 1,
        FCMD_FD = 2,
        FCMD_REQUEUE = 3,
        FCMD_CMP_REQUEUE = 4,
        FCMD_WAKE_OP = 5,
        FCMD_LOCK_PI = 6,
        FCMD_UNLOCK_PI = 7,
        FCMD_TRYLOCK_PI = 8,
        FCMD_WAIT_BITSET = 9,
        FCMD_WAKE_BITSET = 10,
        FCMD_WAIT_REQUEUE_PI = 11,
        FCMD_CMP_REQUEUE_PI = 12,
        FCMD_LOCK_PI2 = 13,
};
#define FUTEX_PRIVATE_BIT 128u
#define FUTEX_REALTIME_BIT 256u

static const char *const futex_cmds[] = {
        [FCMD_WAIT] = "FUTEX_WAIT",
        [FCMD_WAKE] = "FUTEX_WAKE",
        [FCMD_FD] = "FUTEX_FD",
        [FCMD_REQUEUE] = "FUTEX_REQUEUE",
        [FCMD_CMP_REQUEUE] = "FUTEX_CMP_REQUEUE",
        [FCMD_WAKE_OP] = "FUTEX_WAKE_OP",
        [FCMD_LOCK_PI] = "FUTEX_LOCK_PI",
        [FCMD_UNLOCK_PI] = "FUTEX_UNLOCK_PI",
        [FCMD_TRYLOCK_PI] = "FUTEX_TRYLOCK_PI",
        [FCMD_WAIT_BITSET] = "FUTEX_WAIT_BITSET",
        [FCMD_WAKE_BITSET] = "FUTEX_WAKE_BITSET",
        [FCMD_WAIT_REQUEUE_PI] = "FUTEX_WAIT_REQUEUE_PI",
        [FCMD_CMP_REQUEUE_PI] = "FUTEX_CMP_REQUEUE_PI",
        [FCMD_LOCK_PI2] = "FUTEX_LOCK_PI2",
};

static const char *const futex_wake_ops[] = {
        "FUTEX_OP_SET", "FUTEX_OP_ADD", "FUTEX_OP_OR", "FUTEX_OP_ANDN", "FUTEX_OP_XOR",
};

static const char *const futex_wake_cmps[] = {
        "FUTEX_OP_CMP_EQ", "FUTEX_OP_CMP_NE", "FUTEX_OP_CMP_LT",
        "FUTEX_OP_CMP_LE", "FUTEX_OP_CMP_GT", "FUTEX_OP_CMP_GE",
};

static void out_futex_wake_op(struct out *o, uint32_t v) {
        unsigned op = (v >> 28) & 7, cmp = (v >> 24) & 15;

        if ((v >> 28) & 8)
                out_str(o, "FUTEX_OP_OPARG_SHIFT<<28|");
        if (op < ELEMENTSOF(futex_wake_ops))
                out_printf(o, "%s<<28", futex_wake_ops[op]);
        else
                out_printf(o, "0x%x<<28", op);
        out_printf(o, "|%u<<12|", (v >> 12) & 0xfff);
        if (cmp < ELEMENTSOF(futex_wake_cmps))
                out_printf(o, "%s<<24", futex_wake_cmps[cmp]);
        else
                out_printf(o, "0x%x<<24", cmp);
        out_printf(o, "|0x%x", v & 0xfff);
}

static void format_futex(struct out *o, const uint64_t *a) {
        uint32_t op = (uint32_t) a[1], cmd = op & 127, rest = op & ~(127u | FUTEX_PRIVATE_BIT);
        uint32_t val = (uint32_t) a[2];

        out_printf(o, "futex(");
        out_ptr(o, a[0]);
        out_str(o, ", ");
        if (cmd < ELEMENTSOF(futex_cmds)) {
                out_printf(o, "%s%s", futex_cmds[cmd], op & FUTEX_PRIVATE_BIT ? "_PRIVATE" : "");
                if (rest & FUTEX_REALTIME_BIT)
                        out_str(o, "|FUTEX_CLOCK_REALTIME");
                rest &= ~FUTEX_REALTIME_BIT;
                if (rest)
                        out_printf(o, "|0x%x", rest);
        } else
                out_printf(o, "0x%x", op);

        switch (cmd) {
        case FCMD_WAIT:
                out_printf(o, ", %u, ", val);
                out_ptr(o, a[3]);
                break;
        case FCMD_WAKE:
        case FCMD_FD:
                out_printf(o, ", %u", val);
                break;
        case FCMD_REQUEUE:
                out_printf(o, ", %u, %u, ", val, (uint32_t) a[3]);
                out_ptr(o, a[4]);
                break;
        case FCMD_CMP_REQUEUE:
        case FCMD_CMP_REQUEUE_PI:
                out_printf(o, ", %u, %u, ", val, (uint32_t) a[3]);
                out_ptr(o, a[4]);
                out_printf(o, ", %u", (uint32_t) a[5]);
                break;
        case FCMD_WAKE_OP:
                out_printf(o, ", %u, %u, ", val, (uint32_t) a[3]);
                out_ptr(o, a[4]);
                out_str(o, ", ");
                out_futex_wake_op(o, (uint32_t) a[5]);
                break;
        case FCMD_LOCK_PI:
        case FCMD_LOCK_PI2:
                out_str(o, ", ");
                out_ptr(o, a[3]);
                break;
        case FCMD_UNLOCK_PI:
        case FCMD_TRYLOCK_PI:
                break;
        case FCMD_WAIT_BITSET:
                out_printf(o, ", %u, ", val);
                out_ptr(o, a[3]);
                out_str(o, ", ");
                out_bitset(o, (uint32_t) a[5]);
                break;
        case FCMD_WAKE_BITSET:
                out_printf(o, ", %u, ", val);
                out_bitset(o, (uint32_t) a[5]);
                break;
        case FCMD_WAIT_REQUEUE_PI:
                out_printf(o, ", %u, ", val);
                out_ptr(o, a[3]);
                out_str(o, ", ");
                out_ptr(o, a[4]);
                break;
        default:
                out_printf(o, ", %u, 0x%" PRIx64 ", 0x%" PRIx64 ", 0x%x",
                           val, a[3], a[4], (uint32_t) a[5]);
                break;
        }
        out_str(o, ")");
}

/* fcntl commands; identical on x86_64 and aarch64 (F_GETLK64 == F_GETLK on 64-bit). */
enum fcntl_arg {
        FA_NONE,        /* strace prints no third argument */
        FA_INT,
        FA_PTR,
        FA_HEX,
        FA_FD_FLAGS,
        FA_LEASE,
};

struct fcntl_cmd {
        int cmd;
        const char *name;
        enum fcntl_arg arg;
};

#define FCNTL_SETLKW 7
#define FCNTL_OFD_SETLKW 38

static const struct fcntl_cmd fcntl_cmds[] = {
        { 0, "F_DUPFD", FA_INT },
        { 1, "F_GETFD", FA_NONE },
        { 2, "F_SETFD", FA_FD_FLAGS },
        { 3, "F_GETFL", FA_NONE },
        { 4, "F_SETFL", FA_HEX },
        { 5, "F_GETLK", FA_PTR },
        { 6, "F_SETLK", FA_PTR },
        { FCNTL_SETLKW, "F_SETLKW", FA_PTR },
        { 8, "F_SETOWN", FA_INT },
        { 9, "F_GETOWN", FA_NONE },
        { 10, "F_SETSIG", FA_INT },
        { 11, "F_GETSIG", FA_NONE },
        { 15, "F_SETOWN_EX", FA_PTR },
        { 16, "F_GETOWN_EX", FA_PTR },
        { 17, "F_GETOWNER_UIDS", FA_PTR },
        { 36, "F_OFD_GETLK", FA_PTR },
        { 37, "F_OFD_SETLK", FA_PTR },
        { FCNTL_OFD_SETLKW, "F_OFD_SETLKW", FA_PTR },
        { 1024, "F_SETLEASE", FA_LEASE },
        { 1025, "F_GETLEASE", FA_NONE },
        { 1026, "F_NOTIFY", FA_HEX },
        { 1027, "F_DUPFD_QUERY", FA_INT },
        { 1028, "F_CREATED_QUERY", FA_NONE },
        { 1029, "F_CANCELLK", FA_NONE },
        { 1030, "F_DUPFD_CLOEXEC", FA_INT },
        { 1031, "F_SETPIPE_SZ", FA_INT },
        { 1032, "F_GETPIPE_SZ", FA_NONE },
        { 1033, "F_ADD_SEALS", FA_HEX },
        { 1034, "F_GET_SEALS", FA_NONE },
        { 1035, "F_GET_RW_HINT", FA_PTR },
        { 1036, "F_SET_RW_HINT", FA_PTR },
        { 1037, "F_GET_FILE_RW_HINT", FA_PTR },
        { 1038, "F_SET_FILE_RW_HINT", FA_PTR },
};

static const struct flag fd_flags[] = {
        { 1, "FD_CLOEXEC" },
};

static const struct flag lease_types[] = {
        { 0, "F_RDLCK" },
        { 1, "F_WRLCK" },
        { 2, "F_UNLCK" },
};

static void format_fcntl(struct out *o, const uint64_t *a) {
        int cmd = as_int(a[1]);
        const struct fcntl_cmd *c = NULL;

        for (size_t i = 0; i < ELEMENTSOF(fcntl_cmds); i++)
                if (fcntl_cmds[i].cmd == cmd) {
                        c = &fcntl_cmds[i];
                        break;
                }

        out_printf(o, "fcntl(%d, ", as_int(a[0]));
        if (!c) {
                out_printf(o, "0x%x, 0x%" PRIx64 ")", (unsigned) cmd, a[2]);
                return;
        }
        out_str(o, c->name);
        switch (c->arg) {
        case FA_NONE:
                break;
        case FA_INT:
                out_printf(o, ", %d", as_int(a[2]));
                break;
        case FA_PTR:
                out_str(o, ", ");
                out_ptr(o, a[2]);
                break;
        case FA_HEX:
                out_printf(o, ", 0x%" PRIx64, a[2]);
                break;
        case FA_FD_FLAGS:
                out_str(o, ", ");
                out_flags(o, fd_flags, ELEMENTSOF(fd_flags), (uint32_t) a[2]);
                break;
        case FA_LEASE:
                out_str(o, ", ");
                out_named(o, lease_types, ELEMENTSOF(lease_types), (uint32_t) a[2]);
                break;
        }
        out_str(o, ")");
}

/* The blocking syscalls we know how to classify and decode, by name (arch neutral). */
struct sc_desc {
        const char *name;
        enum diag_sc_class class;
        void (*format)(struct out *o, const uint64_t *args);    /* custom decoder, or NULL */
        unsigned nargs;
        enum argfmt args[6];
};

static const struct sc_desc sc_descs[] = {
        { "futex", DIAG_SCC_FUTEX, format_futex, 0, {} },
        { "futex_waitv", DIAG_SCC_FUTEX, NULL, 5, { AF_PTR, AF_UINT, AF_XFLAGS, AF_PTR, AF_CLOCK } },
        { "futex_wait", DIAG_SCC_FUTEX, NULL, 6, { AF_PTR, AF_ULONG, AF_BITSET, AF_FUTEX2, AF_PTR, AF_CLOCK } },
        { "futex_wake", DIAG_SCC_OTHER, NULL, 4, { AF_PTR, AF_BITSET, AF_INT, AF_FUTEX2 } },
        { "futex_requeue", DIAG_SCC_OTHER, NULL, 4, { AF_PTR, AF_XFLAGS, AF_INT, AF_INT } },

        { "read", DIAG_SCC_FD_READ, NULL, 3, { AF_INT, AF_PTR, AF_ULONG } },
        { "readv", DIAG_SCC_FD_READ, NULL, 3, { AF_INT, AF_PTR, AF_INT } },
        { "pread64", DIAG_SCC_FD_READ, NULL, 4, { AF_INT, AF_PTR, AF_ULONG, AF_LONG } },
        { "recvfrom", DIAG_SCC_FD_READ, NULL, 6, { AF_INT, AF_PTR, AF_ULONG, AF_MSG, AF_PTR, AF_PTR } },
        { "recvmsg", DIAG_SCC_FD_READ, NULL, 3, { AF_INT, AF_PTR, AF_MSG } },
        { "recvmmsg", DIAG_SCC_FD_READ, NULL, 5, { AF_INT, AF_PTR, AF_UINT, AF_MSG, AF_PTR } },

        { "write", DIAG_SCC_FD_WRITE, NULL, 3, { AF_INT, AF_PTR, AF_ULONG } },
        { "writev", DIAG_SCC_FD_WRITE, NULL, 3, { AF_INT, AF_PTR, AF_INT } },
        { "pwrite64", DIAG_SCC_FD_WRITE, NULL, 4, { AF_INT, AF_PTR, AF_ULONG, AF_LONG } },
        { "sendto", DIAG_SCC_FD_WRITE, NULL, 6, { AF_INT, AF_PTR, AF_ULONG, AF_MSG, AF_PTR, AF_INT } },
        { "sendmsg", DIAG_SCC_FD_WRITE, NULL, 3, { AF_INT, AF_PTR, AF_MSG } },
        { "sendmmsg", DIAG_SCC_FD_WRITE, NULL, 4, { AF_INT, AF_PTR, AF_UINT, AF_MSG } },

        { "poll", DIAG_SCC_POLL, NULL, 3, { AF_PTR, AF_UINT, AF_INT } },
        { "ppoll", DIAG_SCC_POLL, NULL, 5, { AF_PTR, AF_UINT, AF_PTR, AF_PTR, AF_ULONG } },
        { "select", DIAG_SCC_POLL, NULL, 5, { AF_INT, AF_PTR, AF_PTR, AF_PTR, AF_PTR } },
        { "pselect6", DIAG_SCC_POLL, NULL, 6, { AF_INT, AF_PTR, AF_PTR, AF_PTR, AF_PTR, AF_PTR } },

        { "epoll_wait", DIAG_SCC_EPOLL, NULL, 4, { AF_INT, AF_PTR, AF_INT, AF_INT } },
        { "epoll_pwait", DIAG_SCC_EPOLL, NULL, 6, { AF_INT, AF_PTR, AF_INT, AF_INT, AF_PTR, AF_ULONG } },
        { "epoll_pwait2", DIAG_SCC_EPOLL, NULL, 6, { AF_INT, AF_PTR, AF_INT, AF_PTR, AF_PTR, AF_ULONG } },

        { "accept", DIAG_SCC_ACCEPT, NULL, 3, { AF_INT, AF_PTR, AF_PTR } },
        { "accept4", DIAG_SCC_ACCEPT, NULL, 4, { AF_INT, AF_PTR, AF_PTR, AF_SOCK } },
        { "connect", DIAG_SCC_CONNECT, NULL, 3, { AF_INT, AF_PTR, AF_INT } },

        { "flock", DIAG_SCC_FLOCK, NULL, 2, { AF_INT, AF_FLOCK } },
        /* Class depends on the command: see diag_syscall_class(). */
        { "fcntl", DIAG_SCC_FCNTL_LOCK, format_fcntl, 0, {} },

        { "wait4", DIAG_SCC_WAIT_CHILD, NULL, 4, { AF_INT, AF_PTR, AF_WAIT4, AF_PTR } },
        { "waitid", DIAG_SCC_WAIT_CHILD, NULL, 5, { AF_IDTYPE, AF_INT, AF_PTR, AF_WAITID, AF_PTR } },

        { "nanosleep", DIAG_SCC_SLEEP, NULL, 2, { AF_PTR, AF_PTR } },
        { "clock_nanosleep", DIAG_SCC_SLEEP, NULL, 4, { AF_CLOCK, AF_TIMER, AF_PTR, AF_PTR } },

        { "pause", DIAG_SCC_PAUSE, NULL, 0, {} },
        { "rt_sigsuspend", DIAG_SCC_PAUSE, NULL, 2, { AF_PTR, AF_ULONG } },
        { "rt_sigtimedwait", DIAG_SCC_SIGWAIT, NULL, 4, { AF_PTR, AF_PTR, AF_PTR, AF_ULONG } },

        { "io_getevents", DIAG_SCC_AIO, NULL, 5, { AF_HEX, AF_LONG, AF_LONG, AF_PTR, AF_PTR } },
        { "io_pgetevents", DIAG_SCC_AIO, NULL, 6, { AF_HEX, AF_LONG, AF_LONG, AF_PTR, AF_PTR, AF_PTR } },
        { "io_uring_enter", DIAG_SCC_AIO, NULL, 6, { AF_INT, AF_UINT, AF_UINT, AF_IORING, AF_PTR, AF_ULONG } },

        { "msgrcv", DIAG_SCC_IPC, NULL, 5, { AF_INT, AF_PTR, AF_ULONG, AF_LONG, AF_IPC } },
        { "msgsnd", DIAG_SCC_IPC, NULL, 4, { AF_INT, AF_PTR, AF_ULONG, AF_IPC } },
        { "semop", DIAG_SCC_IPC, NULL, 3, { AF_INT, AF_PTR, AF_UINT } },
        { "semtimedop", DIAG_SCC_IPC, NULL, 4, { AF_INT, AF_PTR, AF_UINT, AF_PTR } },
        { "mq_timedreceive", DIAG_SCC_IPC, NULL, 5, { AF_INT, AF_PTR, AF_ULONG, AF_PTR, AF_PTR } },
        { "mq_timedsend", DIAG_SCC_IPC, NULL, 5, { AF_INT, AF_PTR, AF_ULONG, AF_UINT, AF_PTR } },
};

static const struct sc_desc *sc_desc_find(enum diag_arch arch, const struct diag_syscall_state *sc) {
        const char *name;

        if (!sc || sc->kind != DIAG_SC_IN)
                return NULL;
        name = diag_syscall_name(arch, sc->nr);
        if (!name)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(sc_descs); i++)
                if (strcmp(sc_descs[i].name, name) == 0)
                        return &sc_descs[i];
        return NULL;
}

enum diag_sc_class diag_syscall_class(enum diag_arch arch, const struct diag_syscall_state *sc) {
        const struct sc_desc *d = sc_desc_find(arch, sc);
        int cmd;

        if (!d)
                return DIAG_SCC_OTHER;
        if (d->class == DIAG_SCC_FCNTL_LOCK) {
                /* Only the waiting variants block; F_SETLK/F_OFD_SETLK fail at once. */
                cmd = as_int(sc->args[1]);
                return cmd == FCNTL_SETLKW || cmd == FCNTL_OFD_SETLKW ? DIAG_SCC_FCNTL_LOCK : DIAG_SCC_OTHER;
        }
        return d->class;
}

const char *diag_sc_class_name(enum diag_sc_class c) {
        static const char *const names[] = {
                [DIAG_SCC_OTHER] = "other",
                [DIAG_SCC_FUTEX] = "futex",
                [DIAG_SCC_FD_READ] = "fd_read",
                [DIAG_SCC_FD_WRITE] = "fd_write",
                [DIAG_SCC_POLL] = "poll",
                [DIAG_SCC_EPOLL] = "epoll",
                [DIAG_SCC_ACCEPT] = "accept",
                [DIAG_SCC_CONNECT] = "connect",
                [DIAG_SCC_FLOCK] = "flock",
                [DIAG_SCC_FCNTL_LOCK] = "fcntl_lock",
                [DIAG_SCC_WAIT_CHILD] = "wait_child",
                [DIAG_SCC_SLEEP] = "sleep",
                [DIAG_SCC_PAUSE] = "pause",
                [DIAG_SCC_SIGWAIT] = "sigwait",
                [DIAG_SCC_AIO] = "aio",
                [DIAG_SCC_IPC] = "ipc",
        };

        if ((unsigned) c >= ELEMENTSOF(names) || !names[c])
                return "unknown";
        return names[c];
}

int diag_syscall_fd(enum diag_arch arch, const struct diag_syscall_state *sc) {
        switch (diag_syscall_class(arch, sc)) {
        case DIAG_SCC_FD_READ:
        case DIAG_SCC_FD_WRITE:
        case DIAG_SCC_ACCEPT:
        case DIAG_SCC_CONNECT:
        case DIAG_SCC_FLOCK:
        case DIAG_SCC_FCNTL_LOCK:
                /* Every one of these takes its fd first. */
                return as_int(sc->args[0]);
        default:
                return -1;
        }
}

char *diag_syscall_format(enum diag_arch arch, const struct diag_syscall_state *sc,
                          char *buf, size_t size) {
        struct out o = { .buf = buf, .size = size };
        const struct sc_desc *d;
        const char *name;

        if (!buf || size == 0)
                return buf;
        buf[0] = '\0';
        if (!sc) {
                out_str(&o, "?");
                return buf;
        }

        switch (sc->kind) {
        case DIAG_SC_RUNNING:
                out_str(&o, "running");
                return buf;
        case DIAG_SC_USER:
                out_str(&o, "-");
                return buf;
        case DIAG_SC_IN:
                break;
        case DIAG_SC_UNKNOWN:
        default:
                out_str(&o, "?");
                return buf;
        }

        d = sc_desc_find(arch, sc);
        if (d && d->format) {
                d->format(&o, sc->args);
                return buf;
        }
        if (d) {
                out_printf(&o, "%s(", d->name);
                for (unsigned i = 0; i < d->nargs; i++) {
                        if (i > 0)
                                out_str(&o, ", ");
                        out_arg(&o, d->args[i], sc->args[i]);
                }
                out_str(&o, ")");
                return buf;
        }

        /* Not a blocking call we decode: just the raw registers. */
        name = diag_syscall_name(arch, sc->nr);
        /* A sleep with a timeout that was interrupted by a stop (any tracer's,
         * or SIGSTOP/SIGCONT) continues here; its registers no longer say what
         * the original call was. */
        if (name && strcmp(name, "restart_syscall") == 0) {
                out_str(&o, "restart_syscall(<... resuming interrupted call ...>)");
                return buf;
        }
        if (name)
                out_printf(&o, "%s(", name);
        else
                out_printf(&o, "syscall_%ld(", sc->nr);
        for (unsigned i = 0; i < 6; i++)
                out_printf(&o, "%s0x%" PRIx64, i ? ", " : "", sc->args[i]);
        out_str(&o, ")");
        return buf;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diag-snap part "host": the machine as a whole, from two readings rate_ms apart
 * (rates are their difference): load, CPU split, memory, vmstat counters, PSI,
 * disks, network interfaces, TCP counters, uptime, kernel, boot id, host name.
 * Reads /proc and /sys only; writes host.txt and host.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "diag/kstat.h"
#include "diag/snap.h"
#include "diag/util.h"

/* Memory available below this share of MemTotal is a warning, below the second critical. */
#define HOST_MEM_AVAIL_WARN_PCT 10.0
#define HOST_MEM_AVAIL_CRIT_PCT 5.0
/* PSI memory "full" avg10 above this: tasks stall on memory a tenth of the time. */
#define HOST_PSI_MEM_FULL_PCT 10.0
/* PSI io "some" avg10 above this: half the time some task waits on IO. */
#define HOST_PSI_IO_SOME_PCT 50.0
/* Major faults per second at or above this, with available memory under the warning
 * share, is read as page-cache thrash (file pages read back as soon as dropped). */
#define HOST_THRASH_MAJFLT_PER_S 1000.0
/* A disk busier than this share of the window (io_ticks). */
#define HOST_DISK_BUSY_PCT 90.0
/* CPU busy (all but idle and iowait) above this share, or steal above the second. */
#define HOST_CPU_BUSY_PCT 90.0
#define HOST_CPU_STEAL_PCT 10.0

#define HOST_MAX_DISKS 256
#define HOST_MAX_IFACES 256

static const char *const cpu_fields[] = { "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal" };
#define NCPU_FIELDS ELEMENTSOF(cpu_fields)

static const char *const vm_fields[] = {
        "pgmajfault", "pgfault", "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
        "pswpin", "pswpout", "oom_kill", "pgpgin", "pgpgout", "allocstall_normal", "allocstall_movable",
};
#define NVM_FIELDS ELEMENTSOF(vm_fields)

static const char *const mem_fields[] = {
        "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active", "Inactive",
        "Active(file)", "Inactive(file)", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem",
        "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "SwapTotal", "SwapFree",
        "CommitLimit", "Committed_AS", "HugePages_Total", "HugePages_Free", "Hugepagesize",
};
#define NMEM_FIELDS ELEMENTSOF(mem_fields)

/* TCP counters: from /proc/net/snmp's "Tcp:" and /proc/net/netstat's "TcpExt:". */
static const char *const tcp_fields[] = {
        "Tcp:ActiveOpens", "Tcp:PassiveOpens", "Tcp:AttemptFails", "Tcp:EstabResets", "Tcp:CurrEstab",
        "Tcp:InSegs", "Tcp:OutSegs", "Tcp:RetransSegs", "Tcp:InErrs", "Tcp:OutRsts",
        "TcpExt:ListenOverflows", "TcpExt:ListenDrops", "TcpExt:TCPTimeouts", "TcpExt:TCPSynRetrans",
        "TcpExt:TCPLostRetransmit", "TcpExt:TCPAbortOnTimeout",
};
#define NTCP_FIELDS ELEMENTSOF(tcp_fields)

struct reading {
        uint64_t t_ns;
        bool have_cpu;
        uint64_t cpu[NCPU_FIELDS];
        bool have_vm[NVM_FIELDS];
        uint64_t vm[NVM_FIELDS];
        bool have_tcp[NTCP_FIELDS];
        uint64_t tcp[NTCP_FIELDS];
        struct diag_diskstat *disks;
        size_t ndisks;
        struct diag_netdev *ifaces;
        size_t nifaces;
};

static void reading_free(struct reading *r) {
        free(r->disks);
        free(r->ifaces);
}

static int field_index(const char *const *names, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], name) == 0)
                        return (int) i;
        return -1;
}

static uint64_t parse_u64(const char *s) {
        unsigned long long v;
        return diag_parse_ull(s, 10, &v) == 0 ? v : 0;
}

static void read_cpu(struct reading *r) {
        char buf[512];
        ssize_t n = diag_read_small_at(AT_FDCWD, "/proc/stat", buf, sizeof buf);
        char *save = NULL, *tok;
        size_t i = 0;

        if (n <= 0 || strncmp(buf, "cpu ", 4) != 0)
                return;
        buf[strcspn(buf, "\n")] = 0;
        tok = strtok_r(buf + 4, " ", &save);
        for (; tok && i < NCPU_FIELDS; tok = strtok_r(NULL, " ", &save))
                r->cpu[i++] = parse_u64(tok);
        r->have_cpu = i >= 4;
}

static void read_vmstat(struct reading *r) {
        _cleanup_free_ char *buf = NULL;
        char *save = NULL;

        if (diag_read_file_at(AT_FDCWD, "/proc/vmstat", 1 << 20, &buf, NULL) < 0)
                return;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *sp = strchr(line, ' ');
                int i;

                if (!sp)
                        continue;
                *sp = 0;
                i = field_index(vm_fields, NVM_FIELDS, line);
                if (i >= 0) {
                        r->vm[i] = parse_u64(sp + 1);
                        r->have_vm[i] = true;
                }
        }
}

/* /proc/net/snmp and /proc/net/netstat: a header line of names, then a line of values. */
static void read_snmp_file(struct reading *r, const char *path) {
        _cleanup_free_ char *buf = NULL;
        char *lines[2] = { NULL, NULL }, *save = NULL;

        if (diag_read_file_at(AT_FDCWD, path, 1 << 20, &buf, NULL) < 0)
                return;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *s1 = NULL, *s2 = NULL, *prefix, *name, *val;
                char key[96];

                if (!lines[0]) {
                        lines[0] = line;
                        continue;
                }
                lines[1] = line;
                prefix = strtok_r(lines[0], " ", &s1);
                (void) strtok_r(lines[1], " ", &s2);
                lines[0] = NULL;
                if (!prefix || (strcmp(prefix, "Tcp:") != 0 && strcmp(prefix, "TcpExt:") != 0))
                        continue;
                while ((name = strtok_r(NULL, " ", &s1)) && (val = strtok_r(NULL, " ", &s2))) {
                        int i;

                        snprintf(key, sizeof key, "%s%s", prefix, name);
                        i = field_index(tcp_fields, NTCP_FIELDS, key);
                        if (i >= 0) {
                                long long v;
                                /* MaxConn is -1; the counters we keep are not negative */
                                r->tcp[i] = diag_parse_ll(val, 10, 0, INT64_MAX, &v) == 0 ? (uint64_t) v : 0;
                                r->have_tcp[i] = true;
                        }
                }
        }
}

/* A whole disk (listed in /sys/block), not a partition. */
static bool is_whole_disk(const char *name) {
        char path[96];

        snprintf(path, sizeof path, "/sys/block/%s", name);
        for (char *p = path + strlen("/sys/block/"); *p; p++)
                if (*p == '/')
                        *p = '!';
        return access(path, F_OK) == 0;
}

/* One line of /proc/diskstats; false to stop. */
static bool disk_line(struct reading *r, char *line, size_t *alloc) {
        struct diag_diskstat d;

        if (r->ndisks >= HOST_MAX_DISKS)
                return false;
        if (diag_diskstats_line(line, &d) < 0 || !is_whole_disk(d.name))
                return true;
        if (DIAG_GROW(r->disks, *alloc, r->ndisks + 1) < 0)
                return false;
        r->disks[r->ndisks++] = d;
        return true;
}

/* One line of /proc/net/dev; false to stop. */
static bool iface_line(struct reading *r, char *line, size_t *alloc) {
        struct diag_netdev f;

        if (r->nifaces >= HOST_MAX_IFACES)
                return false;
        if (diag_netdev_line(line, &f) < 0)
                return true;
        if (DIAG_GROW(r->ifaces, *alloc, r->nifaces + 1) < 0)
                return false;
        r->ifaces[r->nifaces++] = f;
        return true;
}

/* Call fn for each line of a /proc file until it returns false. */
static void each_line(struct reading *r, const char *path, bool (*fn)(struct reading *, char *, size_t *)) {
        _cleanup_free_ char *buf = NULL;
        char *save = NULL;
        size_t alloc = 0;

        if (diag_read_file_at(AT_FDCWD, path, 1 << 22, &buf, NULL) < 0)
                return;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (!fn(r, line, &alloc))
                        break;
}

static void take_reading(struct reading *r) {
        r->t_ns = diag_now_ns(CLOCK_MONOTONIC);
        read_cpu(r);
        read_vmstat(r);
        read_snmp_file(r, "/proc/net/snmp");
        read_snmp_file(r, "/proc/net/netstat");
        each_line(r, "/proc/diskstats", disk_line);
        each_line(r, "/proc/net/dev", iface_line);
}

static int read_psi(const char *res, struct diag_psi *p) {
        char path[64], buf[512];
        ssize_t n;

        snprintf(path, sizeof path, "/proc/pressure/%s", res);
        n = diag_read_small_at(AT_FDCWD, path, buf, sizeof buf);
        if (n < 0)
                return (int) n;
        (void) diag_psi_parse(buf, p);
        return 0;
}

static double rate(uint64_t a, uint64_t b, double secs) {
        return b >= a && secs > 0 ? (double) (b - a) / secs : 0;
}

static double pct(uint64_t part, uint64_t whole) {
        return whole ? 100.0 * (double) part / (double) whole : 0;
}

static const struct diag_diskstat *find_disk(const struct reading *r, const char *name) {
        for (size_t i = 0; i < r->ndisks; i++)
                if (strcmp(r->disks[i].name, name) == 0)
                        return &r->disks[i];
        return NULL;
}

static const struct diag_netdev *find_iface(const struct reading *r, const char *name) {
        for (size_t i = 0; i < r->nifaces; i++)
                if (strcmp(r->ifaces[i].name, name) == 0)
                        return &r->ifaces[i];
        return NULL;
}

static void json_putp(struct json_object **o) {
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static void jset_u64(struct json_object *o, const char *k, uint64_t v) {
        json_object_object_add(o, k, json_object_new_uint64(v));
}

static void jset_dbl(struct json_object *o, const char *k, double v) {
        /* two decimals are plenty and keep the file small */
        json_object_object_add(o, k, json_object_new_double((double) (long long) (v * 100.0 + (v < 0 ? -0.5 : 0.5)) / 100.0));
}

static void jset_str(struct json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

/* Named figures of one JSON object; the list ends with an empty name. */
struct jfield {
        const char *key;
        double value;
        bool integer;
};

static void jset_all(struct json_object *o, const struct jfield *fs) {
        for (; fs->key; fs++)
                if (fs->integer)
                        jset_u64(o, fs->key, (uint64_t) fs->value);
                else
                        jset_dbl(o, fs->key, fs->value);
}

static const char *const psi_res[] = { "cpu", "memory", "io" };

int diag_snap_host(struct diag_snap *s) {
        _cleanup_(reading_free) struct reading r0 = {}, r1 = {};
        _cleanup_json_ struct json_object *root = json_object_new_object();
        struct json_object *o;
        uint64_t mem[NMEM_FIELDS] = {};
        bool have_mem[NMEM_FIELDS] = {};
        struct diag_psi psi[ELEMENTSOF(psi_res)] = {};
        bool have_psi[ELEMENTSOF(psi_res)] = {};
        double load[3] = {}, up = 0, secs;
        char hostname[256] = "", bootid[64] = "", buf[512];
        struct utsname un = {};
        _cleanup_free_ char *text = NULL;
        size_t text_len = 0;
        FILE *f;
        unsigned wait_ms;
        int r;

        if (!root)
                return -ENOMEM;

        take_reading(&r0);
        /* the second reading, rate_ms later, but never past the deadline (keep 1/4 of what is left) */
        wait_ms = s->rate_ms ? s->rate_ms : 1000;
        if (s->deadline_ns)
                wait_ms = MIN(wait_ms, diag_snap_left_ms(s) * 3 / 4);
        if (wait_ms) {
                struct timespec ts = { wait_ms / 1000, (long) (wait_ms % 1000) * 1000000L };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
        take_reading(&r1);
        secs = (double) (r1.t_ns - r0.t_ns) / 1e9;

        /* the figures read once, at the end of the window */
        {
                _cleanup_free_ char *mb = NULL;
                char *save = NULL;

                if (diag_read_file_at(AT_FDCWD, "/proc/meminfo", 1 << 20, &mb, NULL) >= 0) {
                        for (char *line = strtok_r(mb, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                                char *colon = strchr(line, ':');
                                unsigned long long v;
                                int i;

                                if (!colon)
                                        continue;
                                *colon = 0;
                                i = field_index(mem_fields, NMEM_FIELDS, line);
                                if (i >= 0 && sscanf(colon + 1, "%llu", &v) == 1) {
                                        /* kB, except the HugePages_ counts */
                                        mem[i] = strncmp(line, "HugePages_", 10) == 0 ? v : v * 1024;
                                        have_mem[i] = true;
                                }
                        }
                } else
                        diag_snap_missing(s, "host: meminfo", "/proc/meminfo: %s", strerror(errno));
        }
        for (size_t i = 0; i < ELEMENTSOF(psi_res); i++) {
                r = read_psi(psi_res[i], &psi[i]);
                have_psi[i] = r >= 0;
                if (r < 0)
                        diag_snap_missing(s, "host: PSI", "/proc/pressure/%s: %s%s", psi_res[i], strerror(-r),
                                          r == -ENOENT ? " (kernel without CONFIG_PSI, or psi=0)" :
                                          r == -EOPNOTSUPP ? " (PSI disabled: boot with psi=1)" : "");
        }
        if (diag_read_small_at(AT_FDCWD, "/proc/loadavg", buf, sizeof buf) > 0)
                (void) sscanf(buf, "%lf %lf %lf", &load[0], &load[1], &load[2]);
        if (diag_read_small_at(AT_FDCWD, "/proc/uptime", buf, sizeof buf) > 0)
                (void) sscanf(buf, "%lf", &up);
        if (diag_read_small_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", bootid, sizeof bootid) > 0)
                diag_strip(bootid);
        else
                diag_snap_missing(s, "host: boot id", "/proc/sys/kernel/random/boot_id: %s", strerror(errno));
        if (gethostname(hostname, sizeof hostname - 1) < 0)
                hostname[0] = 0;
        (void) uname(&un);
        if (!r1.have_cpu)
                diag_snap_missing(s, "host: CPU", "/proc/stat: no cpu line");

        /* derived figures */
        uint64_t cpu_tot = 0;
        double cpu_pct[NCPU_FIELDS] = {};
        for (size_t i = 0; i < NCPU_FIELDS; i++)
                cpu_tot += r1.cpu[i] >= r0.cpu[i] ? r1.cpu[i] - r0.cpu[i] : 0;
        for (size_t i = 0; i < NCPU_FIELDS; i++)
                cpu_pct[i] = pct(r1.cpu[i] >= r0.cpu[i] ? r1.cpu[i] - r0.cpu[i] : 0, cpu_tot);
        double cpu_busy = cpu_tot ? 100.0 - cpu_pct[3] - cpu_pct[4] : 0;
        int imt = field_index(mem_fields, NMEM_FIELDS, "MemTotal");
        int ima = field_index(mem_fields, NMEM_FIELDS, "MemAvailable");
        double avail_pct = mem[imt] ? pct(mem[ima], mem[imt]) : 100;
        int imaj = field_index(vm_fields, NVM_FIELDS, "pgmajfault");
        double majflt_s = rate(r0.vm[imaj], r1.vm[imaj], secs);
        long ncpus = sysconf(_SC_NPROCESSORS_ONLN);

        /* JSON */
        jset_str(root, "schema", "diag-snap/1");
        jset_str(root, "part", "host");
        jset_str(root, "hostname", hostname);
        jset_str(root, "kernel", un.release);
        jset_str(root, "kernel_version", un.version);
        jset_str(root, "machine", un.machine);
        jset_str(root, "boot_id", bootid);
        jset_dbl(root, "uptime_s", up);
        jset_u64(root, "window_ms", (uint64_t) (secs * 1000.0 + 0.5));
        jset_u64(root, "cpus", ncpus > 0 ? (uint64_t) ncpus : 0);
        o = json_object_new_array();
        for (int i = 0; i < 3; i++)
                json_object_array_add(o, json_object_new_double(load[i]));
        json_object_object_add(root, "loadavg", o);
        o = json_object_new_object();
        for (size_t i = 0; i < NCPU_FIELDS; i++)
                jset_dbl(o, cpu_fields[i], cpu_pct[i]);
        jset_dbl(o, "busy", cpu_busy);
        json_object_object_add(root, "cpu_pct", o);
        o = json_object_new_object();
        for (size_t i = 0; i < NMEM_FIELDS; i++)
                if (have_mem[i])
                        jset_u64(o, mem_fields[i], mem[i]);
        json_object_object_add(root, "meminfo_bytes", o);
        o = json_object_new_object();
        for (size_t i = 0; i < NVM_FIELDS; i++)
                if (r1.have_vm[i]) {
                        struct json_object *v = json_object_new_object();
                        jset_u64(v, "total", r1.vm[i]);
                        jset_dbl(v, "per_s", rate(r0.vm[i], r1.vm[i], secs));
                        json_object_object_add(o, vm_fields[i], v);
                }
        json_object_object_add(root, "vmstat", o);
        o = json_object_new_object();
        for (size_t i = 0; i < ELEMENTSOF(psi_res); i++) {
                struct json_object *res;
                if (!have_psi[i])
                        continue;
                res = json_object_new_object();
                for (int k = 0; k < 2; k++) {
                        struct json_object *v;
                        if (!psi[i].have[k])
                                continue;
                        v = json_object_new_object();
                        jset_dbl(v, "avg10", psi[i].avg[k][0]);
                        jset_dbl(v, "avg60", psi[i].avg[k][1]);
                        jset_dbl(v, "avg300", psi[i].avg[k][2]);
                        jset_u64(v, "total_us", psi[i].total[k]);
                        json_object_object_add(res, k ? "full" : "some", v);
                }
                json_object_object_add(o, psi_res[i], res);
        }
        json_object_object_add(root, "psi", o);

        /* disks: only those with IO in the window or since boot */
        struct json_object *jdisks = json_object_new_array();
        json_object_object_add(root, "disks", jdisks);
        struct json_object *jifs = json_object_new_array();
        json_object_object_add(root, "interfaces", jifs);
        o = json_object_new_object();
        for (size_t i = 0; i < NTCP_FIELDS; i++)
                if (r1.have_tcp[i]) {
                        struct json_object *v = json_object_new_object();
                        jset_u64(v, "total", r1.tcp[i]);
                        jset_u64(v, "delta", r1.tcp[i] >= r0.tcp[i] ? r1.tcp[i] - r0.tcp[i] : 0);
                        json_object_object_add(o, tcp_fields[i], v);
                }
        json_object_object_add(root, "tcp", o);

        /* the text is made in memory: host.json and the findings come even when
         * host.txt cannot be written */
        f = open_memstream(&text, &text_len);
        if (!f)
                return -ENOMEM;
        char b1[DIAG_SIZE_MAX], b2[DIAG_SIZE_MAX], dur[DIAG_DURATION_MAX];
        fprintf(f, "host      %s\nkernel    %s %s %s\nboot id   %s\nuptime    %s\nwindow    %.3f s\n",
                hostname, un.sysname, un.release, un.machine, bootid,
                diag_format_duration((uint64_t) (up * 1000.0), dur, sizeof dur), secs);
        fprintf(f, "load      %.2f %.2f %.2f (%ld CPUs)\n\n", load[0], load[1], load[2], ncpus);
        fprintf(f, "CPU %%     ");
        for (size_t i = 0; i < NCPU_FIELDS; i++)
                fprintf(f, "%s %.1f  ", cpu_fields[i], cpu_pct[i]);
        fprintf(f, "busy %.1f\n\nmemory\n", cpu_busy);
        for (size_t i = 0; i < NMEM_FIELDS; i++)
                if (have_mem[i]) {
                        if (strncmp(mem_fields[i], "HugePages_", 10) == 0)
                                fprintf(f, "  %-16s %10" PRIu64 "\n", mem_fields[i], mem[i]);
                        else
                                fprintf(f, "  %-16s %10s\n", mem_fields[i], diag_format_size(mem[i], b1, sizeof b1));
                }
        fprintf(f, "\nvmstat             %14s %12s\n", "total", "per s");
        for (size_t i = 0; i < NVM_FIELDS; i++)
                if (r1.have_vm[i])
                        fprintf(f, "  %-16s %14" PRIu64 " %12.1f\n", vm_fields[i], r1.vm[i],
                                rate(r0.vm[i], r1.vm[i], secs));
        fprintf(f, "\npressure  %-4s %7s %7s %7s %16s\n", "", "avg10", "avg60", "avg300", "total us");
        for (size_t i = 0; i < ELEMENTSOF(psi_res); i++)
                for (int k = 0; k < 2; k++)
                        if (have_psi[i] && psi[i].have[k])
                                fprintf(f, "  %-7s %-4s %7.2f %7.2f %7.2f %16" PRIu64 "\n", psi_res[i], k ? "full" : "some",
                                        psi[i].avg[k][0], psi[i].avg[k][1], psi[i].avg[k][2], psi[i].total[k]);
        fprintf(f, "\n%-12s %9s %9s %11s %11s %6s %9s %9s %8s\n", "disk", "r/s", "w/s", "rB/s", "wB/s",
                "busy%", "r_await", "w_await", "inflight");
        for (size_t i = 0; i < r1.ndisks; i++) {
                const struct diag_diskstat *d1 = &r1.disks[i], *d0 = find_disk(&r0, d1->name);
                struct diag_diskstat z = {};
                if (!d0)
                        d0 = &z;
                if (d1->rd_ios + d1->wr_ios == 0)
                        continue;       /* loop, ram, zram, an empty drive: no IO ever */
                uint64_t drd = d1->rd_ios - MIN(d0->rd_ios, d1->rd_ios), dwr = d1->wr_ios - MIN(d0->wr_ios, d1->wr_ios);
                double rd_await = drd ? (double) (d1->rd_ms - MIN(d0->rd_ms, d1->rd_ms)) / (double) drd : 0;
                double wr_await = dwr ? (double) (d1->wr_ms - MIN(d0->wr_ms, d1->wr_ms)) / (double) dwr : 0;
                double busy = secs > 0 ? MIN(100.0, (double) (d1->io_ticks - MIN(d0->io_ticks, d1->io_ticks)) / (secs * 10.0)) : 0;
                double rbs = rate(d0->rd_sectors, d1->rd_sectors, secs) * 512, wbs = rate(d0->wr_sectors, d1->wr_sectors, secs) * 512;
                double riops = rate(d0->rd_ios, d1->rd_ios, secs), wiops = rate(d0->wr_ios, d1->wr_ios, secs);
                struct json_object *v = json_object_new_object();

                fprintf(f, "%-12s %9.1f %9.1f %11s %11s %6.1f %9.2f %9.2f %8" PRIu64 "\n", d1->name, riops, wiops,
                        diag_format_size((uint64_t) rbs, b1, sizeof b1), diag_format_size((uint64_t) wbs, b2, sizeof b2),
                        busy, rd_await, wr_await, d1->in_flight);
                jset_str(v, "name", d1->name);
                jset_all(v, (const struct jfield[]) {
                        { "read_iops", riops }, { "write_iops", wiops }, { "read_bytes_per_s", rbs },
                        { "write_bytes_per_s", wbs }, { "busy_pct", busy }, { "read_await_ms", rd_await },
                        { "write_await_ms", wr_await }, { "in_flight", (double) d1->in_flight, true },
                        { "read_ios_total", (double) d1->rd_ios, true }, { "write_ios_total", (double) d1->wr_ios, true },
                        {} });
                json_object_array_add(jdisks, v);
                if (busy > HOST_DISK_BUSY_PCT)
                        diag_snap_finding(s, DIAG_SNAP_WARN, "host.txt",
                                          "disk %s: %.0f %% busy, %.0f read IOPS (%s/s), %.0f write IOPS (%s/s); await r %.1f ms w %.1f ms",
                                          d1->name, busy, riops, diag_format_size((uint64_t) rbs, b1, sizeof b1),
                                          wiops, diag_format_size((uint64_t) wbs, b2, sizeof b2), rd_await, wr_await);
        }
        fprintf(f, "\n%-16s %11s %11s %9s %9s %8s %8s %8s %8s\n", "interface", "rxB/s", "txB/s", "rxpk/s", "txpk/s",
                "rxerr", "txerr", "rxdrop", "txdrop");
        for (size_t i = 0; i < r1.nifaces; i++) {
                const struct diag_netdev *f1 = &r1.ifaces[i], *f0 = find_iface(&r0, f1->name);
                struct diag_netdev z = {};
                struct json_object *v = json_object_new_object();
                if (!f0)
                        f0 = &z;
                double rxb = rate(f0->rx_bytes, f1->rx_bytes, secs), txb = rate(f0->tx_bytes, f1->tx_bytes, secs);
                double rxp = rate(f0->rx_packets, f1->rx_packets, secs), txp = rate(f0->tx_packets, f1->tx_packets, secs);

                fprintf(f, "%-16s %11s %11s %9.1f %9.1f %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n", f1->name,
                        diag_format_size((uint64_t) rxb, b1, sizeof b1), diag_format_size((uint64_t) txb, b2, sizeof b2),
                        rxp, txp, f1->rx_errs, f1->tx_errs, f1->rx_drop, f1->tx_drop);
                jset_str(v, "name", f1->name);
                jset_all(v, (const struct jfield[]) {
                        { "rx_bytes_per_s", rxb }, { "tx_bytes_per_s", txb }, { "rx_packets_per_s", rxp },
                        { "tx_packets_per_s", txp }, { "rx_bytes_total", (double) f1->rx_bytes, true },
                        { "tx_bytes_total", (double) f1->tx_bytes, true }, { "rx_errors", (double) f1->rx_errs, true },
                        { "tx_errors", (double) f1->tx_errs, true }, { "rx_dropped", (double) f1->rx_drop, true },
                        { "tx_dropped", (double) f1->tx_drop, true }, {} });
                json_object_array_add(jifs, v);
        }
        fprintf(f, "\ntcp                        %14s %10s\n", "total", "in window");
        for (size_t i = 0; i < NTCP_FIELDS; i++)
                if (r1.have_tcp[i])
                        fprintf(f, "  %-24s %14" PRIu64 " %10" PRIu64 "\n", tcp_fields[i], r1.tcp[i],
                                r1.tcp[i] >= r0.tcp[i] ? r1.tcp[i] - r0.tcp[i] : 0);
        if (fclose(f) == 0)
                (void) diag_snap_write(s, "host.txt", text, text_len);

        /* findings */
        if (have_mem[imt] && have_mem[ima] && avail_pct < HOST_MEM_AVAIL_WARN_PCT)
                diag_snap_finding(s, avail_pct < HOST_MEM_AVAIL_CRIT_PCT ? DIAG_SNAP_CRIT : DIAG_SNAP_WARN, "host.txt",
                                  "memory: %s available of %s (%.1f %%); PSI memory full %.1f %% (avg10); major faults %.0f/s%s",
                                  diag_format_size(mem[ima], b1, sizeof b1), diag_format_size(mem[imt], b2, sizeof b2),
                                  avail_pct, have_psi[1] ? psi[1].avg[1][0] : 0.0, majflt_s,
                                  majflt_s >= HOST_THRASH_MAJFLT_PER_S ? " -> page-cache thrash" : "");
        else if (majflt_s >= HOST_THRASH_MAJFLT_PER_S)
                diag_snap_finding(s, DIAG_SNAP_NOTICE, "host.txt", "major faults %.0f/s with %.1f %% of memory available",
                                  majflt_s, avail_pct);
        if (have_psi[1] && psi[1].have[1] && psi[1].avg[1][0] > HOST_PSI_MEM_FULL_PCT)
                diag_snap_finding(s, DIAG_SNAP_WARN, "host.txt",
                                  "PSI memory full %.1f %% (avg10), %.1f %% (avg60): all tasks stalled on memory",
                                  psi[1].avg[1][0], psi[1].avg[1][1]);
        if (have_psi[2] && psi[2].have[0] && psi[2].avg[0][0] > HOST_PSI_IO_SOME_PCT)
                diag_snap_finding(s, DIAG_SNAP_WARN, "host.txt", "PSI io some %.1f %% (avg10), full %.1f %%: tasks wait on IO",
                                  psi[2].avg[0][0], psi[2].have[1] ? psi[2].avg[1][0] : 0.0);
        if (r1.have_cpu && cpu_busy > HOST_CPU_BUSY_PCT)
                diag_snap_finding(s, DIAG_SNAP_WARN, "host.txt",
                                  "CPU %.0f %% busy (user %.0f, system %.0f, softirq %.0f, steal %.0f); load %.2f on %ld CPUs",
                                  cpu_busy, cpu_pct[0] + cpu_pct[1], cpu_pct[2], cpu_pct[6], cpu_pct[7], load[0], ncpus);
        if (r1.have_cpu && cpu_pct[7] > HOST_CPU_STEAL_PCT)
                diag_snap_finding(s, DIAG_SNAP_WARN, "host.txt", "CPU steal %.0f %%: the hypervisor runs others on our CPUs",
                                  cpu_pct[7]);
        int ilo = field_index(tcp_fields, NTCP_FIELDS, "TcpExt:ListenOverflows");
        int ild = field_index(tcp_fields, NTCP_FIELDS, "TcpExt:ListenDrops");
        if (r1.have_tcp[ilo] && r1.tcp[ilo] > r0.tcp[ilo])
                diag_snap_finding(s, DIAG_SNAP_WARN, "host.txt",
                                  "TCP listen overflows: +%" PRIu64 " in the window (%" PRIu64 " since boot), drops +%" PRIu64
                                  ": a listener does not accept fast enough",
                                  r1.tcp[ilo] - r0.tcp[ilo], r1.tcp[ilo], r1.tcp[ild] - MIN(r0.tcp[ild], r1.tcp[ild]));

        /* a file that could not be written has its missing entry already */
        {
                const char *js = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
                (void) diag_snap_write(s, "host.json", js, strlen(js));
        }
        return 0;
}

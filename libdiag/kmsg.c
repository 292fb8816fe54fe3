/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * /dev/kmsg records and the kernel lines that tell of trouble: OOM kills, hung
 * tasks, I/O errors. No allocation: diag-record reads these every second.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "diag/kmsg.h"
#include "diag/util.h"

static void copy_word(char *dst, size_t size, const char *src, const char *stops) {
        size_t i = 0;

        while (src[i] && !strchr(stops, src[i]) && i + 1 < size) {
                dst[i] = src[i];
                i++;
        }
        dst[i] = 0;
}

/* The value after "key" in text, up to one of stops. */
static bool field(const char *text, const char *key, char *dst, size_t size, const char *stops) {
        const char *p = strstr(text, key);

        if (!p)
                return false;
        copy_word(dst, size, p + strlen(key), stops);
        return true;
}

static bool field_ull(const char *text, const char *key, const char *stops, unsigned long long *ret) {
        char buf[32];

        return field(text, key, buf, sizeof buf, stops) && diag_parse_ull(buf, 10, ret) == 0;
}

static uint64_t field_kb(const char *text, const char *key) {
        unsigned long long v;

        return field_ull(text, key, ", kK\n", &v) ? v : 0;
}

int diag_kmsg_parse_record(char *buf, struct diag_kmsg_record *ret) {
        char *semi = strchr(buf, ';'), *f[3], *nl;
        unsigned long long v[3];
        char num[24];

        if (!semi)
                return -EINVAL;
        f[0] = buf;
        for (int i = 1; i < 3; i++) {
                f[i] = memchr(f[i - 1], ',', (size_t) (semi - f[i - 1]));
                if (!f[i])
                        return -EINVAL;
                f[i]++;
        }
        for (int i = 0; i < 3; i++) {
                copy_word(num, sizeof num, f[i], ",;");
                if (diag_parse_ull(num, 10, &v[i]) < 0)
                        return -EINVAL;
        }
        ret->prio = (unsigned) v[0];
        ret->seq = v[1];
        ret->usec = v[2];
        ret->text = semi + 1;
        nl = strchr(ret->text, '\n');   /* continuation lines (" KEY=VALUE") are dropped */
        if (nl)
                *nl = 0;
        return 0;
}

static void parse_killed(const char *text, const char *p, struct diag_kmsg_line *ret) {
        unsigned long long pid;

        ret->memcg = strstr(text, "Memory cgroup out of memory") != NULL;
        if (field_ull(p, "Killed process ", " ", &pid) && pid > 0 && pid <= INT32_MAX)
                ret->pid = (pid_t) pid;
        (void) field(p, "(", ret->comm, sizeof ret->comm, ")");
        ret->total_vm_kb = field_kb(text, "total-vm:");
        ret->anon_kb = field_kb(text, "anon-rss:");
        ret->file_kb = field_kb(text, "file-rss:");
        ret->shmem_kb = field_kb(text, "shmem-rss:");
        if (strstr(text, "UID:"))
                ret->uid = (long) field_kb(text, "UID:");
}

/* "INFO: task COMM:PID blocked for more than N seconds." (COMM may hold ':') */
static void parse_hung(const char *text, const char *blocked, struct diag_kmsg_line *ret) {
        const char *t = strstr(text, "task "), *colon = NULL;
        unsigned long long v;
        char num[16];

        if (t && t < blocked) {
                t += 5;
                for (const char *c = t; c < blocked; c++)
                        if (*c == ':')
                                colon = c;
        }
        if (colon) {
                copy_word(ret->comm, MIN(sizeof ret->comm, (size_t) (colon - t) + 1), t, "");
                copy_word(num, MIN(sizeof num, (size_t) (blocked - colon)), colon + 1, "");
                if (diag_parse_ull(num, 10, &v) == 0 && v > 0 && v <= INT32_MAX)
                        ret->pid = (pid_t) v;
        }
        if (field_ull(blocked, "more than ", " ", &v) && v <= UINT32_MAX)
                ret->hung_secs = (unsigned) v;
}

enum diag_kmsg_kind diag_kmsg_classify(const char *text, struct diag_kmsg_line *ret) {
        const char *p;
        unsigned long long v;

        memset(ret, 0, sizeof *ret);
        ret->pid = -1;
        ret->uid = -1;
        if ((p = strstr(text, " invoked oom-killer:"))) {
                ret->kind = DIAG_KMSG_OOM_INVOKED;
                copy_word(ret->comm, MIN(sizeof ret->comm, (size_t) (p - text) + 1), text, "\n");
        } else if (text[0] == '[' && strstr(text, "] ")) {
                ret->kind = DIAG_KMSG_OOM_TASK;
        } else if (strncmp(text, "oom-kill:", 9) == 0) {
                ret->kind = DIAG_KMSG_OOM_KILL;
                (void) field(text, "constraint=", ret->constraint, sizeof ret->constraint, ",\n");
                (void) field(text, "oom_memcg=", ret->oom_memcg, sizeof ret->oom_memcg, ",\n");
                (void) field(text, "task_memcg=", ret->task_memcg, sizeof ret->task_memcg, ",\n");
                (void) field(text, ",task=", ret->comm, sizeof ret->comm, ",\n");
                if (field_ull(text, ",pid=", ",\n", &v) && v > 0 && v <= INT32_MAX)
                        ret->pid = (pid_t) v;
                if (field_ull(text, ",uid=", ",\n", &v) && v <= INT32_MAX)
                        ret->uid = (long) v;
        } else if ((p = strstr(text, "Killed process "))) {
                ret->kind = DIAG_KMSG_OOM_KILLED;
                parse_killed(text, p, ret);
        } else if ((p = strstr(text, " blocked for more than ")) && strstr(p, " seconds")) {
                ret->kind = DIAG_KMSG_HUNG;
                parse_hung(text, p, ret);
        } else if (strstr(text, "I/O error, dev ") || strstr(text, "Buffer I/O error on dev")) {
                ret->kind = DIAG_KMSG_IOERR;
        }
        return ret->kind;
}

int64_t diag_kmsg_realtime_ns(uint64_t usec) {
        int64_t off = (int64_t) diag_now_ns(CLOCK_REALTIME) - (int64_t) diag_now_ns(CLOCK_BOOTTIME);

        return off + (int64_t) usec * 1000;
}

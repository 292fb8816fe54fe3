/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The flame module: merging, totals and self counts, sorting, collapsed output
 * read back, escaping of hostile names in both outputs, and large inputs. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "diag/flame.h"
#include "diag/util.h"
#include "tap.h"

#define F(n) { .name = (n), .kind = DIAG_FLAME_NATIVE }

static const struct diag_flame_node *child(const struct diag_flame_node *n, const char *name) {
        for (const struct diag_flame_node *c = n ? n->children : NULL; c; c = c->next)
                if (strcmp(c->name, name) == 0)
                        return c;
        return NULL;
}

static size_t nchildren(const struct diag_flame_node *n) {
        size_t k = 0;
        for (const struct diag_flame_node *c = n->children; c; c = c->next)
                k++;
        return k;
}

static char *to_string(struct diag_flame *f, bool svg) {
        char *buf = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&buf, &size);
        int r;

        if (!m)
                return NULL;
        r = svg ? diag_flame_write_svg(f, "a title", "a <sub> & title", m) : diag_flame_write_folded(f, m);
        CHECK_INT(r, 0);
        fclose(m);
        return buf;
}

/* "path count" lines into parallel arrays; -1 on a malformed line. */
static int folded_parse(char *text, char ***paths, uint64_t **counts, size_t *n) {
        size_t alloc_p = 0, alloc_c = 0;
        char *line, *save = NULL;

        *n = 0;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *sp = strrchr(line, ' ');
                unsigned long long c;
                if (!sp || diag_parse_ull(sp + 1, 10, &c) < 0)
                        return -1;
                *sp = 0;
                if (DIAG_GROW(*paths, alloc_p, *n + 1) < 0 || DIAG_GROW(*counts, alloc_c, *n + 1) < 0)
                        return -1;
                (*paths)[*n] = line;
                (*counts)[*n] = c;
                (*n)++;
        }
        return 0;
}

static bool valid_utf8(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        while (*p) {
                size_t k = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
                if (k == 0)
                        return false;
                for (size_t i = 1; i < k; i++)
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                p += k;
        }
        return true;
}

static size_t count_of(const char *hay, const char *needle) {
        size_t k = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                k++;
        return k;
}

static void test_tree(void) {
        _cleanup_(diag_flame_freep) struct diag_flame *f = NULL;
        const struct diag_flame_node *root, *main_, *work, *a, *b;
        struct diag_flame_frame s1[] = { F("main"), F("work"), F("a") };
        struct diag_flame_frame s2[] = { F("main"), F("work"), F("b") };
        struct diag_flame_frame s3[] = { F("main"), F("work") };
        struct diag_flame_frame s4[] = { F("main"), { .name = "work", .kind = DIAG_FLAME_PYTHON, .detail = "w.py:3" } };
        struct diag_flame_frame s5[] = { F("idle") };
        char name[] = "main";

        CHECK_INT(diag_flame_new(&f), 0);
        root = diag_flame_root(f);
        CHECK_STR(root->name, "all");
        CHECK_INT(root->kind, DIAG_FLAME_ROOT);
        CHECK_INT(root->total, 0);

        CHECK_INT(diag_flame_add(f, s1, 3, 5), 0);
        CHECK_INT(diag_flame_add(f, s2, 3, 2), 0);
        CHECK_INT(diag_flame_add(f, s1, 3, 1), 0);
        CHECK_INT(diag_flame_add(f, s3, 2, 4), 0);
        CHECK_INT(diag_flame_add(f, s4, 2, 3), 0);
        CHECK_INT(diag_flame_add(f, s5, 1, 7), 0);
        CHECK_INT(diag_flame_add(f, s5, 1, 0), 0);      /* nothing */
        CHECK_INT(diag_flame_add(f, NULL, 0, 2), 0);    /* no frames: the root's own */
        CHECK_INT(diag_flame_add(f, NULL, 1, 2), -EINVAL);

        /* names are copied */
        {
                struct diag_flame_frame t[] = { { .name = name, .detail = name } };
                CHECK_INT(diag_flame_add(f, t, 1, 1), 0);
                name[0] = 'X';
        }

        CHECK_INT(root->total, 5 + 2 + 1 + 4 + 3 + 7 + 2 + 1);
        CHECK_INT(root->self, 2);
        main_ = child(root, "main");
        CHECK(main_ != NULL);
        if (!main_)
                return;
        CHECK_INT(main_->total, 5 + 2 + 1 + 4 + 3 + 1);
        CHECK_INT(main_->self, 1);
        CHECK(main_->detail && strcmp(main_->detail, "main") == 0);
        /* native work and Python work are two frames */
        CHECK_INT(nchildren(main_), 2);
        work = NULL;
        for (const struct diag_flame_node *c = main_->children; c; c = c->next)
                if (c->kind == DIAG_FLAME_NATIVE)
                        work = c;
                else {
                        CHECK_INT(c->total, 3);
                        CHECK_INT(c->self, 3);
                        CHECK_STR(c->detail, "w.py:3");
                }
        CHECK(work != NULL);
        if (!work)
                return;
        CHECK_INT(work->total, 12);
        CHECK_INT(work->self, 4);
        CHECK(work->detail == NULL);
        a = child(work, "a");
        b = child(work, "b");
        CHECK(a && a->total == 6 && a->self == 6 && !a->children);
        CHECK(b && b->total == 2 && b->self == 2);
        CHECK_INT(diag_flame_node_count(f), 6);

        /* sorted: total descending, ties by name */
        diag_flame_sort(f);
        CHECK_STR(root->children->name, "main");
        CHECK_STR(root->children->next->name, "idle");
        CHECK_STR(main_->children->name, "work");
        CHECK_INT(main_->children->kind, DIAG_FLAME_NATIVE);
        CHECK_STR(work->children->name, "a");
        {
                uint64_t sum = 0;
                for (const struct diag_flame_node *c = root->children; c; c = c->next)
                        sum += c->total;
                CHECK_INT(sum + root->self, root->total);
        }
        {
                _cleanup_(diag_flame_freep) struct diag_flame *g = NULL;
                const char *names[] = { "d", "b", "c", "a", "e" };
                uint64_t counts[] = { 3, 5, 3, 3, 1 };
                const char *want[] = { "b", "a", "c", "d", "e" };
                size_t i = 0;
                CHECK_INT(diag_flame_new(&g), 0);
                for (size_t k = 0; k < ELEMENTSOF(names); k++) {
                        struct diag_flame_frame t[] = { F(names[k]) };
                        CHECK_INT(diag_flame_add(g, t, 1, counts[k]), 0);
                }
                diag_flame_sort(g);
                for (const struct diag_flame_node *c = diag_flame_root(g)->children; c; c = c->next, i++)
                        CHECK_STR(c->name, i < ELEMENTSOF(want) ? want[i] : "(extra)");
                CHECK_INT(i, ELEMENTSOF(want));
        }
}

static void test_empty(void) {
        _cleanup_(diag_flame_freep) struct diag_flame *f = NULL;
        _cleanup_free_ char *folded = NULL, *svg = NULL;

        CHECK_INT(diag_flame_new(&f), 0);
        diag_flame_sort(f);
        CHECK_INT(diag_flame_node_count(f), 0);
        folded = to_string(f, false);
        svg = to_string(f, true);
        CHECK_STR(folded, "");
        CHECK(svg && strstr(svg, ">no samples</text>") && strstr(svg, "data-total=\"0\"") && strstr(svg, "</svg>\n"));
        CHECK(svg && !strstr(svg, "<g class=\"f "));
}

static void test_folded(void) {
        _cleanup_(diag_flame_freep) struct diag_flame *f = NULL, *g = NULL;
        _cleanup_free_ char *text = NULL, *text2 = NULL;
        _cleanup_free_ char **paths = NULL;
        _cleanup_free_ uint64_t *counts = NULL;
        static const struct { const char *stack; uint64_t count; } in[] = {
                { "proc-1;tid-1-main;main;work;a", 6 },
                { "proc-1;tid-1-main;main;work;b", 2 },
                { "proc-1;tid-1-main;main;work", 4 },
                { "proc-1;tid-2-io;main;read", 9 },
                { "proc-1;tid-2-io", 1 },
                { "proc-2;tid-3-x;z", 3 },
        };
        size_t n;
        uint64_t sum = 0;

        CHECK_INT(diag_flame_new(&f), 0);
        CHECK_INT(diag_flame_new(&g), 0);
        for (size_t pass = 0; pass < 2; pass++)
                for (size_t k = 0; k < ELEMENTSOF(in); k++) {
                        /* g gets the stacks in the opposite order, split in two adds */
                        size_t i = pass == 0 ? k : ELEMENTSOF(in) - 1 - k;
                        struct diag_flame_frame fr[8];
                        char buf[128], *s = buf, *tok;
                        size_t nf = 0;
                        snprintf(buf, sizeof buf, "%s", in[i].stack);
                        while ((tok = strsep(&s, ";")))
                                fr[nf++] = (struct diag_flame_frame) F(tok);
                        if (pass == 0)
                                CHECK_INT(diag_flame_add(f, fr, nf, in[i].count), 0);
                        else {
                                CHECK_INT(diag_flame_add(g, fr, nf, in[i].count - in[i].count / 2), 0);
                                CHECK_INT(diag_flame_add(g, fr, nf, in[i].count / 2), 0);
                        }
                }
        diag_flame_sort(g);
        text = to_string(f, false);
        text2 = to_string(g, false);
        CHECK(text && text2);
        if (!text || !text2)
                return;
        /* same tree, same text, whatever the order of adds and sorting */
        CHECK_STR(text, text2);
        printf("%s", text);
        CHECK_INT(folded_parse(text, &paths, &counts, &n), 0);
        CHECK_INT(n, ELEMENTSOF(in));
        for (size_t i = 0; i < n; i++) {
                bool found = false;
                sum += counts[i];
                for (size_t k = 0; k < ELEMENTSOF(in); k++)
                        if (strcmp(paths[i], in[k].stack) == 0) {
                                CHECK_INT(counts[i], in[k].count);
                                found = true;
                        }
                CHECK(found);
                /* sorted */
                if (i > 0)
                        CHECK(strcmp(paths[i - 1], paths[i]) < 0);
        }
        CHECK_INT(sum, diag_flame_root(f)->total);
}

static void test_hostile(void) {
        _cleanup_(diag_flame_freep) struct diag_flame *f = NULL;
        _cleanup_free_ char *folded = NULL, *svg = NULL;
        struct diag_flame_frame fr[] = {
                F("ns::f<int>;g"),
                F("line\nbreak\ttab"),
                { .name = "</title><script>alert(1)</script>", .detail = "a&b \"q\" 'x' <d>" },
                F("bad\xff\xfeutf8\x01\x7f"),
                F("with spaces 12"),
                F(""),
                F("caf\xc3\xa9 \xe2\x82\xac \xed\xa0\x80 \xc0\xaf"),
        };

        CHECK_INT(diag_flame_new(&f), 0);
        CHECK_INT(diag_flame_add(f, fr, ELEMENTSOF(fr), 3), 0);
        CHECK_INT(diag_flame_add(f, fr, 2, 1), 0);
        folded = to_string(f, false);
        svg = to_string(f, true);
        CHECK(folded && svg);
        if (!folded || !svg)
                return;
        printf("%s", folded);
        CHECK_STR(folded,
                  "ns::f<int>:g;line break tab 1\n"
                  "ns::f<int>:g;line break tab;</title><script>alert(1)</script>;bad\xef\xbf\xbd\xef\xbf\xbdutf8\xef\xbf\xbd\xef\xbf\xbd;"
                  "with spaces 12;[unknown];caf\xc3\xa9 \xe2\x82\xac \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd 3\n");
        CHECK(valid_utf8(svg));
        CHECK(!strstr(svg, "alert(1)</script>"));
        CHECK(!strstr(svg, "<d>"));
        CHECK(!strchr(svg, '\x01'));
        CHECK(!strchr(svg, '\x7f'));
        CHECK(strstr(svg, "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;\na&amp;b &quot;q&quot; &apos;x&apos; &lt;d&gt;\n3 samples"));
        CHECK(strstr(svg, "<title>ns::f&lt;int&gt;;g\n4 samples, 100.00 %"));
        CHECK(strstr(svg, "a &lt;sub&gt; &amp; title"));
        CHECK(strstr(svg, "<title>[unknown]\n"));
        /* one script: ours */
        CHECK_INT(count_of(svg, "<script"), 1);
        CHECK_INT(count_of(svg, "]]>"), 1);
        CHECK_INT(count_of(svg, "<g class=\"f "), 1 + ELEMENTSOF(fr));
}

static void test_svg_layout(void) {
        _cleanup_(diag_flame_freep) struct diag_flame *f = NULL;
        _cleanup_free_ char *svg = NULL;
        struct diag_flame_frame a[] = { { .name = "p-1", .kind = DIAG_FLAME_ROOT }, F("main"), F("hot") };
        struct diag_flame_frame b[] = { { .name = "p-1", .kind = DIAG_FLAME_ROOT }, F("main"), { .name = "sys", .kind = DIAG_FLAME_KERNEL } };
        struct diag_flame_frame c[] = { { .name = "p-1", .kind = DIAG_FLAME_ROOT }, { .name = "tiny", .kind = DIAG_FLAME_PYTHON } };

        CHECK_INT(diag_flame_new(&f), 0);
        CHECK_INT(diag_flame_add(f, a, 3, 7500), 0);
        CHECK_INT(diag_flame_add(f, b, 3, 2499), 0);
        CHECK_INT(diag_flame_add(f, c, 2, 1), 0);    /* 0.01 %: not drawn */
        svg = to_string(f, true);
        CHECK(svg != NULL);
        if (!svg)
                return;
        CHECK(strstr(svg, "data-total=\"10000\""));
        CHECK(strstr(svg, "data-omitted-frames=\"1\" data-omitted-samples=\"1\""));
        CHECK(!strstr(svg, "tiny"));
        CHECK_INT(count_of(svg, "<g class=\"f "), 5);
        /* widths proportional to totals (1180 px for everything), children from the left */
        CHECK(strstr(svg, "<g class=\"f root\" data-s=\"0\" data-n=\"10000\" data-d=\"0\""));
        CHECK(strstr(svg, "width=\"1180.00\""));
        CHECK(strstr(svg, "<g class=\"f native\" data-s=\"0\" data-n=\"9999\" data-d=\"2\""));
        CHECK(strstr(svg, "<g class=\"f native\" data-s=\"0\" data-n=\"7500\" data-d=\"3\""));
        CHECK(strstr(svg, "x=\"10.00\" y=\"84\" width=\"885.00\""));
        CHECK(strstr(svg, "<g class=\"f kernel\" data-s=\"7500\" data-n=\"2499\" data-d=\"3\""));
        CHECK(strstr(svg, "x=\"895.00\" y=\"84\" width=\"294.88\""));
        CHECK(strstr(svg, "viewBox=\"0 0 1200 182\""));
}

/* CPU time, not wall time: the figure holds on a busy machine too. */
static double now_s(void) {
        return (double) diag_now_ns(CLOCK_THREAD_CPUTIME_ID) / 1e9;
}

static void test_large(void) {
        _cleanup_(diag_flame_freep) struct diag_flame *f = NULL;
        _cleanup_free_ char *folded = NULL, *svg = NULL;
        static char names[64][16], wide[10000][16];
        struct diag_flame_frame fr[50];
        uint64_t x = 12345;
        size_t failed = 0;
        double t0, t1, t2;

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                snprintf(names[i], sizeof names[i], "func_%zu", i);
        for (size_t i = 0; i < ELEMENTSOF(wide); i++)
                snprintf(wide[i], sizeof wide[i], "leaf_%zu", i);
        CHECK_INT(diag_flame_new(&f), 0);
        t0 = now_s();
        /* 100k stacks of depth 50 as a profile looks: a few hot paths that branch
         * towards the leaves, and a level with 10000 siblings (all different leaves) */
        for (size_t i = 0; i < 100000; i++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                for (size_t d = 0; d < 50; d++) {
                        unsigned v = d < 44 ? (unsigned) ((x >> 60) % 4) : (unsigned) ((x >> (d - 30)) % 3);
                        fr[d] = (struct diag_flame_frame) { .name = names[v + d % 8], .kind = DIAG_FLAME_NATIVE };
                }
                if (i % 2)
                        fr[48].name = wide[(x >> 20) % ELEMENTSOF(wide)];
                if (diag_flame_add(f, fr, 50, 1) < 0)
                        failed++;
        }
        t1 = now_s();
        CHECK_INT(failed, 0);
        diag_flame_sort(f);
        folded = to_string(f, false);
        svg = to_string(f, true);
        t2 = now_s();
        printf("100000 stacks of depth 50: %zu nodes, added in %.3f s, sorted and written in %.3f s (CPU)\n",
               diag_flame_node_count(f), t1 - t0, t2 - t1);
        CHECK_INT(diag_flame_root(f)->total, 100000);
        CHECK(folded && svg);
        /* well under a second in a release build; sanitizers make it several times slower */
        CHECK(t1 - t0 < 3.0);
        if (folded) {
                uint64_t sum = 0;
                for (char *p = folded; (p = strchr(p, ' ')); p++)
                        sum += strtoull(p + 1, &p, 10);
                CHECK_INT(sum, 100000);
        }
        if (svg)
                CHECK(!strstr(svg, "data-omitted-frames=\"0\""));
}

static void test_deep(void) {
        _cleanup_(diag_flame_freep) struct diag_flame *f = NULL;
        _cleanup_free_ struct diag_flame_frame *fr = calloc(10001, sizeof *fr);
        _cleanup_free_ char *folded = NULL, *svg = NULL;

        CHECK(fr != NULL);
        if (!fr)
                return;
        for (size_t i = 0; i < 10001; i++)
                fr[i] = (struct diag_flame_frame) { .name = i % 2 ? "odd" : "even" };
        CHECK_INT(diag_flame_new(&f), 0);
        CHECK_INT(diag_flame_add(f, fr, 10001, 1), -E2BIG);
        CHECK_INT(diag_flame_root(f)->total, 0);
        CHECK_INT(diag_flame_add(f, fr, 10000, 1), 0);
        CHECK_INT(diag_flame_add(f, fr, 5000, 1), 0);
        diag_flame_sort(f);
        folded = to_string(f, false);
        svg = to_string(f, true);
        CHECK(folded && strlen(folded) > 10000 * 4);
        CHECK(svg && count_of(svg, "<g class=\"f ") == 10001);
}

int main(void) {
        test_tree();
        test_empty();
        test_folded();
        test_hostile();
        test_svg_layout();
        test_large();
        test_deep();
        return TAP_DONE();
}

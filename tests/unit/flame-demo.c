/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Collapsed stacks on stdin ("a;b;c 12" per line) into a flame graph on stdout,
 * through libdiag's flame module: what the SVG test opens in a browser.
 *
 *   flame-demo [--folded] [--title TEXT] [--subtitle TEXT] < stacks
 *
 * A frame may end in a kind ("_[k]" kernel, "_[p]" Python, "_[r]" root; native
 * otherwise) and carry a detail after a tab ("func\tfile.c:12 (prog)"). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "diag/flame.h"
#include "diag/util.h"

static void frame_parse(char *s, struct diag_flame_frame *ret) {
        static const struct { const char *suffix; enum diag_flame_kind kind; } kinds[] = {
                { "_[k]", DIAG_FLAME_KERNEL },
                { "_[p]", DIAG_FLAME_PYTHON },
                { "_[r]", DIAG_FLAME_ROOT },
        };
        char *tab = strchr(s, '\t');
        size_t len;

        *ret = (struct diag_flame_frame) { .name = s, .kind = DIAG_FLAME_NATIVE };
        if (tab) {
                *tab = 0;
                ret->detail = tab + 1;
        }
        len = strlen(s);
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                size_t k = strlen(kinds[i].suffix);
                if (len >= k && strcmp(s + len - k, kinds[i].suffix) == 0) {
                        s[len - k] = 0;
                        ret->kind = kinds[i].kind;
                        break;
                }
        }
}

static int line_add(struct diag_flame *f, char *line, unsigned lineno) {
        _cleanup_free_ struct diag_flame_frame *frames = NULL;
        unsigned long long count;
        size_t n = 0, alloc = 0;
        char *sp, *s, *tok;
        int r;

        sp = strrchr(line, ' ');
        if (!sp || diag_parse_ull(sp + 1, 10, &count) < 0) {
                fprintf(stderr, "flame-demo: line %u: no count at the end\n", lineno);
                return -EINVAL;
        }
        *sp = 0;
        for (s = line; (tok = strsep(&s, ";"));) {
                r = DIAG_GROW(frames, alloc, n + 1);
                if (r < 0)
                        return r;
                frame_parse(tok, &frames[n++]);
        }
        r = diag_flame_add(f, frames, n, count);
        if (r < 0)
                fprintf(stderr, "flame-demo: line %u: %s\n", lineno, strerror(-r));
        return r;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "folded", no_argument, NULL, 'f' },
                { "title", required_argument, NULL, 't' },
                { "subtitle", required_argument, NULL, 's' },
                {}
        };
        _cleanup_(diag_flame_freep) struct diag_flame *f = NULL;
        _cleanup_free_ char *line = NULL;
        const char *title = "flame-demo", *subtitle = "";
        bool folded = false;
        unsigned lineno = 0;
        size_t size = 0;
        ssize_t k;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'f':
                        folded = true;
                        break;
                case 't':
                        title = optarg;
                        break;
                case 's':
                        subtitle = optarg;
                        break;
                default:
                        return 2;
                }
        if (diag_flame_new(&f) < 0)
                return 1;
        while ((k = getline(&line, &size, stdin)) >= 0) {
                lineno++;
                if (k > 0 && line[k - 1] == '\n')
                        line[--k] = 0;
                if (k == 0)
                        continue;
                if (line_add(f, line, lineno) < 0)
                        return 1;
        }
        diag_flame_sort(f);
        r = folded ? diag_flame_write_folded(f, stdout) : diag_flame_write_svg(f, title, subtitle, stdout);
        if (r < 0 || fflush(stdout) != 0) {
                fprintf(stderr, "flame-demo: cannot write: %s\n", strerror(r < 0 ? -r : errno));
                return 1;
        }
        return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/flame.h"
#include "diag/util.h"

/*
 * Every parent -> child edge of the tree sits in one open-addressing hash table
 * keyed by (parent, kind, name), so adding a stack costs a lookup per frame
 * whatever the fan-out, and freeing the tree is a walk over the table (no
 * recursion however deep the stacks are).
 *
 * Frames merge by name and kind; a node keeps the first detail it was given
 * (the detail of later samples, e.g. another line of the same function, is not
 * kept).
 */

/* Deeper stacks are refused: the walks over the tree recurse once a level. */
#define MAX_DEPTH 10000

struct edge {
        struct diag_flame_node *parent, *node;
        uint64_t hash;
};

struct diag_flame {
        struct diag_flame_node root;
        struct edge *edges;             /* capacity a power of two; node NULL = free */
        size_t nedges, aedges;
        struct diag_flame_node **path;  /* diag_flame_add(): the nodes of the last stack added */
        size_t npath, apath;
};

int diag_flame_new(struct diag_flame **ret) {
        struct diag_flame *f = calloc(1, sizeof *f);

        if (!f)
                return -ENOMEM;
        f->root.name = strdup("all");
        if (!f->root.name) {
                free(f);
                return -ENOMEM;
        }
        f->root.kind = DIAG_FLAME_ROOT;
        *ret = f;
        return 0;
}

/* A node and its name are one allocation (one cache line fewer to fetch per lookup). */
static struct diag_flame_node *node_new(const char *name, enum diag_flame_kind kind) {
        size_t len = strlen(name);
        struct diag_flame_node *n = calloc(1, sizeof *n + len + 1);

        if (!n)
                return NULL;
        n->name = memcpy((char *) (n + 1), name, len + 1);
        n->kind = kind;
        return n;
}

static void node_free(struct diag_flame_node *n) {
        free(n->detail);
        free(n);
}

struct diag_flame *diag_flame_free(struct diag_flame *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->aedges; i++)
                if (f->edges[i].node)
                        node_free(f->edges[i].node);
        free(f->edges);
        free(f->path);
        free(f->root.name);
        free(f);
        return NULL;
}

size_t diag_flame_node_count(const struct diag_flame *f) {
        return f->nedges;
}

static uint64_t name_hash(const char *name) {
        uint64_t h = 0xcbf29ce484222325ULL;     /* FNV-1a */

        for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
                h ^= *p;
                h *= 0x100000001b3ULL;
        }
        return h ^ (h >> 31);
}

static uint64_t edge_hash(const struct diag_flame_node *parent, enum diag_flame_kind kind, const char *name) {
        uint64_t h = name_hash(name) ^ ((uint64_t) (uintptr_t) parent * 0x9e3779b97f4a7c15ULL) ^ (uint64_t) kind;

        return h ^ (h >> 29);
}

static void edge_put(struct edge *tab, size_t cap, const struct edge *e) {
        size_t i = e->hash & (cap - 1);

        while (tab[i].node)
                i = (i + 1) & (cap - 1);
        tab[i] = *e;
}

static int edges_grow(struct diag_flame *f) {
        size_t cap = f->aedges ? f->aedges * 2 : 256;
        struct edge *tab;

        if ((f->nedges + 1) * 2 <= f->aedges)
                return 0;
        tab = calloc(cap, sizeof *tab);
        if (!tab)
                return -ENOMEM;
        for (size_t i = 0; i < f->aedges; i++)
                if (f->edges[i].node)
                        edge_put(tab, cap, &f->edges[i]);
        free(f->edges);
        f->edges = tab;
        f->aedges = cap;
        return 0;
}

static int child_get(struct diag_flame *f, struct diag_flame_node *parent, const struct diag_flame_frame *fr,
                     struct diag_flame_node **ret) {
        const char *name = fr->name ? fr->name : "";
        uint64_t h = edge_hash(parent, fr->kind, name);
        struct diag_flame_node *n;
        int r;

        if (f->aedges)
                for (size_t i = h & (f->aedges - 1); f->edges[i].node; i = (i + 1) & (f->aedges - 1)) {
                        const struct edge *e = &f->edges[i];
                        if (e->hash == h && e->parent == parent && e->node->kind == fr->kind &&
                            strcmp(e->node->name, name) == 0) {
                                n = e->node;
                                if (!n->detail && fr->detail && !(n->detail = strdup(fr->detail)))
                                        return -ENOMEM;
                                *ret = n;
                                return 0;
                        }
                }
        r = edges_grow(f);
        if (r < 0)
                return r;
        n = node_new(name, fr->kind);
        if (!n)
                return -ENOMEM;
        if (fr->detail && !(n->detail = strdup(fr->detail))) {
                node_free(n);
                return -ENOMEM;
        }
        edge_put(f->edges, f->aedges, &(struct edge) { .parent = parent, .node = n, .hash = h });
        f->nedges++;
        n->next = parent->children;
        parent->children = n;
        *ret = n;
        return 0;
}

static bool node_is(const struct diag_flame_node *n, const struct diag_flame_frame *fr) {
        return n->kind == fr->kind && strcmp(n->name, fr->name ? fr->name : "") == 0;
}

int diag_flame_add(struct diag_flame *f, const struct diag_flame_frame *frames, size_t n, uint64_t count) {
        struct diag_flame_node *cur = &f->root;
        size_t same = 0;
        int r;

        if (n > 0 && !frames)
                return -EINVAL;
        if (n > MAX_DEPTH)
                return -E2BIG;
        if (count == 0)
                return 0;
        r = DIAG_GROW(f->path, f->apath, n + 1);
        if (r < 0)
                return r;
        /* Samples in a row mostly share their outer frames: walk the last stack's
         * nodes while they match, look up only the rest. */
        f->path[0] = cur;
        while (same < n && same < f->npath && node_is(f->path[same + 1], &frames[same])) {
                cur = f->path[same + 1];
                if (!cur->detail && frames[same].detail && !(cur->detail = strdup(frames[same].detail)))
                        return -ENOMEM;
                same++;
        }
        /* every node first, the counts after: a failed add leaves the totals as they were */
        f->npath = 0;
        for (size_t i = same; i < n; i++) {
                r = child_get(f, cur, &frames[i], &cur);
                if (r < 0)
                        return r;
                f->path[i + 1] = cur;
        }
        f->npath = n;
        for (size_t i = 0; i <= n; i++)
                f->path[i]->total += count;
        cur->self += count;
        return 0;
}

const struct diag_flame_node *diag_flame_root(const struct diag_flame *f) {
        return &f->root;
}

/* ---- sorting ---- */

static int cmp_name(const struct diag_flame_node *a, const struct diag_flame_node *b) {
        int c = strcmp(a->name, b->name);

        if (c != 0)
                return c;
        return (a->kind > b->kind) - (a->kind < b->kind);
}

static int cmp_total(const struct diag_flame_node *a, const struct diag_flame_node *b) {
        if (a->total != b->total)
                return a->total > b->total ? -1 : 1;
        return cmp_name(a, b);
}

/* Merge sort of a sibling list: stable, no allocation. */
static struct diag_flame_node *list_sort(struct diag_flame_node *head,
                                         int (*cmp)(const struct diag_flame_node *, const struct diag_flame_node *)) {
        struct diag_flame_node *a, *b, *slow, *fast, *out = NULL, **tail = &out;

        if (!head || !head->next)
                return head;
        slow = head;
        fast = head->next;
        while (fast && fast->next) {
                slow = slow->next;
                fast = fast->next->next;
        }
        b = slow->next;
        slow->next = NULL;
        a = list_sort(head, cmp);
        b = list_sort(b, cmp);
        while (a && b) {
                struct diag_flame_node **pick = cmp(b, a) < 0 ? &b : &a;
                *tail = *pick;
                tail = &(*pick)->next;
                *pick = (*pick)->next;
        }
        *tail = a ? a : b;
        return out;
}

static void sort_level(struct diag_flame_node *n) {
        n->children = list_sort(n->children, cmp_total);
        for (struct diag_flame_node *c = n->children; c; c = c->next)
                sort_level(c);
}

void diag_flame_sort(struct diag_flame *f) {
        sort_level(&f->root);
}

/* The children of n in name order, for output that does not depend on the order
 * samples came in or on whether diag_flame_sort() ran. */
static int children_by_name(const struct diag_flame_node *n, const struct diag_flame_node ***ret, size_t *ret_n) {
        _cleanup_free_ const struct diag_flame_node **t = NULL;
        const struct diag_flame_node **v;
        size_t k = 0;

        for (const struct diag_flame_node *c = n->children; c; c = c->next)
                k++;
        *ret = NULL;
        *ret_n = 0;
        if (k == 0)
                return 0;
        v = malloc(k * sizeof *v);
        t = k > 1 ? malloc(k * sizeof *t) : NULL;
        if (!v || (k > 1 && !t)) {
                free(v);
                return -ENOMEM;
        }
        k = 0;
        for (const struct diag_flame_node *c = n->children; c; c = c->next)
                v[k++] = c;
        /* bottom-up merge sort: levels can be wide */
        for (size_t w = 1; w < k; w *= 2) {
                const struct diag_flame_node **swap;
                for (size_t lo = 0; lo < k; lo += 2 * w) {
                        size_t mid = MIN(lo + w, k), hi = MIN(lo + 2 * w, k), i = lo, j = mid, o = lo;
                        while (i < mid && j < hi)
                                t[o++] = cmp_name(v[j], v[i]) < 0 ? v[j++] : v[i++];
                        while (i < mid)
                                t[o++] = v[i++];
                        while (j < hi)
                                t[o++] = v[j++];
                }
                swap = v;
                v = t;
                t = swap;
        }
        *ret = v;
        *ret_n = k;
        return 0;
}

/* ---- names in output ---- */

/* Length of the valid UTF-8 sequence at s (1-4), 0 if it is not one. Overlong
 * forms, surrogates and U+FFFE/U+FFFF (not allowed in XML) count as invalid. */
static size_t utf8_seq(const unsigned char *s) {
        uint32_t c;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                c = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                c = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                c = s[0] & 0x07;
        } else
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff) ||
            c == 0xfffe || c == 0xffff)
                return 0;
        return len;
}

#define REPLACEMENT "\xef\xbf\xbd"     /* U+FFFD */

/* A name as it goes out, one character at a time: whitespace controls become a
 * space, other controls and invalid UTF-8 U+FFFD; for folded output ';' (the
 * frame separator) becomes ':', for XML the five special characters are escaped.
 * At most max characters (SIZE_MAX: all); returns how many were written. */
enum name_out { NAME_FOLDED, NAME_XML };

static const char *xml_entity(unsigned char c) {
        static const char *const entity[] = {
                ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&apos;",
        };
        return c < ELEMENTSOF(entity) ? entity[c] : NULL;
}

static bool plain_byte(unsigned char c, enum name_out how) {
        if (c < 0x20 || c == 0x7f || c == ';')
                return false;
        return how == NAME_FOLDED || !xml_entity(c);
}

static size_t put_name(FILE *out, const char *name, enum name_out how, size_t max) {
        const unsigned char *s = (const unsigned char *) name;
        size_t chars = 0;

        while (*s && chars < max) {
                const unsigned char *run = s;
                size_t k;

                /* the common case, a run that goes out as it is, in one write */
                while (*s && chars < max) {
                        if (*s >= 0x80) {
                                k = utf8_seq(s);
                                if (k == 0)
                                        break;
                        } else if (plain_byte(*s, how))
                                k = 1;
                        else
                                break;
                        s += k;
                        chars++;
                }
                if (s > run)
                        fwrite(run, 1, (size_t) (s - run), out);
                if (!*s || chars >= max)
                        break;
                chars++;
                if (strchr("\t\n\r\v\f", *s))
                        fputc(' ', out);
                else if (*s == ';')
                        fputc(how == NAME_FOLDED ? ':' : ';', out);
                else if (xml_entity(*s))
                        fputs(xml_entity(*s), out);
                else
                        /* controls, and bytes that are not UTF-8 */
                        fputs(REPLACEMENT, out);
                s++;
        }
        return chars;
}

/* Characters in a name as put_name() writes them. */
static size_t name_chars(const char *name) {
        const unsigned char *s = (const unsigned char *) name;
        size_t chars = 0;

        while (*s) {
                size_t k = utf8_seq(s);
                s += k ? k : 1;
                chars++;
        }
        return chars;
}

static const char *shown_name(const char *name) {
        return name[0] ? name : "[unknown]";
}

static int out_status(FILE *out) {
        return ferror(out) ? -EIO : 0;
}

/* ---- collapsed stacks ---- */

struct folded {
        FILE *out;
        const struct diag_flame_node **path;    /* the frames from the top down to this one */
        size_t alloc;
};

static void folded_line(struct folded *w, size_t depth, uint64_t count) {
        for (size_t i = 1; i <= depth; i++) {
                if (i > 1)
                        fputc(';', w->out);
                put_name(w->out, shown_name(w->path[i]->name), NAME_FOLDED, SIZE_MAX);
        }
        fprintf(w->out, " %" PRIu64 "\n", count);
}

static int folded_walk(struct folded *w, const struct diag_flame_node *n, size_t depth) {
        _cleanup_free_ const struct diag_flame_node **kids = NULL;
        size_t nkids;
        int r;

        r = DIAG_GROW(w->path, w->alloc, depth + 1);
        if (r < 0)
                return r;
        w->path[depth] = n;
        if (n->self > 0) {
                if (depth > 0)
                        folded_line(w, depth, n->self);
                else
                        /* stacks added without frames: counted, so the lines add up to the total */
                        fprintf(w->out, "[no stack] %" PRIu64 "\n", n->self);
        }
        r = children_by_name(n, &kids, &nkids);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nkids; i++) {
                if (kids[i]->total == 0)
                        continue;
                r = folded_walk(w, kids[i], depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

int diag_flame_write_folded(const struct diag_flame *f, FILE *out) {
        struct folded w = { .out = out };
        int r;

        r = folded_walk(&w, &f->root, 0);
        free(w.path);
        if (r < 0)
                return r;
        return out_status(out);
}

/* ---- SVG ---- */

#define SVG_WIDTH 1200
#define SVG_PAD 10
#define SVG_GRAPH_W (SVG_WIDTH - 2 * SVG_PAD)
#define SVG_ROW 16
#define SVG_TOP 84
#define SVG_BOTTOM 34
#define SVG_CHAR_W 7.2                  /* 12px monospace */
/* Frames narrower than this share of the whole are not drawn (about 1 px). */
#define SVG_MIN_SHARE 0.001

struct svg {
        FILE *out;
        uint64_t total;
        unsigned max_depth;
        uint64_t omitted_frames, omitted_samples;
};

static bool drawn(const struct svg *s, const struct diag_flame_node *n) {
        return n->total > 0 && (double) n->total >= SVG_MIN_SHARE * (double) s->total;
}

/* The depth of the deepest drawn frame, and what is left out. */
static void svg_measure(struct svg *s, const struct diag_flame_node *n, unsigned depth) {
        s->max_depth = MAX(s->max_depth, depth);
        for (const struct diag_flame_node *c = n->children; c; c = c->next) {
                if (c->total == 0)
                        continue;
                if (!drawn(s, c)) {
                        s->omitted_frames++;
                        s->omitted_samples += c->total;
                        continue;
                }
                svg_measure(s, c, depth + 1);
        }
}

/* Stable colours: the same function has the same colour in every graph. */
static void frame_colour(const struct diag_flame_node *n, char *buf, size_t size) {
        uint64_t h = name_hash(n->name);
        unsigned a = h & 0xff, b = (h >> 8) & 0xff;
        unsigned r, g, bl;

        switch (n->kind) {
        case DIAG_FLAME_PYTHON:         /* blue-green */
                r = 40 + a * 70 / 255;
                g = 150 + b * 60 / 255;
                bl = 150 + a * 70 / 255;
                break;
        case DIAG_FLAME_KERNEL:         /* orange */
                r = 235 + a * 20 / 255;
                g = 130 + b * 45 / 255;
                bl = 20 + a * 40 / 255;
                break;
        case DIAG_FLAME_ROOT:           /* grey */
                r = g = bl = 175 + a * 30 / 255;
                break;
        case DIAG_FLAME_NATIVE:         /* warm: red to red-orange */
        default:
                r = 200 + a * 55 / 255;
                g = 40 + b * 80 / 255;
                bl = 40 + a * 30 / 255;
                break;
        }
        snprintf(buf, size, "rgb(%u,%u,%u)", r, g, bl);
}

static const char *kind_class(enum diag_flame_kind k) {
        static const char *const name[] = {
                [DIAG_FLAME_NATIVE] = "native",
                [DIAG_FLAME_PYTHON] = "python",
                [DIAG_FLAME_KERNEL] = "kernel",
                [DIAG_FLAME_ROOT] = "root",
        };
        return (unsigned) k < ELEMENTSOF(name) && name[k] ? name[k] : "native";
}

static void svg_label(FILE *out, const char *name, double w) {
        double fit = (w - 6) / SVG_CHAR_W;
        size_t chars;

        if (fit < 3)
                return;
        chars = name_chars(name);
        if ((double) chars <= fit) {
                put_name(out, name, NAME_XML, SIZE_MAX);
                return;
        }
        put_name(out, name, NAME_XML, (size_t) fit - 2);
        fputs("..", out);
}

static int svg_frame(struct svg *s, const struct diag_flame_node *n, uint64_t start, unsigned depth) {
        _cleanup_free_ const struct diag_flame_node **kids = NULL;
        const char *name = shown_name(n->name);
        double x = SVG_PAD + (double) start / (double) s->total * SVG_GRAPH_W;
        double w = (double) n->total / (double) s->total * SVG_GRAPH_W;
        unsigned y = SVG_TOP + (s->max_depth - depth) * SVG_ROW;
        size_t nkids;
        char colour[32];
        int r;

        frame_colour(n, colour, sizeof colour);
        fprintf(s->out, "<g class=\"f %s\" data-s=\"%" PRIu64 "\" data-n=\"%" PRIu64 "\" data-d=\"%u\"", kind_class(n->kind),
                start, n->total, depth);
        if (depth == 0)
                fprintf(s->out, " data-omitted-frames=\"%" PRIu64 "\" data-omitted-samples=\"%" PRIu64 "\"", s->omitted_frames,
                        s->omitted_samples);
        fputs("><title>", s->out);
        put_name(s->out, name, NAME_XML, SIZE_MAX);
        if (n->detail && n->detail[0]) {
                fputc('\n', s->out);
                put_name(s->out, n->detail, NAME_XML, SIZE_MAX);
        }
        fprintf(s->out, "\n%" PRIu64 " sample%s, %.2f %%", n->total, n->total == 1 ? "" : "s",
                100.0 * (double) n->total / (double) s->total);
        if (n->self > 0 && n->self != n->total)
                fprintf(s->out, " (self %" PRIu64 ")", n->self);
        if (depth == 0 && s->omitted_frames > 0)
                fprintf(s->out, "\n%" PRIu64 " frame%s under %.1f %% not drawn (%" PRIu64 " samples)", s->omitted_frames,
                        s->omitted_frames == 1 ? "" : "s", SVG_MIN_SHARE * 100, s->omitted_samples);
        fprintf(s->out, "</title><rect x=\"%.2f\" y=\"%u\" width=\"%.2f\" height=\"%u\" fill=\"%s\"/>"
                        "<text x=\"%.2f\" y=\"%u\">", x, y, w, SVG_ROW - 1, colour, x + 3, y + SVG_ROW - 4);
        svg_label(s->out, name, w);
        fputs("</text></g>\n", s->out);

        r = children_by_name(n, &kids, &nkids);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nkids; i++) {
                if (drawn(s, kids[i])) {
                        r = svg_frame(s, kids[i], start, depth + 1);
                        if (r < 0)
                                return r;
                }
                start += kids[i]->total;
        }
        return 0;
}

#define STR_(x) #x
#define STR(x) STR_(x)

/* The viewer: zoom, search, hover details and the URL hash
 * ("#zoom=NAME&search=REGEX", applied at load and kept up to date). It goes in
 * a CDATA section: it must never contain "]]>". */
static const char svg_script[] =
        "(function () {\n"
        "'use strict';\n"
        "var X0 = " STR(SVG_PAD) ", W = " STR(SVG_GRAPH_W) ", CW = " STR(SVG_CHAR_W) ";\n"
        "var svg = document.documentElement;\n"
        "var total = Number(svg.getAttribute('data-total'));\n"
        "var frames = Array.prototype.map.call(document.querySelectorAll('g.f'), function (g) {\n"
        "  return { g: g, s: Number(g.getAttribute('data-s')), n: Number(g.getAttribute('data-n')),\n"
        "           d: Number(g.getAttribute('data-d')), name: g.querySelector('title').textContent.split('\\n')[0],\n"
        "           rect: g.querySelector('rect'), text: g.querySelector('text') };\n"
        "});\n"
        "var byG = new Map(frames.map(function (f) { return [f.g, f]; }));\n"
        "var search = document.getElementById('search');\n"
        "var matched = document.getElementById('matched');\n"
        "var details = document.getElementById('details');\n"
        "var reset = document.getElementById('reset');\n"
        "var zoomed = null, query = '';\n"
        "var rootFrame = document.querySelector('g.f');\n"
        "var omitted = rootFrame ? Number(rootFrame.getAttribute('data-omitted-frames')) : 0;\n"
        "function label(name, w) {\n"
        "  var c = Array.from(name), fit = Math.floor((w - 6) / CW);\n"
        "  if (fit < 3) return '';\n"
        "  return c.length > fit ? c.slice(0, fit - 2).join('') + '..' : name;\n"
        "}\n"
        "function place(f, x, w) {\n"
        "  f.rect.setAttribute('x', x.toFixed(2));\n"
        "  f.rect.setAttribute('width', w.toFixed(2));\n"
        "  f.text.setAttribute('x', (x + 3).toFixed(2));\n"
        "  f.text.textContent = label(f.name, w);\n"
        "}\n"
        "function pct(n) { return (total ? 100 * n / total : 0).toFixed(2) + ' %'; }\n"
        "function zoom(z) {\n"
        "  zoomed = z;\n"
        "  frames.forEach(function (f) {\n"
        "    var inside = z === null || (f.d >= z.d && f.s >= z.s && f.s + f.n <= z.s + z.n);\n"
        "    var above = z !== null && f.d < z.d && f.s <= z.s && f.s + f.n >= z.s + z.n;\n"
        "    f.g.classList.toggle('hidden', !inside && !above);\n"
        "    f.g.classList.toggle('parent', above);\n"
        "    if (above) place(f, X0, W);\n"
        "    else if (inside) {\n"
        "      var base = z === null ? { s: 0, n: total } : z;\n"
        "      place(f, X0 + (f.s - base.s) / base.n * W, f.n / base.n * W);\n"
        "    }\n"
        "  });\n"
        "  reset.classList.toggle('hidden', z === null);\n"
        "  svg.setAttribute('data-zoom', z === null ? '' : z.name);\n"
        "  keepHash();\n"
        "}\n"
        "function find(name) {\n"
        "  var best = null;\n"
        "  frames.forEach(function (f) {\n"
        "    if (f.name === name) {\n"
        "      if (best === null || f.n > best.n || (f.n === best.n && f.d < best.d)) best = f;\n"
        "    }\n"
        "  });\n"
        "  return best;\n"
        "}\n"
        "function find_search(q) {\n"
        "  var re = null;\n"
        "  query = q;\n"
        "  if (q !== '') {\n"
        "    try { re = new RegExp(q); } catch (e) { re = null; }\n"
        "  }\n"
        "  var hits = [];\n"
        "  frames.forEach(function (f) {\n"
        "    var m = re !== null && re.test(f.name);\n"
        "    f.g.classList.toggle('match', m);\n"
        "    if (m) hits.push([f.s, f.s + f.n]);\n"
        "  });\n"
        "  /* nested matches count once: the union of the matched ranges */\n"
        "  hits.sort(function (a, b) { return a[0] - b[0]; });\n"
        "  var sum = 0, end = -1;\n"
        "  hits.forEach(function (h) {\n"
        "    if (h[0] >= end) { sum += h[1] - h[0]; end = h[1]; }\n"
        "    else if (h[1] > end) { sum += h[1] - end; end = h[1]; }\n"
        "  });\n"
        "  matched.setAttribute('data-samples', String(sum));\n"
        "  if (q === '') matched.textContent = '';\n"
        "  else if (re === null) matched.textContent = 'Invalid regular expression';\n"
        "  else matched.textContent = 'Matched: ' + pct(sum) + ' (' + sum + ' of ' + total + ' samples' +\n"
        "    (omitted ? '; ' + omitted + ' small frame' + (omitted === 1 ? '' : 's') + ' not searched' : '') + ')';\n"
        "  search.setAttribute('value', q);\n"
        "  if (search.value !== q) search.value = q;\n"
        "  keepHash();\n"
        "}\n"
        "function keepHash() {\n"
        "  var parts = [];\n"
        "  if (zoomed !== null) parts.push('zoom=' + encodeURIComponent(zoomed.name));\n"
        "  if (query !== '') parts.push('search=' + encodeURIComponent(query));\n"
        "  try { history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname + location.search); }\n"
        "  catch (e) { /* a file: URL in some browsers */ }\n"
        "}\n"
        "function frameOf(ev) {\n"
        "  var g = ev.target.closest ? ev.target.closest('g.f') : null;\n"
        "  return g ? byG.get(g) : undefined;\n"
        "}\n"
        "var layer = document.getElementById('frames');\n"
        "layer.addEventListener('click', function (ev) {\n"
        "  var f = frameOf(ev);\n"
        "  if (f) zoom(f.d === 0 ? null : f);\n"
        "});\n"
        "layer.addEventListener('mouseover', function (ev) {\n"
        "  var f = frameOf(ev);\n"
        "  if (f) details.textContent = f.name + ' (' + f.n + ' samples, ' + pct(f.n) + ')';\n"
        "});\n"
        "layer.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
        "reset.addEventListener('click', function () { zoom(null); });\n"
        "search.addEventListener('input', function () { find_search(search.value); });\n"
        "document.addEventListener('keydown', function (ev) {\n"
        "  if (ev.key === 'Escape') { zoom(null); find_search(''); }\n"
        "  else if ((ev.ctrlKey || ev.metaKey) && ev.key === 'f') { ev.preventDefault(); search.focus(); }\n"
        "});\n"
        "var want = {};\n"
        "location.hash.slice(1).split('&').forEach(function (kv) {\n"
        "  var i = kv.indexOf('=');\n"
        "  if (i > 0) {\n"
        "    try { want[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); } catch (e) { /* bad escape */ }\n"
        "  }\n"
        "});\n"
        "if (want.zoom !== undefined) { var z = find(want.zoom); if (z) zoom(z.d === 0 ? null : z); }\n"
        "if (want.search !== undefined) find_search(want.search);\n"
        "svg.setAttribute('data-ready', '1');\n"
        "})();\n";

static const char svg_style[] =
        "text { font-family: monospace; font-size: 12px; fill: #000; }\n"
        "#title { font-size: 17px; font-weight: bold; }\n"
        "#subtitle { fill: #555; }\n"
        "#frames { cursor: pointer; }\n"
        "g.f rect { stroke: #fff; stroke-width: 0.5; }\n"
        "g.f text { pointer-events: none; }\n"
        "g.f:hover rect { stroke: #000; stroke-width: 1; }\n"
        "g.match rect { fill: rgb(220,0,220); }\n"
        "g.parent rect { opacity: 0.5; }\n"
        ".hidden { display: none; }\n"
        ".button { cursor: pointer; fill: #036; text-decoration: underline; }\n"
        "input { width: 100%; box-sizing: border-box; font: 12px monospace; }\n";

static void put_text(FILE *out, const char *s) {
        put_name(out, s ? s : "", NAME_XML, SIZE_MAX);
}

int diag_flame_write_svg(const struct diag_flame *f, const char *title, const char *subtitle, FILE *out) {
        struct svg s = { .out = out, .total = f->root.total };
        unsigned height;
        int r;

        if (s.total > 0)
                svg_measure(&s, &f->root, 0);
        height = SVG_TOP + (s.max_depth + 1) * SVG_ROW + SVG_BOTTOM;

        fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
                     "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%u\" "
                     "viewBox=\"0 0 %d %u\" data-total=\"%" PRIu64 "\" data-min-share=\"%g\">\n",
                SVG_WIDTH, height, SVG_WIDTH, height, s.total, SVG_MIN_SHARE);
        fprintf(out, "<style>\n%s</style>\n", svg_style);
        fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%u\" fill=\"#f6f6f2\"/>\n", SVG_WIDTH, height);
        fprintf(out, "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">", SVG_WIDTH / 2);
        put_text(out, title);
        fprintf(out, "</text>\n<text id=\"subtitle\" x=\"%d\" y=\"44\" text-anchor=\"middle\">", SVG_WIDTH / 2);
        put_text(out, subtitle);
        fputs("</text>\n", out);
        fprintf(out, "<text id=\"reset\" class=\"button hidden\" x=\"%d\" y=\"70\">Reset zoom</text>\n", SVG_PAD);
        fprintf(out, "<foreignObject x=\"%d\" y=\"54\" width=\"300\" height=\"22\">"
                     "<input xmlns=\"http://www.w3.org/1999/xhtml\" id=\"search\" type=\"search\" "
                     "placeholder=\"Search (regular expression)\"/></foreignObject>\n",
                SVG_WIDTH - SVG_PAD - 300);
        fputs("<g id=\"frames\">\n", out);
        if (s.total > 0) {
                r = svg_frame(&s, &f->root, 0, 0);
                if (r < 0)
                        return r;
        } else
                fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no samples</text>\n", SVG_WIDTH / 2,
                        SVG_TOP + SVG_ROW);
        fputs("</g>\n", out);
        fprintf(out, "<text id=\"details\" x=\"%d\" y=\"%u\"> </text>\n", SVG_PAD, height - 12);
        fprintf(out, "<text id=\"matched\" x=\"%d\" y=\"%u\" text-anchor=\"end\"></text>\n", SVG_WIDTH - SVG_PAD, height - 12);
        fprintf(out, "<script type=\"text/javascript\"><![CDATA[\n%s]]></script>\n</svg>\n", svg_script);
        return out_status(out);
}

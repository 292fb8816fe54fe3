/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "diag/log.h"
#include "diag/out.h"

static void unref_tablep(struct libscols_table **tb) {
        scols_unref_table(*tb);
}
#define _cleanup_table_ _cleanup_(unref_tablep)

static void json_putp(struct json_object **o) {
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

/* Writes are checked one by one so that errno still belongs to the failed write
 * when we report it; a final fflush catches what a buffered stream held back. */
static int write_str(FILE *f, const char *s) {
        if (fputs(s, f) == EOF)
                return negative_errno();
        return 0;
}

static int flush_checked(FILE *f) {
        if (fflush(f) != 0)
                return negative_errno();
        /* An earlier failure whose errno we no longer know. */
        if (ferror(f))
                return -EIO;
        return 0;
}

/* ---- columns ---- */

static int column_lookup(const struct diag_column *all, size_t nall, const char *name, size_t len) {
        for (size_t i = 0; i < nall; i++)
                if (strncasecmp(all[i].name, name, len) == 0 && all[i].name[len] == '\0')
                        return (int) i;
        return -1;
}

/* Parse one -o style list into ids[] and n: "+A,B" appends, "A,B" replaces. */
static int parse_column_list(const char *list, const struct diag_column *all, size_t nall,
                             int *ids, size_t *n, char **ret_bad) {
        const char *p = list;

        if (*p == '+')
                p++;
        else
                *n = 0;

        for (;;) {
                size_t len = strcspn(p, ",");
                int id = len > 0 ? column_lookup(all, nall, p, len) : -1;

                if (id < 0) {
                        if (ret_bad) {
                                *ret_bad = strndup(p, len);
                                if (!*ret_bad)
                                        return -ENOMEM;
                        }
                        return -EINVAL;
                }
                if (*n >= DIAG_MAX_COLUMNS)
                        return -E2BIG;
                ids[(*n)++] = id;
                if (p[len] == '\0')
                        return 0;
                p += len + 1;
        }
}

int diag_columns_select(struct diag_columns *c, const struct diag_column *all, size_t nall,
                        const int *defaults, size_t ndefaults, const char *env,
                        const char *output, bool output_all, char **ret_bad) {
        int ids[DIAG_MAX_COLUMNS];
        size_t n = 0;
        const char *envval;
        int r;

        if (ret_bad)
                *ret_bad = NULL;
        if (!c || (!all && nall > 0) || (!defaults && ndefaults > 0))
                return -EINVAL;

        if (ndefaults > DIAG_MAX_COLUMNS)
                return -E2BIG;
        for (size_t i = 0; i < ndefaults; i++) {
                if (defaults[i] < 0 || (size_t) defaults[i] >= nall)
                        return -EINVAL;
                ids[n++] = defaults[i];
        }

        /* The environment changes what "the defaults" are, so a "+A" given to -o
         * still appends to what the user configured there. */
        envval = env ? getenv(env) : NULL;
        if (envval && *envval) {
                r = parse_column_list(envval, all, nall, ids, &n, ret_bad);
                if (r < 0)
                        return r;
        }

        if (output) {
                r = parse_column_list(output, all, nall, ids, &n, ret_bad);
                if (r < 0)
                        return r;
        }

        /* --output-all wins, but a typo in -o is still reported above. */
        if (output_all) {
                if (nall > DIAG_MAX_COLUMNS)
                        return -E2BIG;
                for (n = 0; n < nall; n++)
                        ids[n] = (int) n;
        }

        c->all = all;
        c->nall = nall;
        c->n = n;
        memcpy(c->ids, ids, n * sizeof(ids[0]));
        return 0;
}

unsigned diag_columns_need(const struct diag_columns *c) {
        unsigned need = 0;

        for (size_t i = 0; i < c->n; i++)
                need |= c->all[c->ids[i]].need;
        return need;
}

int diag_columns_pos(const struct diag_columns *c, int id) {
        for (size_t i = 0; i < c->n; i++)
                if (c->ids[i] == id)
                        return (int) i;
        return -1;
}

static const char *column_type_name(enum diag_col_json t) {
        switch (t) {
        case DIAG_COL_NUMBER:
                return "number";
        case DIAG_COL_BOOLEAN:
                return "boolean";
        case DIAG_COL_ARRAY:
                return "array";
        case DIAG_COL_STRING:
        default:
                return "string";
        }
}

static int columns_list_json(FILE *f, const struct diag_column *all, size_t nall) {
        _cleanup_json_ struct json_object *root = json_object_new_object();
        struct json_object *arr = json_object_new_array();

        if (!root || !arr) {
                json_object_put(arr);
                return -ENOMEM;
        }
        if (json_object_object_add(root, "columns", arr) < 0) {
                json_object_put(arr);
                return -ENOMEM;
        }

        for (size_t i = 0; i < nall; i++) {
                _cleanup_free_ char *type = NULL;
                struct json_object *o = json_object_new_object();

                if (!o || json_object_array_add(arr, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                if (asprintf(&type, "<%s>", column_type_name(all[i].json)) < 0) {
                        type = NULL;
                        return -ENOMEM;
                }
                if (json_object_object_add(o, "id", diag_json_str(all[i].name)) < 0 ||
                    json_object_object_add(o, "type", diag_json_str(type)) < 0 ||
                    json_object_object_add(o, "description", diag_json_str(all[i].help)) < 0)
                        return -ENOMEM;
        }

        return diag_json_print(f, root);
}

int diag_columns_list(FILE *f, const struct diag_column *all, size_t nall, bool json) {
        int width = 0;

        if (!f || (!all && nall > 0))
                return -EINVAL;
        if (json)
                return columns_list_json(f, all, nall);

        for (size_t i = 0; i < nall; i++)
                width = MAX(width, (int) strlen(all[i].name));
        for (size_t i = 0; i < nall; i++)
                if (fprintf(f, "%*s  <%s>  %s\n", width, all[i].name,
                            column_type_name(all[i].json), all[i].help ? all[i].help : "") < 0)
                        return negative_errno();
        return flush_checked(f);
}

/* ---- tables ---- */

struct libscols_table *diag_table_new(const struct diag_columns *c, const struct diag_outopts *o,
                                      const char *name) {
        _cleanup_table_ struct libscols_table *tb = NULL;

        if (!c || !o) {
                errno = EINVAL;
                return NULL;
        }

        tb = scols_new_table();
        if (!tb) {
                errno = ENOMEM;
                return NULL;
        }
        if ((name && scols_table_set_name(tb, name) < 0) ||
            scols_table_enable_json(tb, o->json) < 0 ||
            scols_table_enable_raw(tb, o->raw) < 0 ||
            scols_table_enable_noheadings(tb, o->noheadings) < 0) {
                errno = ENOMEM;
                return NULL;
        }

        for (size_t i = 0; i < c->n; i++) {
                const struct diag_column *col = &c->all[c->ids[i]];
                struct libscols_column *cl;
                int flags = col->flags, jtype = SCOLS_JSON_STRING;

                switch (col->json) {
                case DIAG_COL_NUMBER:
                        jtype = SCOLS_JSON_NUMBER;
                        break;
                case DIAG_COL_BOOLEAN:
                        jtype = SCOLS_JSON_BOOLEAN;
                        break;
                case DIAG_COL_ARRAY:
                        /* Like lsblk MOUNTPOINTS: one element per line in the
                         * table, split into a JSON array of strings by smartcols. */
                        jtype = SCOLS_JSON_ARRAY_STRING;
                        flags |= SCOLS_FL_WRAP;
                        break;
                case DIAG_COL_STRING:
                default:
                        break;
                }

                cl = scols_table_new_column(tb, col->name, col->whint, flags);
                if (!cl) {
                        errno = ENOMEM;
                        return NULL;
                }
                if (scols_column_set_json_type(cl, jtype) < 0) {
                        errno = EINVAL;
                        return NULL;
                }
                /* Without "\n" as a safe char smartcols would print it as
                 * "\x0a"; raw output keeps that so one record stays one line. */
                if (col->json == DIAG_COL_ARRAY &&
                    (scols_column_set_wrapfunc(cl, scols_wrapnl_chunksize,
                                               scols_wrapnl_nextchunk, NULL) < 0 ||
                     (!o->raw && scols_column_set_safechars(cl, "\n") < 0))) {
                        errno = ENOMEM;
                        return NULL;
                }
        }

        return TAKE_PTR(tb);
}

int diag_table_set(struct libscols_line *ln, const struct diag_columns *c, int id,
                   const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;

        if (!ln || !c)
                return -EINVAL;
        if (diag_columns_pos(c, id) < 0)
                return 0;

        if (fmt) {
                int r;

                va_start(ap, fmt);
                r = vasprintf(&s, fmt, ap);
                va_end(ap);
                if (r < 0) {
                        s = NULL;
                        return -ENOMEM;
                }
        }

        /* A column may be selected more than once (-o A,A), like util-linux. */
        for (size_t i = 0; i < c->n; i++) {
                if (c->ids[i] != id)
                        continue;
                if (scols_line_set_data(ln, i, s) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int diag_table_print_to(FILE *f, struct libscols_table *tb) {
        _cleanup_free_ char *data = NULL;
        int r;

        if (!f || !tb)
                return -EINVAL;

        /* Render into memory first: smartcols does not report failed writes, and
         * its terminal probing would leave a misleading errno behind. */
        r = scols_print_table_to_string(tb, &data);
        if (r < 0)
                return r;
        if (data) {
                r = write_str(f, data);
                if (r < 0)
                        return r;
                /* to_string leaves out the newline that ends a text table's
                 * last line (JSON output has it). */
                if (*data && data[strlen(data) - 1] != '\n') {
                        r = write_str(f, "\n");
                        if (r < 0)
                                return r;
                }
        }
        return flush_checked(f);
}

int diag_table_print(struct libscols_table *tb) {
        return diag_table_print_to(stdout, tb);
}

int diag_outopts_parse(int c, const char *arg, struct diag_outopts *o, const char **output,
                       bool *output_all, bool *list_columns) {
        switch (c) {
        case 'J':
                o->json = true;
                return 1;
        case 'r':
                o->raw = true;
                return 1;
        case 'n':
                o->noheadings = true;
                return 1;
        case 'o':
                *output = arg;
                return 1;
        case DIAG_OPT_OUTPUT_ALL:
                *output_all = true;
                return 1;
        case 'H':
                *list_columns = true;
                return 1;
        default:
                return 0;
        }
}

void diag_outopts_help(FILE *f) {
        static const char *const lines[][2] = {
                { "-H, --list-columns", "list the available columns" },
                { "-J, --json", "use JSON output format" },
                { "-n, --noheadings", "don't print headings" },
                { "-o, --output <list>", "output columns (see --list-columns)" },
                { "    --output-all", "output all available columns" },
                { "-r, --raw", "use the raw output format" },
        };

        for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                fprintf(f, " %-24s %s\n", lines[i][0], lines[i][1]);
}

/* ---- JSON ---- */

int diag_json_print(FILE *f, struct json_object *obj) {
        const char *s;
        int r;

        if (!f)
                return -EINVAL;
        /* Two-space indent and "key": value, close to what lsblk -J prints. */
        s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        r = write_str(f, s);
        if (r < 0)
                return r;
        r = write_str(f, "\n");
        if (r < 0)
                return r;
        return flush_checked(f);
}

struct json_object *diag_json_str(const char *s) {
        /* json-c represents JSON null as a NULL object. */
        return s ? json_object_new_string(s) : NULL;
}

struct json_object *diag_json_hex(uint64_t v) {
        char buf[sizeof("0x") + 16];

        snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long) v);
        return json_object_new_string(buf);
}

/* ---- text trees ---- */

static struct diag_tree *tree_newv(const char *fmt, va_list ap) _printf_(1, 0);
static struct diag_tree *tree_newv(const char *fmt, va_list ap) {
        struct diag_tree *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        if (vasprintf(&t->text, fmt ? fmt : "", ap) < 0) {
                free(t);
                return NULL;
        }
        return t;
}

struct diag_tree *diag_tree_new(const char *fmt, ...) {
        struct diag_tree *t;
        va_list ap;

        va_start(ap, fmt);
        t = tree_newv(fmt, ap);
        va_end(ap);
        return t;
}

struct diag_tree *diag_tree_add(struct diag_tree *parent, const char *fmt, ...) {
        struct diag_tree *t;
        va_list ap;

        if (!parent) {
                errno = EINVAL;
                return NULL;
        }
        /* Grow first so a failure leaves the parent as it was. */
        if (DIAG_GROW(parent->kids, parent->alloc, parent->nkids + 1) < 0)
                return NULL;

        va_start(ap, fmt);
        t = tree_newv(fmt, ap);
        va_end(ap);
        if (!t)
                return NULL;

        parent->kids[parent->nkids++] = t;
        return t;
}

struct tree_glyphs {
        const char *branch, *last, *bar, *space;
};

static const struct tree_glyphs glyphs_utf8 = { "├─ ", "└─ ", "│  ", "   " };
static const struct tree_glyphs glyphs_ascii = { "|- ", "`- ", "|  ", "   " };

/* One output line: prefix + text; for an empty text the prefix loses its
 * trailing blanks so no line ends in spaces. */
static int tree_line(FILE *f, const char *prefix, const char *conn, const char *text, size_t len) {
        if (len == 0 && !*conn) {
                size_t plen = strlen(prefix);

                while (plen > 0 && prefix[plen - 1] == ' ')
                        plen--;
                if (fprintf(f, "%.*s\n", (int) plen, prefix) < 0)
                        return negative_errno();
                return 0;
        }
        if (fprintf(f, "%s%s%.*s\n", prefix, conn, (int) len, text) < 0)
                return negative_errno();
        return 0;
}

static int tree_print_node(FILE *f, const struct diag_tree *t, const char *prefix, bool root,
                           bool last, const struct tree_glyphs *g) {
        _cleanup_free_ char *kid_prefix = NULL;
        const char *p = t->text ? t->text : "";
        size_t len = strcspn(p, "\n");
        int r;

        r = tree_line(f, prefix, root ? "" : last ? g->last : g->branch, p, len);
        if (r < 0)
                return r;

        /* Below a node (its further text lines and its kids) the column of its
         * connector carries on as a bar only if a sibling follows. */
        if (asprintf(&kid_prefix, "%s%s", prefix, root ? "" : last ? g->space : g->bar) < 0) {
                kid_prefix = NULL;
                return -ENOMEM;
        }

        while (p[len] == '\n') {
                p += len + 1;
                len = strcspn(p, "\n");
                /* A trailing newline ends the text, it does not add a line. */
                if (len == 0 && p[len] == '\0')
                        break;
                r = tree_line(f, kid_prefix, "", p, len);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < t->nkids; i++) {
                r = tree_print_node(f, t->kids[i], kid_prefix, false, i + 1 == t->nkids, g);
                if (r < 0)
                        return r;
        }
        return 0;
}

int diag_tree_print(FILE *f, const struct diag_tree *root, bool ascii) {
        int r;

        if (!f || !root)
                return -EINVAL;
        r = tree_print_node(f, root, "", true, true, ascii ? &glyphs_ascii : &glyphs_utf8);
        if (r < 0)
                return r;
        return flush_checked(f);
}

void diag_tree_free(struct diag_tree *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->nkids; i++)
                diag_tree_free(t->kids[i]);
        free(t->kids);
        free(t->text);
        free(t);
}

bool diag_common_option(int c, const char *arg, struct diag_outopts *o, const char **output,
                        bool *output_all, bool *list_columns, void (*usage)(void), int *ret_exit) {
        *ret_exit = -1;
        if (diag_outopts_parse(c, arg, o, output, output_all, list_columns))
                return true;
        return diag_std_option(c, usage, ret_exit);
}

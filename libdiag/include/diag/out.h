/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>
#include <libsmartcols.h>

#include "diag/util.h"

/*
 * Output: column tables (libsmartcols, util-linux conventions), JSON documents
 * (json-c) and text trees. Renderers only format what collectors filled in.
 */

/* ---- columns: one table per tool drives -o, --output-all, -H, -J, -r, -n ---- */

enum diag_col_json {
        DIAG_COL_STRING = 0,
        DIAG_COL_NUMBER,
        DIAG_COL_BOOLEAN,
        DIAG_COL_ARRAY,         /* newline-separated cell shown as a JSON array of strings */
};

struct diag_column {
        const char *name;       /* upper case, e.g. "TID" */
        double whint;           /* libsmartcols width hint (<1: fraction of terminal) */
        int flags;              /* SCOLS_FL_RIGHT, SCOLS_FL_TRUNC, SCOLS_FL_WRAP ... */
        enum diag_col_json json;
        unsigned need;          /* tool-defined bits: what the collector must read for it */
        const char *help;       /* one line for -H and --help */
};

#define DIAG_MAX_COLUMNS 64

struct diag_columns {
        const struct diag_column *all;
        size_t nall;
        size_t n;
        int ids[DIAG_MAX_COLUMNS];      /* indexes into all[] in display order */
};

/*
 * Select columns. defaults: indexes shown when nothing else is asked for.
 * env: name of the <TOOL>_COLUMNS environment variable (may be NULL), used in place
 * of the defaults when set. output: the -o argument or NULL: "A,B" replaces,
 * "+A,B" appends to the defaults. output_all: every column.
 * Names are case-insensitive. On an unknown name returns -EINVAL and points
 * *ret_bad (if non-NULL) at a malloc'd copy of the bad name.
 * Also: an empty env variable counts as unset; output_all wins over env and output
 * (output is still checked for unknown names); a column may be listed twice; more
 * than DIAG_MAX_COLUMNS gives -E2BIG. On error *c is left unchanged.
 */
int diag_columns_select(struct diag_columns *c, const struct diag_column *all, size_t nall,
                        const int *defaults, size_t ndefaults, const char *env,
                        const char *output, bool output_all, char **ret_bad);
/* OR of the need bits of the selected columns. */
unsigned diag_columns_need(const struct diag_columns *c);
/* Position of column id in the selection, or -1 if not shown. */
int diag_columns_pos(const struct diag_columns *c, int id);
/* -H/--list-columns: "NAME  <type>  help" lines like util-linux, or a JSON
 * document {"columns":[{"id":..,"type":..,"description":..}]} when json. */
int diag_columns_list(FILE *f, const struct diag_column *all, size_t nall, bool json);

/* Common table options of every tool. */
struct diag_outopts {
        bool json;              /* -J/--json */
        bool raw;               /* -r/--raw */
        bool noheadings;        /* -n/--noheadings */
};

/* A table with the selected columns set up; name is the JSON array name. */
struct libscols_table *diag_table_new(const struct diag_columns *c, const struct diag_outopts *o,
                                      const char *name);
/* Set cell for column id (not shown: no-op) from printf format. NULL fmt = empty.
 * An ARRAY cell holds one element per line; note that libsmartcols 2.38 prints an
 * empty ARRAY cell as [null] in JSON, and empty string/number cells as null. */
int diag_table_set(struct libscols_line *ln, const struct diag_columns *c, int id,
                   const char *fmt, ...) _printf_(4, 5);
/* Print the table to stdout; returns 0 or negative errno of a failed write. */
int diag_table_print(struct libscols_table *tb);
/* Same, to f (tests, or a tool writing to a file); f is flushed. */
int diag_table_print_to(FILE *f, struct libscols_table *tb);

/*
 * The common table options, parsed in one place. In a tool:
 *
 *   static const struct option longopts[] = { DIAG_OUT_LONGOPTS, {"pid", ...}, {} };
 *   getopt_long(argc, argv, DIAG_OUT_SHORTOPTS "p:h", longopts, NULL);
 *   if (diag_outopts_parse(c, optarg, &o, &output, &output_all, &list_columns)) continue;
 *
 * Tools number their own long-only options from 0x100; DIAG_OPT_* stay far above.
 */
enum {
        DIAG_OPT_OUTPUT_ALL = 0x4000,
};
#define DIAG_OUT_SHORTOPTS "Jrno:H"
#define DIAG_OUT_LONGOPTS \
        { "json",         no_argument,       NULL, 'J' }, \
        { "raw",          no_argument,       NULL, 'r' }, \
        { "noheadings",   no_argument,       NULL, 'n' }, \
        { "output",       required_argument, NULL, 'o' }, \
        { "output-all",   no_argument,       NULL, DIAG_OPT_OUTPUT_ALL }, \
        { "list-columns", no_argument,       NULL, 'H' }
/* Returns 1 if c was one of the options above (and records it), 0 if not.
 * output gets the -o argument as given (not copied: it points into argv). */
int diag_outopts_parse(int c, const char *arg, struct diag_outopts *o, const char **output,
                       bool *output_all, bool *list_columns);
/* The --help lines for these options; descriptions start at column 27 so a
 * tool's own lines align when written as " %-24s %s\n". */
void diag_outopts_help(FILE *f);

/* The table options and -v/-h/-V together, for a tool's getopt loop: true when
 * c was one of them; then *ret_exit is -1 to go on, or the status to exit with. */
bool diag_common_option(int c, const char *arg, struct diag_outopts *o, const char **output,
                        bool *output_all, bool *list_columns, void (*usage)(void), int *ret_exit);

/* ---- JSON ---- */

/* Print obj to f, pretty, newline-terminated; negative errno on write failure. */
int diag_json_print(FILE *f, struct json_object *obj);
/* Small constructors that tolerate NULL strings (-> JSON null). */
struct json_object *diag_json_str(const char *s);
struct json_object *diag_json_hex(uint64_t v);     /* "0x7f12..." */

/* ---- text trees ---- */

struct diag_tree {
        char *text;
        struct diag_tree **kids;
        size_t nkids, alloc;
};

struct diag_tree *diag_tree_new(const char *fmt, ...) _printf_(1, 2);
/* Append a child; returns it (NULL on ENOMEM, and the parent is unchanged). */
struct diag_tree *diag_tree_add(struct diag_tree *parent, const char *fmt, ...) _printf_(2, 3);
/* Print with "├─ └─ │ " (ascii: "|- `- | ") connectors; the root is printed unindented.
 * Lines after the first of a multi-line text continue under the node's first line. */
int diag_tree_print(FILE *f, const struct diag_tree *root, bool ascii);
void diag_tree_free(struct diag_tree *t);

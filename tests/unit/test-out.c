/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/out.h"
#include "tap.h"

enum { COL_TID, COL_COMM, COL_ALIVE, COL_FRAMES, COL_WCHAN };

static const struct diag_column cols[] = {
        [COL_TID]    = { "TID",    0, SCOLS_FL_RIGHT, DIAG_COL_NUMBER,  0x1, "thread id" },
        [COL_COMM]   = { "COMM",   0, 0,              DIAG_COL_STRING,  0x2, "command name" },
        [COL_ALIVE]  = { "ALIVE",  0, 0,              DIAG_COL_BOOLEAN, 0x4, "still running" },
        [COL_FRAMES] = { "FRAMES", 0, 0,              DIAG_COL_ARRAY,   0x8, "stack frames" },
        [COL_WCHAN]  = { "WCHAN",  0, 0,              DIAG_COL_STRING,  0x8, "kernel wait channel" },
};

static const int defaults[] = { COL_TID, COL_COMM };

#define ENV "TEST_OUT_COLUMNS"

static int select_cols(struct diag_columns *c, const char *output, bool all, char **bad) {
        return diag_columns_select(c, cols, ELEMENTSOF(cols), defaults, ELEMENTSOF(defaults),
                                   ENV, output, all, bad);
}

static bool ids_are(const struct diag_columns *c, size_t n, const int *ids) {
        return c->n == n && memcmp(c->ids, ids, n * sizeof(int)) == 0;
}
#define IDS_ARE(c, ...) ids_are((c), ELEMENTSOF(((int[]) { __VA_ARGS__ })), (int[]) { __VA_ARGS__ })

/* Output captured in memory; text() flushes and returns what was written so far. */
struct capture {
        FILE *f;
        char *buf;
        size_t len;
};

static void capture_open(struct capture *cap) {
        cap->buf = NULL;
        cap->len = 0;
        cap->f = open_memstream(&cap->buf, &cap->len);
        if (!cap->f) {
                perror("open_memstream");
                exit(99);
        }
}

static const char *capture_text(struct capture *cap) {
        fflush(cap->f);
        return cap->buf;
}

static void capture_close(struct capture *cap) {
        fclose(cap->f);
        free(cap->buf);
}

static void test_select(void) {
        struct diag_columns c;
        char *bad = (char *) "untouched";
        char many[4 * (DIAG_MAX_COLUMNS + 1) + 1] = "";

        unsetenv(ENV);

        CHECK_INT(select_cols(&c, NULL, false, &bad), 0);
        CHECK(bad == NULL);
        CHECK(IDS_ARE(&c, COL_TID, COL_COMM));
        CHECK(c.all == cols);
        CHECK_INT(c.nall, ELEMENTSOF(cols));

        /* replace, case-insensitive */
        CHECK_INT(select_cols(&c, "wchan,Tid", false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_WCHAN, COL_TID));

        /* append to the defaults */
        CHECK_INT(select_cols(&c, "+frames,ALIVE", false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_TID, COL_COMM, COL_FRAMES, COL_ALIVE));

        /* duplicates are allowed, as in util-linux */
        CHECK_INT(select_cols(&c, "+tid", false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_TID, COL_COMM, COL_TID));

        /* output_all wins */
        CHECK_INT(select_cols(&c, "comm", true, NULL), 0);
        CHECK(IDS_ARE(&c, COL_TID, COL_COMM, COL_ALIVE, COL_FRAMES, COL_WCHAN));

        /* unknown names: reported, selection left alone */
        CHECK_INT(select_cols(&c, "tid", false, NULL), 0);
        CHECK_INT(select_cols(&c, "comm,nope,tid", false, &bad), -EINVAL);
        CHECK_STR(bad, "nope");
        free(bad);
        CHECK(IDS_ARE(&c, COL_TID));
        CHECK_INT(select_cols(&c, "+", false, &bad), -EINVAL);
        CHECK_STR(bad, "");
        free(bad);
        CHECK_INT(select_cols(&c, "tid,,comm", false, &bad), -EINVAL);
        CHECK_STR(bad, "");
        free(bad);
        CHECK_INT(select_cols(&c, "", false, NULL), -EINVAL);
        CHECK_INT(select_cols(&c, "tidx", false, &bad), -EINVAL);
        CHECK_STR(bad, "tidx");
        free(bad);
        CHECK_INT(select_cols(&c, "ti", false, &bad), -EINVAL);
        CHECK_STR(bad, "ti");
        free(bad);
        /* a typo is reported even with --output-all */
        CHECK_INT(select_cols(&c, "bogus", true, &bad), -EINVAL);
        CHECK_STR(bad, "bogus");
        free(bad);

        /* exactly the bound is fine, one more is not */
        for (int i = 0; i < DIAG_MAX_COLUMNS; i++)
                strcat(many, i ? ",tid" : "tid");
        CHECK_INT(select_cols(&c, many, false, NULL), 0);
        CHECK_INT(c.n, DIAG_MAX_COLUMNS);
        strcat(many, ",tid");
        CHECK_INT(select_cols(&c, many, false, NULL), -E2BIG);
        CHECK_INT(c.n, DIAG_MAX_COLUMNS);
        /* appending counts the defaults too: 2 + 63 is one too many */
        many[0] = '\0';
        for (int i = 0; i < DIAG_MAX_COLUMNS - 1; i++)
                strcat(many, i ? ",tid" : "+tid");
        CHECK_INT(select_cols(&c, many, false, NULL), -E2BIG);

        /* the environment replaces the defaults ... */
        setenv(ENV, "wchan", 1);
        CHECK_INT(select_cols(&c, NULL, false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_WCHAN));
        /* ... so -o + appends to it, and -o replaces it */
        CHECK_INT(select_cols(&c, "+tid", false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_WCHAN, COL_TID));
        CHECK_INT(select_cols(&c, "alive", false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_ALIVE));
        /* same syntax as -o */
        setenv(ENV, "+Alive", 1);
        CHECK_INT(select_cols(&c, NULL, false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_TID, COL_COMM, COL_ALIVE));
        setenv(ENV, "TID,nothing", 1);
        CHECK_INT(select_cols(&c, NULL, false, &bad), -EINVAL);
        CHECK_STR(bad, "nothing");
        free(bad);
        /* empty means unset */
        setenv(ENV, "", 1);
        CHECK_INT(select_cols(&c, NULL, false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_TID, COL_COMM));
        unsetenv(ENV);
        /* no env name at all */
        CHECK_INT(diag_columns_select(&c, cols, ELEMENTSOF(cols), defaults, ELEMENTSOF(defaults),
                                      NULL, NULL, false, NULL), 0);
        CHECK(IDS_ARE(&c, COL_TID, COL_COMM));

        /* need bits and positions */
        CHECK_INT(select_cols(&c, NULL, false, NULL), 0);
        CHECK_INT(diag_columns_need(&c), 0x3);
        CHECK_INT(select_cols(&c, "frames,wchan", false, NULL), 0);
        CHECK_INT(diag_columns_need(&c), 0x8);
        CHECK_INT(select_cols(&c, "alive,frames,comm", false, NULL), 0);
        CHECK_INT(diag_columns_need(&c), 0xe);
        CHECK_INT(diag_columns_pos(&c, COL_ALIVE), 0);
        CHECK_INT(diag_columns_pos(&c, COL_COMM), 2);
        CHECK_INT(diag_columns_pos(&c, COL_TID), -1);
        CHECK_INT(select_cols(&c, "comm,tid,tid", false, NULL), 0);
        CHECK_INT(diag_columns_pos(&c, COL_TID), 1);
}

static void test_list(void) {
        struct capture cap;
        struct json_object *doc, *arr, *o, *v;

        capture_open(&cap);
        CHECK_INT(diag_columns_list(cap.f, cols, ELEMENTSOF(cols), false), 0);
        CHECK_STR(capture_text(&cap),
                  "   TID  <number>  thread id\n"
                  "  COMM  <string>  command name\n"
                  " ALIVE  <boolean>  still running\n"
                  "FRAMES  <array>  stack frames\n"
                  " WCHAN  <string>  kernel wait channel\n");
        capture_close(&cap);

        capture_open(&cap);
        CHECK_INT(diag_columns_list(cap.f, cols, 2, true), 0);
        CHECK_STR(capture_text(&cap),
                  "{\n"
                  "  \"columns\": [\n"
                  "    {\n"
                  "      \"id\": \"TID\",\n"
                  "      \"type\": \"<number>\",\n"
                  "      \"description\": \"thread id\"\n"
                  "    },\n"
                  "    {\n"
                  "      \"id\": \"COMM\",\n"
                  "      \"type\": \"<string>\",\n"
                  "      \"description\": \"command name\"\n"
                  "    }\n"
                  "  ]\n"
                  "}\n");
        capture_close(&cap);

        capture_open(&cap);
        CHECK_INT(diag_columns_list(cap.f, cols, ELEMENTSOF(cols), true), 0);
        doc = json_tokener_parse(capture_text(&cap));
        CHECK(doc);
        CHECK(json_object_object_get_ex(doc, "columns", &arr));
        CHECK_INT(json_object_array_length(arr), ELEMENTSOF(cols));
        o = json_object_array_get_idx(arr, COL_FRAMES);
        CHECK(json_object_object_get_ex(o, "type", &v));
        CHECK_STR(json_object_get_string(v), "<array>");
        o = json_object_array_get_idx(arr, COL_ALIVE);
        CHECK(json_object_object_get_ex(o, "type", &v));
        CHECK_STR(json_object_get_string(v), "<boolean>");
        json_object_put(doc);
        capture_close(&cap);
}

/* Two threads; the second has no COMM, and its frames are one element. */
static struct libscols_table *make_table(const struct diag_columns *c, const struct diag_outopts *o) {
        struct libscols_table *tb = diag_table_new(c, o, "threads");
        struct libscols_line *ln;

        if (!tb)
                return NULL;
        ln = scols_table_new_line(tb, NULL);
        CHECK(ln);
        CHECK_INT(diag_table_set(ln, c, COL_TID, "%d", 1234), 0);
        CHECK_INT(diag_table_set(ln, c, COL_COMM, "%s", "worker one"), 0);
        CHECK_INT(diag_table_set(ln, c, COL_ALIVE, "%d", 1), 0);
        CHECK_INT(diag_table_set(ln, c, COL_FRAMES, "%s\n%s\n%s", "poll", "loop", "main"), 0);
        CHECK_INT(diag_table_set(ln, c, COL_WCHAN, "do_poll"), 0);

        ln = scols_table_new_line(tb, NULL);
        CHECK(ln);
        CHECK_INT(diag_table_set(ln, c, COL_TID, "%d", 7), 0);
        CHECK_INT(diag_table_set(ln, c, COL_COMM, NULL), 0);
        CHECK_INT(diag_table_set(ln, c, COL_ALIVE, "0"), 0);
        CHECK_INT(diag_table_set(ln, c, COL_FRAMES, "start"), 0);
        CHECK_INT(diag_table_set(ln, c, COL_WCHAN, "futex"), 0);
        return tb;
}

static void test_table(void) {
        struct diag_columns c;
        struct diag_outopts o = {};
        struct libscols_table *tb;
        struct capture cap;
        struct json_object *doc, *arr, *row, *v;

        CHECK_INT(select_cols(&c, "tid,comm,alive,frames", false, NULL), 0);

        /* plain table: the array column shows one element per line */
        tb = make_table(&c, &o);
        CHECK(tb);
        capture_open(&cap);
        CHECK_INT(diag_table_print_to(cap.f, tb), 0);
        CHECK_STR(capture_text(&cap),
                  " TID COMM       ALIVE FRAMES\n"
                  "1234 worker one 1     poll\n"
                  "                      loop\n"
                  "                      main\n"
                  "   7            0     start\n");
        capture_close(&cap);
        scols_unref_table(tb);

        /* raw: one record per line, blanks and newlines escaped */
        o = (struct diag_outopts) { .raw = true };
        tb = make_table(&c, &o);
        CHECK(tb);
        capture_open(&cap);
        CHECK_INT(diag_table_print_to(cap.f, tb), 0);
        CHECK_STR(capture_text(&cap),
                  "TID COMM ALIVE FRAMES\n"
                  "1234 worker\\x20one 1 poll\\x0aloop\\x0amain\n"
                  "7  0 start\n");
        capture_close(&cap);
        scols_unref_table(tb);

        o = (struct diag_outopts) { .raw = true, .noheadings = true };
        tb = make_table(&c, &o);
        CHECK(tb);
        capture_open(&cap);
        CHECK_INT(diag_table_print_to(cap.f, tb), 0);
        CHECK_STR(capture_text(&cap),
                  "1234 worker\\x20one 1 poll\\x0aloop\\x0amain\n"
                  "7  0 start\n");
        capture_close(&cap);
        scols_unref_table(tb);

        /* columns that are not shown are skipped; a doubled one is set twice */
        CHECK_INT(select_cols(&c, "wchan,tid,wchan", false, NULL), 0);
        o = (struct diag_outopts) { .raw = true, .noheadings = true };
        tb = make_table(&c, &o);
        CHECK(tb);
        capture_open(&cap);
        CHECK_INT(diag_table_print_to(cap.f, tb), 0);
        CHECK_STR(capture_text(&cap), "do_poll 1234 do_poll\nfutex 7 futex\n");
        capture_close(&cap);
        scols_unref_table(tb);

        /* JSON: typed values, the array column as an array of strings */
        CHECK_INT(select_cols(&c, "tid,comm,alive,frames", false, NULL), 0);
        o = (struct diag_outopts) { .json = true };
        tb = make_table(&c, &o);
        CHECK(tb);
        capture_open(&cap);
        CHECK_INT(diag_table_print_to(cap.f, tb), 0);
        doc = json_tokener_parse(capture_text(&cap));
        CHECK(doc);
        CHECK(json_object_object_get_ex(doc, "threads", &arr));
        CHECK(json_object_is_type(arr, json_type_array));
        CHECK_INT(json_object_array_length(arr), 2);

        row = json_object_array_get_idx(arr, 0);
        CHECK(json_object_object_get_ex(row, "tid", &v));
        CHECK(json_object_is_type(v, json_type_int));
        CHECK_INT(json_object_get_int(v), 1234);
        CHECK(json_object_object_get_ex(row, "comm", &v));
        CHECK_STR(json_object_get_string(v), "worker one");
        CHECK(json_object_object_get_ex(row, "alive", &v));
        CHECK(json_object_is_type(v, json_type_boolean));
        CHECK(json_object_get_boolean(v));
        CHECK(json_object_object_get_ex(row, "frames", &v));
        CHECK(json_object_is_type(v, json_type_array));
        CHECK_INT(json_object_array_length(v), 3);
        CHECK_STR(json_object_get_string(json_object_array_get_idx(v, 0)), "poll");
        CHECK_STR(json_object_get_string(json_object_array_get_idx(v, 2)), "main");

        row = json_object_array_get_idx(arr, 1);
        CHECK(json_object_object_get_ex(row, "tid", &v));
        CHECK_INT(json_object_get_int(v), 7);
        /* an empty cell is JSON null */
        CHECK(json_object_object_get_ex(row, "comm", &v));
        CHECK(v == NULL);
        CHECK(json_object_object_get_ex(row, "alive", &v));
        CHECK(json_object_is_type(v, json_type_boolean));
        CHECK(!json_object_get_boolean(v));
        CHECK(json_object_object_get_ex(row, "frames", &v));
        CHECK_INT(json_object_array_length(v), 1);
        CHECK_STR(json_object_get_string(json_object_array_get_idx(v, 0)), "start");
        json_object_put(doc);
        capture_close(&cap);
        scols_unref_table(tb);
}

static void test_tree(void) {
        struct diag_tree *root, *a, *b;
        struct capture cap;

        diag_tree_free(NULL);

        root = diag_tree_new("pid %d", 100);
        CHECK(root);
        a = diag_tree_add(root, "child %d", 1);
        CHECK(a);
        CHECK(diag_tree_add(a, "grandchild"));
        CHECK(diag_tree_add(diag_tree_add(a, "second\nsays more\n\nafter a blank"), "deep"));
        b = diag_tree_add(root, "child 2\ncontinued\n");
        CHECK(b);
        CHECK(diag_tree_add(b, "last"));
        CHECK_INT(root->nkids, 2);
        CHECK_INT(a->nkids, 2);
        CHECK(diag_tree_add(NULL, "x") == NULL);

        capture_open(&cap);
        CHECK_INT(diag_tree_print(cap.f, root, false), 0);
        CHECK_STR(capture_text(&cap),
                  "pid 100\n"
                  "├─ child 1\n"
                  "│  ├─ grandchild\n"
                  "│  └─ second\n"
                  "│     says more\n"
                  "│\n"
                  "│     after a blank\n"
                  "│     └─ deep\n"
                  "└─ child 2\n"
                  "   continued\n"
                  "   └─ last\n");
        capture_close(&cap);

        capture_open(&cap);
        CHECK_INT(diag_tree_print(cap.f, root, true), 0);
        CHECK_STR(capture_text(&cap),
                  "pid 100\n"
                  "|- child 1\n"
                  "|  |- grandchild\n"
                  "|  `- second\n"
                  "|     says more\n"
                  "|\n"
                  "|     after a blank\n"
                  "|     `- deep\n"
                  "`- child 2\n"
                  "   continued\n"
                  "   `- last\n");
        capture_close(&cap);
        diag_tree_free(root);

        /* a multi-line root, and a lone node */
        root = diag_tree_new("line 1\nline 2");
        CHECK(diag_tree_add(root, "kid"));
        capture_open(&cap);
        CHECK_INT(diag_tree_print(cap.f, root, false), 0);
        CHECK_STR(capture_text(&cap), "line 1\nline 2\n└─ kid\n");
        capture_close(&cap);
        diag_tree_free(root);

        root = diag_tree_new("alone");
        capture_open(&cap);
        CHECK_INT(diag_tree_print(cap.f, root, true), 0);
        CHECK_STR(capture_text(&cap), "alone\n");
        capture_close(&cap);
        diag_tree_free(root);
}

static void test_json(void) {
        struct json_object *o = json_object_new_object(), *v;
        struct capture cap;

        CHECK(diag_json_str(NULL) == NULL);
        v = diag_json_str("a/b");
        CHECK_STR(json_object_get_string(v), "a/b");
        json_object_object_add(o, "path", v);
        json_object_object_add(o, "none", diag_json_str(NULL));
        v = diag_json_hex(0x7f12abcd0000ULL);
        CHECK_STR(json_object_get_string(v), "0x7f12abcd0000");
        json_object_object_add(o, "addr", v);
        v = diag_json_hex(0);
        CHECK_STR(json_object_get_string(v), "0x0");
        json_object_put(v);
        v = diag_json_hex(UINT64_MAX);
        CHECK_STR(json_object_get_string(v), "0xffffffffffffffff");
        json_object_put(v);

        capture_open(&cap);
        CHECK_INT(diag_json_print(cap.f, o), 0);
        CHECK_STR(capture_text(&cap),
                  "{\n"
                  "  \"path\": \"a/b\",\n"
                  "  \"none\": null,\n"
                  "  \"addr\": \"0x7f12abcd0000\"\n"
                  "}\n");
        capture_close(&cap);
        json_object_put(o);
}

/* Every renderer reports a full disk, whether the stream buffers or not. */
static void test_write_errors(void) {
        struct diag_columns c;
        struct diag_outopts o = { .raw = true };
        struct libscols_table *tb;
        struct json_object *obj;
        struct diag_tree *t;

        for (int unbuffered = 0; unbuffered < 2; unbuffered++) {
                FILE *f = fopen("/dev/full", "we");

                if (!f) {
                        fprintf(stderr, "no /dev/full, skipping write error checks\n");
                        return;
                }
                if (unbuffered)
                        setvbuf(f, NULL, _IONBF, 0);

                obj = json_object_new_array();
                json_object_array_add(obj, diag_json_str("x"));
                CHECK_INT(diag_json_print(f, obj), -ENOSPC);
                json_object_put(obj);
                clearerr(f);

                CHECK_INT(select_cols(&c, NULL, false, NULL), 0);
                tb = make_table(&c, &o);
                CHECK_INT(diag_table_print_to(f, tb), -ENOSPC);
                scols_unref_table(tb);
                clearerr(f);

                t = diag_tree_new("root");
                diag_tree_add(t, "kid");
                CHECK_INT(diag_tree_print(f, t, false), -ENOSPC);
                diag_tree_free(t);
                clearerr(f);

                CHECK_INT(diag_columns_list(f, cols, ELEMENTSOF(cols), false), -ENOSPC);
                clearerr(f);
                CHECK_INT(diag_columns_list(f, cols, ELEMENTSOF(cols), true), -ENOSPC);

                fclose(f);
        }
}

static void test_outopts(void) {
        static const struct option longopts[] = {
                DIAG_OUT_LONGOPTS,
                { "pid", required_argument, NULL, 'p' },
                {}
        };
        char *argv[] = {
                (char *) "test", (char *) "-J", (char *) "--raw", (char *) "-n",
                (char *) "-o", (char *) "+wchan", (char *) "--output-all",
                (char *) "--list-columns", (char *) "-p", (char *) "42", NULL,
        };
        struct diag_outopts o = {};
        const char *output = NULL;
        bool output_all = false, list_columns = false;
        int ch, consumed = 0, others = 0;
        struct capture cap;

        optind = 1;
        while ((ch = getopt_long(ELEMENTSOF(argv) - 1, argv, DIAG_OUT_SHORTOPTS "p:", longopts,
                                 NULL)) != -1) {
                if (diag_outopts_parse(ch, optarg, &o, &output, &output_all, &list_columns)) {
                        consumed++;
                        continue;
                }
                CHECK_INT(ch, 'p');
                others++;
        }
        CHECK_INT(consumed, 6);
        CHECK_INT(others, 1);
        CHECK(o.json && o.raw && o.noheadings);
        CHECK_STR(output, "+wchan");
        CHECK(output_all);
        CHECK(list_columns);
        CHECK(DIAG_OPT_OUTPUT_ALL >= 0x100);

        capture_open(&cap);
        diag_outopts_help(cap.f);
        CHECK_STR(capture_text(&cap),
                  " -H, --list-columns       list the available columns\n"
                  " -J, --json               use JSON output format\n"
                  " -n, --noheadings         don't print headings\n"
                  " -o, --output <list>      output columns (see --list-columns)\n"
                  "     --output-all         output all available columns\n"
                  " -r, --raw                use the raw output format\n");
        capture_close(&cap);
}

int main(void) {
        test_select();
        test_list();
        test_table();
        test_tree();
        test_json();
        test_write_errors();
        test_outopts();
        return TAP_DONE();
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "show-internal.h"

int rs_svg_write(struct rec_show *s, const struct rs_buckets *b, const char *path) {
        return 0;
}

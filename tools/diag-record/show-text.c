/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "show-internal.h"

int rs_text_print(struct rec_show *s, const struct rs_buckets *b) {
        return 0;
}

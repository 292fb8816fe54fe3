/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "show.h"
#include "tap.h"

int main(void) {
        struct rec_show_opts o = { 0 };
        struct rec_show *s = rec_show_new(&o);
        CHECK(s != NULL);
        rec_show_free(s);
        return TAP_DONE();
}

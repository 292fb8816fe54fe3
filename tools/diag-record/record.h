/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "diag/record.h"

/* `diag-record show ...` (argv[0] is "show"). */
int show_main(int argc, char **argv);

/* Replace path (atomically: a temporary file in its directory, renamed) with the
 * OpenMetrics text of cur, rates against prev (NULL: counters only). Failures are
 * reported once on stderr and otherwise ignored: the recording goes on. */
void openmetrics_write(const char *path, const struct diag_rec_interval *cur, const struct diag_rec_interval *prev);

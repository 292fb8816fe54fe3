/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Minimal checks for unit tests: print every failure, exit 1 if any. */
#pragma once
#include <stdio.h>
#include <string.h>

static int tap_failed, tap_run;

#define CHECK(cond) do { tap_run++; if (!(cond)) { tap_failed++; \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); tap_run++; \
        if (!_a || !_b || strcmp(_a, _b) != 0) { tap_failed++; \
        fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, _a ? _a : "(null)", _b ? _b : "(null)"); } } while (0)
#define CHECK_INT(a, b) do { long long _a = (long long) (a), _b = (long long) (b); tap_run++; \
        if (_a != _b) { tap_failed++; \
        fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, _a, _b); } } while (0)
#define TAP_DONE() ({ printf("%d checks, %d failed\n", tap_run, tap_failed); tap_failed ? 1 : 0; })

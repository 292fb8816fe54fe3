/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The CPython offsets of libdiag/pyframes.c against the version's own headers,
 * internal ones included (python3.X-dev): every entry of the 3.11 and 3.12 tables
 * with offsetof, and for 3.13 where each field of _Py_DebugOffsets lies. Built
 * once per version whose headers are found; skipped without them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#if __has_include(<Python.h>) && __has_include(<internal/pycore_frame.h>)
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include <Python.h>
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>
#if PY_MINOR_VERSION >= 12
#include <internal/pycore_gil.h>
#endif
#define HAVE_PY_HEADERS 1
#endif

#include "diag/pyframes.h"
#include "tap.h"

#define ELEMENTS(x) (sizeof(x) / sizeof((x)[0]))

#ifndef HAVE_PY_HEADERS
int main(void) {
        printf("skip: no CPython headers with internal ones (python3.11-dev)\n");
        return 77;
}
#else
/* What the reader decodes of PyASCIIObject.state: kind at bits 2-4, compact 5, ascii 6. */
__attribute__((unused)) static void check_unicode_state(const struct diag_pyoffsets *o) {
        PyASCIIObject a;
        uint32_t word;

        memset(&a, 0, sizeof a);
        a.state.kind = PyUnicode_4BYTE_KIND;
        a.state.compact = 1;
        a.state.ascii = 1;
        memcpy(&word, (const char *) &a + o->unicode_state, sizeof word);
        CHECK_INT((word >> 2) & 7, 4);
        CHECK_INT((word >> 5) & 1, 1);
        CHECK_INT((word >> 6) & 1, 1);
        CHECK_INT(word & 3, 0);
        CHECK_INT(o->unicode_length, offsetof(PyASCIIObject, length));
        CHECK_INT(o->unicode_state, offsetof(PyASCIIObject, state));
        CHECK_INT(o->unicode_ascii_size, sizeof(PyASCIIObject));
        CHECK_INT(o->unicode_compact_size, sizeof(PyCompactUnicodeObject));
        CHECK_INT(sizeof(((PyASCIIObject *) 0)->length), 8);
}

/* Fields every version has under the same name. */
__attribute__((unused)) static void check_common(const struct diag_pyoffsets *o) {
        CHECK_INT(o->runtime_interpreters_head, offsetof(_PyRuntimeState, interpreters.head));
        CHECK_INT(o->interp_next, offsetof(PyInterpreterState, next));
        CHECK_INT(o->interp_threads_head, offsetof(PyInterpreterState, threads.head));
        CHECK_INT(o->tstate_next, offsetof(PyThreadState, next));
        CHECK_INT(o->tstate_native_thread_id, offsetof(PyThreadState, native_thread_id));
        CHECK_INT(o->frame_previous, offsetof(_PyInterpreterFrame, previous));
        CHECK_INT(o->frame_owner, offsetof(_PyInterpreterFrame, owner));
        CHECK_INT(o->object_type, offsetof(PyObject, ob_type));
        CHECK_INT(o->code_qualname, offsetof(PyCodeObject, co_qualname));
        CHECK_INT(o->code_filename, offsetof(PyCodeObject, co_filename));
        CHECK_INT(o->code_firstlineno, offsetof(PyCodeObject, co_firstlineno));
        CHECK_INT(o->code_linetable, offsetof(PyCodeObject, co_linetable));
        CHECK_INT(o->code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
        CHECK_INT(o->var_size, offsetof(PyVarObject, ob_size));
        CHECK_INT(o->bytes_sval, offsetof(PyBytesObject, ob_sval));
        /* The sizes the reader assumes when it reads these fields. */
        CHECK_INT(sizeof(((PyThreadState *) 0)->native_thread_id), 8);
        CHECK_INT(sizeof(((PyCodeObject *) 0)->co_firstlineno), 4);
        CHECK_INT(sizeof(((_PyInterpreterFrame *) 0)->owner), 1);
        CHECK_INT(sizeof(_Py_CODEUNIT), 2);
        CHECK_INT(sizeof(Py_ssize_t), 8);
        check_unicode_state(o);
}

#if PY_MINOR_VERSION == 11 || PY_MINOR_VERSION == 12
/* 3.11 and 3.12: the frame chain through the thread's _PyCFrame. */
static void check_cframe(const struct diag_pyoffsets *o) {
        CHECK_INT(o->tstate_cframe, offsetof(PyThreadState, cframe));
        CHECK_INT(o->cframe_current_frame, offsetof(_PyCFrame, current_frame));
        CHECK_INT(o->frame_code, offsetof(_PyInterpreterFrame, f_code));
        CHECK_INT(o->frame_prev_instr, offsetof(_PyInterpreterFrame, prev_instr));
}
#endif

#if PY_MINOR_VERSION == 11 || PY_MINOR_VERSION == 12
static void check_version(void) {
        const struct diag_pyoffsets *o = diag_pyoffsets_get(3, PY_MINOR_VERSION);

        CHECK(o != NULL);
        if (!o)
                return;
        check_common(o);
        check_cframe(o);
#if PY_MINOR_VERSION == 11
        CHECK_INT(o->runtime_tstate_current, offsetof(_PyRuntimeState, gilstate.tstate_current));
        CHECK_INT(o->frame_is_entry, offsetof(_PyInterpreterFrame, is_entry));
        CHECK_INT(sizeof(((_PyInterpreterFrame *) 0)->is_entry), 1);
        CHECK_INT(o->owner_cstack, -1);
        CHECK_INT(o->interp_gil, 0);
#else
        CHECK_INT(o->runtime_tstate_current, 0);
        CHECK_INT(o->interp_gil, offsetof(PyInterpreterState, ceval.gil));
        CHECK_INT(o->gil_locked, offsetof(struct _gil_runtime_state, locked));
        CHECK_INT(o->gil_holder, offsetof(struct _gil_runtime_state, last_holder));
        CHECK_INT(sizeof(((struct _gil_runtime_state *) 0)->locked), 4);
        CHECK_INT(o->frame_is_entry, 0);
        CHECK_INT(o->owner_cstack, FRAME_OWNED_BY_CSTACK);
#endif
}
#elif PY_MINOR_VERSION == 13
/* Each field the reader takes from _Py_DebugOffsets: where it lands in ours, where
 * it is in theirs, and the value this build of 3.13 publishes there. */
#define ROW(ours, theirs, value) \
        { offsetof(struct diag_pyoffsets, ours), offsetof(_Py_DebugOffsets, theirs), value }
static const struct { size_t ours, theirs, value; } rows[] = {
        ROW(runtime_interpreters_head, runtime_state.interpreters_head, offsetof(_PyRuntimeState, interpreters.head)),
        ROW(interp_next, interpreter_state.next, offsetof(PyInterpreterState, next)),
        ROW(interp_threads_head, interpreter_state.threads_head, offsetof(PyInterpreterState, threads.head)),
        ROW(gil_locked, interpreter_state.gil_runtime_state_locked, offsetof(PyInterpreterState, _gil.locked)),
        ROW(gil_holder, interpreter_state.gil_runtime_state_holder, offsetof(PyInterpreterState, _gil.last_holder)),
        ROW(tstate_next, thread_state.next, offsetof(PyThreadState, next)),
        ROW(cframe_current_frame, thread_state.current_frame, offsetof(PyThreadState, current_frame)),
        ROW(tstate_native_thread_id, thread_state.native_thread_id, offsetof(PyThreadState, native_thread_id)),
        ROW(frame_previous, interpreter_frame.previous, offsetof(_PyInterpreterFrame, previous)),
        ROW(frame_code, interpreter_frame.executable, offsetof(_PyInterpreterFrame, f_executable)),
        ROW(frame_prev_instr, interpreter_frame.instr_ptr, offsetof(_PyInterpreterFrame, instr_ptr)),
        ROW(frame_owner, interpreter_frame.owner, offsetof(_PyInterpreterFrame, owner)),
        ROW(code_filename, code_object.filename, offsetof(PyCodeObject, co_filename)),
        ROW(code_qualname, code_object.qualname, offsetof(PyCodeObject, co_qualname)),
        ROW(code_linetable, code_object.linetable, offsetof(PyCodeObject, co_linetable)),
        ROW(code_firstlineno, code_object.firstlineno, offsetof(PyCodeObject, co_firstlineno)),
        ROW(code_adaptive, code_object.co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive)),
        ROW(object_type, pyobject.ob_type, offsetof(PyObject, ob_type)),
        ROW(var_size, bytes_object.ob_size, offsetof(PyVarObject, ob_size)),
        ROW(bytes_sval, bytes_object.ob_sval, offsetof(PyBytesObject, ob_sval)),
        ROW(unicode_state, unicode_object.state, offsetof(PyASCIIObject, state)),
        ROW(unicode_length, unicode_object.length, offsetof(PyASCIIObject, length)),
        ROW(unicode_ascii_size, unicode_object.asciiobject_size, sizeof(PyASCIIObject)),
};

static size_t field(const struct diag_pyoffsets *o, size_t at) {
        size_t v;
        memcpy(&v, (const char *) o + at, sizeof v);
        return v;
}

static void check_version(void) {
        _Py_DebugOffsets d;
        struct diag_pyoffsets o;
        uint64_t *w = (uint64_t *) &d;

        CHECK(diag_pyoffsets_get(3, 13) == NULL);
        CHECK_INT(sizeof d, DIAG_PY_DEBUG_OFFSETS_313_SIZE);
        /* A different value in every field: each must come out in the right place. */
        for (size_t i = 0; i < sizeof d / sizeof *w; i++)
                w[i] = 1000 + i;
        memcpy(d.cookie, _Py_Debug_Cookie, sizeof d.cookie);
        d.version = PY_VERSION_HEX;
        d.free_threaded = 0;
        CHECK_INT(diag_pyoffsets_from_debug(&d, sizeof d, &o), 0);
        CHECK_INT(o.major, 3);
        CHECK_INT(o.minor, 13);
        for (size_t i = 0; i < ELEMENTS(rows); i++)
                CHECK_INT(field(&o, rows[i].ours), 1000 + rows[i].theirs / 8);
        CHECK_INT(o.interp_gil, 0);
        CHECK_INT(o.tstate_cframe, 0);
        CHECK_INT(o.frame_is_entry, 0);
        CHECK_INT(o.owner_cstack, FRAME_OWNED_BY_CSTACK);

        /* With the values this build publishes, the checks of the other versions hold. */
        for (size_t i = 0; i < ELEMENTS(rows); i++)
                w[rows[i].theirs / 8] = rows[i].value;
        CHECK_INT(diag_pyoffsets_from_debug(&d, sizeof d, &o), 0);
        check_common(&o);

        d.free_threaded = 1;
        CHECK_INT(diag_pyoffsets_from_debug(&d, sizeof d, &o), -EPROTONOSUPPORT);
        d.free_threaded = 0;
        d.version = 0x030e00f0;
        CHECK_INT(diag_pyoffsets_from_debug(&d, sizeof d, &o), -EPROTONOSUPPORT);
        d.cookie[0] = 'y';
        CHECK_INT(diag_pyoffsets_from_debug(&d, sizeof d, &o), -EBADMSG);
}
#endif

int main(void) {
#if PY_MAJOR_VERSION != 3 || PY_MINOR_VERSION < 11 || PY_MINOR_VERSION > 13
        printf("skip: the headers found are CPython %d.%d; the reader knows 3.11 to 3.13\n",
               PY_MAJOR_VERSION, PY_MINOR_VERSION);
        return 77;
#else
        printf("CPython %s headers\n", PY_VERSION);
        check_version();
        CHECK(diag_pyoffsets_get(3, 10) == NULL);
        return TAP_DONE();
#endif
}
#endif
